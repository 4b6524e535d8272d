"""The datastore contract every backend (SQLite, etcd v3) implements.

The contract is a revisioned key-value store shaped like etcd v3, because that is what
Calico's data model needs and what the etcd backend gets for free:

* every write bumps one store-wide, strictly increasing revision;
* each key remembers the revision that created it and the one that last modified it
  (`mod_revision` is what resources expose as `resourceVersion`);
* writes can be made conditional on those revisions (compare-and-swap), alone or in a
  multi-key transaction, which is what IPAM's correctness rests on;
* a watch streams every change under a prefix, in revision order, starting after a given
  revision, so a reader can list, remember the revision, and never miss an update.

Keys are etcd-style paths (`/calico/resources/v3/projectcalico.org/ippools/pool1`); values
are text (JSON). Keys are compared as plain strings, so a prefix list is a range scan.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class DatastoreError(Exception):
    """Base class for everything a backend raises on purpose."""


class KeyNotFound(DatastoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key not found: {key}")
        self.key = key


class KeyExists(DatastoreError):
    def __init__(self, key: str) -> None:
        super().__init__(f"key already exists: {key}")
        self.key = key


class RevisionConflict(DatastoreError):
    """A compare-and-swap precondition did not hold: someone else wrote first."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"revision conflict on {key}: expected {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class WatchCompacted(DatastoreError):
    """The requested start revision is older than the history the store still holds."""

    def __init__(self, requested: int, oldest: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available is {oldest}); relist"
        )
        self.requested = requested
        self.oldest = oldest


class DatastoreUnavailable(DatastoreError):
    """The store cannot be reached or read (missing, corrupt, permission denied...)."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: str
    create_revision: int
    mod_revision: int


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    key: str
    # For PUT the new value; for DELETE the value the key held just before deletion.
    value: str
    revision: int


@dataclass(frozen=True, slots=True)
class Compare:
    """Transaction precondition: `key`'s mod_revision equals `mod_revision`.

    `mod_revision == 0` means "the key does not exist".
    """

    key: str
    mod_revision: int


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Delete:
    key: str


Op = Put | Delete


class Watch(abc.ABC):
    """An ordered stream of events under a prefix. Close it when done."""

    @abc.abstractmethod
    def next(self, timeout: float | None = None) -> Event | None:
        """The next event, or None if `timeout` seconds pass without one.

        `timeout=None` blocks until an event arrives or the watch is closed (then None).
        None never comes between two events of one revision: a transaction's events are
        handed out whole.
        Raises WatchCompacted if history needed to continue has been discarded.
        """

    @abc.abstractmethod
    def interrupt(self) -> None:
        """Make the `next()` blocked now, or else the next one to wait, return None at once
        (from any thread): the watcher has something else to look at."""

    @abc.abstractmethod
    def close(self) -> None: ...

    def __iter__(self) -> Iterator[Event]:
        while True:
            event = self.next()
            if event is None:
                return
            yield event

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Backend(abc.ABC):
    """A revisioned key-value store. All methods are safe to call from many processes."""

    @abc.abstractmethod
    def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        """Every key starting with `prefix`, sorted by key, and the store revision read at."""

    @abc.abstractmethod
    def revision(self) -> int:
        """The current store revision (a fresh store starts at 0 on SQLite, 1 on etcd)."""

    @abc.abstractmethod
    def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        """Apply `ops` atomically if every compare holds; return the new revision.

        All ops share one new revision. Raises RevisionConflict (naming the first failing
        compare) and writes nothing if any compare fails, even with no ops. Deleting a missing
        key is a no-op inside a transaction; a transaction that changes nothing returns the
        current revision without using up a new one. Naming one key in two ops is a ValueError.
        """

    @abc.abstractmethod
    def watch(self, prefix: str, after_revision: int) -> Watch:
        """Events under `prefix` with revision > `after_revision`, in revision order.

        Raises WatchCompacted, here or from `next()`, when that history is gone; its
        `oldest` is the smallest `after_revision` that can still be watched from.
        """

    @abc.abstractmethod
    def close(self) -> None: ...

    def decoded(self, kv: KeyValue, decode: Callable[[KeyValue], T]) -> T:
        """`decode(kv)`; a store that keeps its values may hand back an earlier result."""
        return decode(kv)

    def create(self, key: str, value: str) -> int:
        """Write a new key; KeyExists if it is already there. Returns the new revision."""
        try:
            return self.txn([Compare(key, 0)], [Put(key, value)])
        except RevisionConflict as exc:
            raise KeyExists(key) from exc

    def update(self, key: str, value: str, expected_revision: int) -> int:
        """Overwrite `key` only if its mod_revision is still `expected_revision`."""
        if expected_revision <= 0:
            raise ValueError("update needs the revision the caller read")
        try:
            return self.txn([Compare(key, expected_revision)], [Put(key, value)])
        except RevisionConflict as exc:
            if exc.actual == 0:
                raise KeyNotFound(key) from exc
            raise

    def delete(self, key: str, expected_revision: int | None = None) -> KeyValue:
        """Remove `key` (only at `expected_revision` if given); return what it held."""
        while True:
            current = self.get(key)
            if current is None:
                raise KeyNotFound(key)
            if expected_revision is not None and current.mod_revision != expected_revision:
                raise RevisionConflict(key, expected_revision, current.mod_revision)
            try:
                self.txn([Compare(key, current.mod_revision)], [Delete(key)])
            except RevisionConflict as exc:
                if exc.actual == 0:
                    raise KeyNotFound(key) from exc
                if expected_revision is not None:
                    raise
                continue  # changed between read and delete; an unconditional delete retries
            return current

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
