"""Name -> object registries (timm-style): ``@MODELS.register("vae_conv")`` on a class.

Lookups of unknown names raise a RaygenError that lists every valid choice.
"""
from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from .errors import RaygenError, did_you_mean

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def add(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            try:
                obj.registry_name = name  # type: ignore[attr-defined]
            except (AttributeError, TypeError):
                pass
            return obj

        return add

    def get(self, name: str) -> T:
        _load_builtins()
        if name not in self._items:
            raise RaygenError(
                f"unknown {self.kind} {name!r}.{did_you_mean(name, self._items)} "
                f"Valid {self.kind}s: {', '.join(sorted(self._items))}."
            )
        return self._items[name]

    def names(self) -> list[str]:
        _load_builtins()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        _load_builtins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


MODELS: Registry = Registry("model")
DATASETS: Registry = Registry("dataset")


def _load_builtins() -> None:
    """Import the modules whose decorators fill the registries (once)."""
    from . import datasets, models  # noqa: F401
