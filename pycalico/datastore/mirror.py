"""A read-only copy of the datastore under one prefix, kept in memory from its watch.

Felix and confd work out everything from everything on each apply. Reading "everything"
from memory, with each stored value decoded once per version, makes that cost follow the
size of the change rather than the size of the store: a pod's label change no longer means
listing and decoding every endpoint and policy again.

Decoded values are shared between readers: they must not be modified. A stored value is
the same `KeyValue` object for as long as its version is the mirror's, across reloads too.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreError,
    Event,
    EventType,
    KeyValue,
    Op,
    Watch,
)

T = TypeVar("T")


class Mirror(Backend):
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._values: dict[str, KeyValue] = {}
        self._keys: list[str] = []  # sorted, for prefix listing
        self._revision = 0
        self._decoded: dict[str, tuple[int, Any]] = {}
        # How many times the contents were loaded whole: a reader that skips work for
        # unchanged inputs still redoes it after a reload (a resync or a lost watch).
        self.loads = 0

    def load(self, source: Backend) -> int:
        """Replace the contents with `source`'s as they are now; the revision read at."""
        kvs, revision = source.list(self.prefix)
        # A value still at the version the mirror holds stays the same object: readers may
        # remember what they made from it by its identity (Felix's endpoints, whose decoded
        # documents are not kept).
        old = self._values
        self._values = {}
        for kv in kvs:
            kept = old.get(kv.key)
            self._values[kv.key] = (
                kept if kept is not None and kept.mod_revision == kv.mod_revision else kv
            )
        self._keys = sorted(self._values)
        self._revision = revision
        self.loads += 1
        self._decoded = {
            key: found
            for key, found in self._decoded.items()
            if key in self._values and self._values[key].mod_revision == found[0]
        }
        return revision

    def apply(self, event: Event) -> None:
        """One watch event, in the order the watch delivered it."""
        if event.type is EventType.PUT:
            old = self._values.get(event.key)
            if old is None:
                bisect.insort(self._keys, event.key)
            created = event.revision if old is None else old.create_revision
            self._values[event.key] = KeyValue(event.key, event.value, created, event.revision)
        elif self._values.pop(event.key, None) is not None:
            del self._keys[bisect.bisect_left(self._keys, event.key)]
            self._decoded.pop(event.key, None)
        self._revision = max(self._revision, event.revision)

    def decoded(self, kv: KeyValue, decode: Callable[[KeyValue], T]) -> T:
        found = self._decoded.get(kv.key)
        if found is not None and found[0] == kv.mod_revision:
            return cast(T, found[1])
        value = decode(kv)
        if self._values.get(kv.key) is kv:
            self._decoded[kv.key] = (kv.mod_revision, value)
        return value

    def decoded_ahead(self, event: Event, decode: Callable[[str], T]) -> T:
        """`decode` of the value a PUT `event` brings, kept as the decoding of the key's
        stored value once the mirror has taken the event: a reader that decodes an event to
        judge it (follow's `relevant`) finds it decoded when it reads the mirror."""
        value = decode(event.value)
        self._decoded[event.key] = (event.revision, value)
        return value

    def get(self, key: str) -> KeyValue | None:
        return self._values.get(key)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        keys, found = self._keys, []
        i = bisect.bisect_left(keys, prefix)
        while i < len(keys) and keys[i].startswith(prefix):
            found.append(self._values[keys[i]])
            i += 1
        return found, self._revision

    def revision(self) -> int:
        return self._revision

    def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        raise DatastoreError("the datastore mirror is read-only")

    def watch(self, prefix: str, after_revision: int) -> Watch:
        raise DatastoreError("the datastore mirror cannot be watched; watch its source")

    def close(self) -> None:
        pass
