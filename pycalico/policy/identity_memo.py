"""Results remembered per object, by identity.

The policy inputs reader hands back the same model object for a resource that has not
changed, so "the same object" is the cheap way to know a result still holds; hashing a
whole policy on every apply would cost more than the work saved. Each entry keeps its
object, so an id is never mistaken for a reused one, and the memo forgets everything
once it holds `limit` entries, so churn cannot grow it without bound.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class IdentityMemo(Generic[K, V]):
    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._found: dict[int, tuple[K, V]] = {}

    def clear(self) -> None:
        self._found.clear()

    def get(self, item: K, make: Callable[[K], V]) -> V:
        found = self._found.get(id(item))
        if found is not None and found[0] is item:
            return found[1]
        if len(self._found) >= self._limit:
            self._found.clear()
        value = make(item)
        self._found[id(item)] = (item, value)
        return value
