"""Name -> object registries (timm-style): ``@MODELS.register("vae_conv")`` on a class.

The one registration mechanism for models, datasets, network architectures and metric
families. A registry imports the modules that fill it (``builtins``, then the user's
``$RAYGEN_PLUGINS``: ``core.plugins``) on first lookup, so asking for a name never depends
on what happened to be imported before. Lookups of unknown names raise a RaygenError that
lists every valid choice.
"""
from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from raygen.core.errors import RaygenError, did_you_mean
from raygen.core.plugins import load_plugins

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, builtins: tuple[str, ...] = ()):
        self.kind = kind
        self.builtins = builtins  # modules whose decorators fill this registry
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            with contextlib.suppress(AttributeError, TypeError):  # e.g. a frozen dataclass instance
                obj.registry_name = name  # type: ignore[attr-defined]
            return obj

        return add

    def _load(self) -> None:
        for module in self.builtins:
            importlib.import_module(module)
        load_plugins()

    def get(self, name: str) -> T:
        self._load()
        if name not in self._items:
            raise RaygenError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, self._items)} "
                f"Valid {self.kind}s: {', '.join(sorted(self._items))}."
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def items(self) -> list[tuple[str, T]]:
        """(name, object) in registration order."""
        self._load()
        return list(self._items.items())

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


MODELS: Registry = Registry("model", builtins=("raygen.models",))
DATASETS: Registry = Registry("dataset", builtins=("raygen.data.datasets",))
