"""Ray Tune callbacks on the driver: the console, the run-state guard (Ctrl-C, a full
disk, Ray's state files kept whole) and experiment trackers."""
