"""The ground floor: user errors, settings (dataclass fields with their allowed values and
typed coercion), name registries, storage and compute-once caches. Imports nothing of
raygen's; importing the package loads nothing heavy (``diskcache`` needs torch, on use)."""
