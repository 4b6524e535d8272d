"""The datastore contract (pycalico.datastore.backend), run against every backend.

A backend joins the suite through one factory function in STORES: a context manager that
yields a Store whose *opener* is a picklable callable returning a new client of one shared
store (so tests can play several clients and child processes), and removes the store on
exit. The etcd store is a real etcd, started fresh for each test (it is ready in well
under a second).

Prefixes are raw string prefixes: `/a/b` also matches `/a/bc`. Callers that mean a
directory end the prefix with `/`.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import queue
import shutil
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Barrier
from pathlib import Path
from typing import Any

import pytest

from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreUnavailable,
    Delete,
    Event,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Put,
    RevisionConflict,
    WatchCompacted,
)
from pycalico.datastore.etcd import EtcdBackend
from pycalico.datastore.sqlite import SqliteBackend
from tests.support import etcd_server
from tests.support.datastore_watch import WAIT, next_events

pytestmark = pytest.mark.contract

Opener = Callable[..., Backend]


@dataclass(frozen=True)
class Store:
    opener: Opener
    # The revision of a store nobody has written to: SQLite counts from 0, while etcd
    # starts at 1 and its numbers are kept as they are (they are Calico's resourceVersions).
    fresh_revision: int = 0
    # Whether the store streams events to an open watch as they happen (etcd) rather than
    # handing them over when `next()` asks (SQLite polls), which decides whether history
    # discarded after a write can still be missing from an open watch.
    streams_watches: bool = False


@contextlib.contextmanager
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    # The backend creates the file, never its directory.
    directory = tmp_path / "sqlite"
    directory.mkdir()
    yield Store(functools.partial(SqliteBackend, directory / "calico.db", create=True))
    shutil.rmtree(directory, ignore_errors=True)


class HistoryLimitedEtcd(EtcdBackend):
    """An etcd client that compacts after each of its writes, keeping `history` revisions.

    etcd keeps all history until someone compacts it; this plays SQLite's `history`, which
    prunes on every write, so that `backend_factory(history=...)` means the same on both.
    """

    def __init__(self, endpoints: list[str], history: int) -> None:
        super().__init__(endpoints)
        self._history = history
        # A fresh etcd is at revision 1, with nothing before it to discard.
        self._compacted = 1

    def txn(self, compares: Sequence[Compare], ops: Sequence[Put | Delete]) -> int:
        revision = super().txn(compares, ops)
        # A watch can start at the revision compacted to: that keeps `history` revisions.
        keep_from = revision - self._history + 1
        if keep_from > self._compacted:
            etcd_server.compact(self.endpoints[0], keep_from)
            self._compacted = keep_from
        return revision


def open_etcd(endpoints: list[str], history: int | None = None) -> EtcdBackend:
    if history is None:
        return EtcdBackend(endpoints)
    return HistoryLimitedEtcd(endpoints, history)


@contextlib.contextmanager
def etcd_store(tmp_path: Path) -> Iterator[Store]:
    with etcd_server.etcd_server(tmp_path) as server:
        yield Store(
            functools.partial(open_etcd, [server.client_url]),
            fresh_revision=1,
            streams_watches=True,
        )


STORES: dict[str, Callable[[Path], contextlib.AbstractContextManager[Store]]] = {
    "sqlite": sqlite_store,
    "etcd": etcd_store,
}


class BackendFactory:
    """Opens clients of one store and closes all of them at teardown.

    Keyword options go to the opener. Every opener must accept `history`: how many of the
    latest revisions stay watchable, which is how the compaction tests get a short history.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self.opener = store.opener
        self._opened: list[Backend] = []

    def __call__(self, **options: Any) -> Backend:
        backend = self.opener(**options)
        self._opened.append(backend)
        return backend

    def close_all(self) -> None:
        for backend in self._opened:
            backend.close()


@pytest.fixture(params=sorted(STORES))
def backend_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BackendFactory]:
    with STORES[request.param](tmp_path) as store:
        factory = BackendFactory(store)
        try:
            yield factory
        finally:
            factory.close_all()


@pytest.fixture
def backend(backend_factory: BackendFactory) -> Backend:
    return backend_factory()


@pytest.fixture
def fresh_revision(backend_factory: BackendFactory) -> int:
    return backend_factory.store.fresh_revision


# --- child processes -----------------------------------------------------------------
# Spawned rather than forked: a fresh interpreter shares nothing with the test process but
# the store, which is what separate CLI and CNI invocations look like.

_SPAWN = multiprocessing.get_context("spawn")


def _child(
    index: int,
    results: Queue[tuple[int, bool, Any]],
    start: Barrier,
    target: Callable[..., Any],
    args: Sequence[Any],
) -> None:
    try:
        start.wait()
        results.put((index, True, target(*args)))
    except BaseException:
        results.put((index, False, traceback.format_exc()))


def run_in_processes(target: Callable[..., Any], args: Sequence[Sequence[Any]]) -> list[Any]:
    """`target(*a)` for each `a`, one spawned process each, released together; results in order."""
    results: Queue[tuple[int, bool, Any]] = _SPAWN.Queue()
    start = _SPAWN.Barrier(len(args))
    processes = [
        _SPAWN.Process(target=_child, args=(index, results, start, target, child_args))
        for index, child_args in enumerate(args)
    ]
    for process in processes:
        process.start()
    try:
        outcomes = [results.get(timeout=60) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=WAIT)
            if process.is_alive():
                process.kill()
    failures = [detail for _, ok, detail in outcomes if not ok]
    assert not failures, "\n".join(failures)
    return [value for _, _, value in sorted(outcomes, key=lambda outcome: outcome[0])]


def count_up(opener: Opener, key: str, times: int) -> list[int]:
    """Compare-and-swap increment `key` `times` times; the revisions of the successes."""
    revisions: list[int] = []
    with opener() as backend:
        while len(revisions) < times:
            current = backend.get(key)
            assert current is not None
            try:
                revisions.append(
                    backend.update(key, str(int(current.value) + 1), current.mod_revision)
                )
            except RevisionConflict:
                continue
    return revisions


def create_each(opener: Opener, keys: Sequence[str], value: str) -> list[str]:
    """Try to create every key; the ones that already existed."""
    existed: list[str] = []
    with opener() as backend:
        for key in keys:
            try:
                backend.create(key, value)
            except KeyExists:
                existed.append(key)
    return existed


def create_one(opener: Opener, key: str, value: str) -> int:
    with opener() as backend:
        return backend.create(key, value)


# --- get / create ----------------------------------------------------------------------


def test_revision_of_a_fresh_store_is_its_starting_revision(
    backend: Backend, fresh_revision: int
) -> None:
    assert backend.revision() == fresh_revision


def test_get_of_a_missing_key_returns_none(backend: Backend) -> None:
    assert backend.get("/calico/missing") is None


def test_create_then_get_returns_the_value_with_both_revisions_equal_to_the_returned_one(
    backend: Backend,
) -> None:
    revision = backend.create("/calico/a", '{"x": 1}')

    assert revision > 0
    assert backend.get("/calico/a") == KeyValue("/calico/a", '{"x": 1}', revision, revision)
    assert backend.revision() == revision


def test_create_of_an_existing_key_raises_key_exists_and_changes_nothing(
    backend: Backend,
) -> None:
    revision = backend.create("/calico/a", "first")

    with pytest.raises(KeyExists) as raised:
        backend.create("/calico/a", "second")

    assert raised.value.key == "/calico/a"
    assert backend.get("/calico/a") == KeyValue("/calico/a", "first", revision, revision)
    assert backend.revision() == revision


# --- update ------------------------------------------------------------------------------


def test_update_with_the_current_revision_bumps_mod_revision_and_keeps_create_revision(
    backend: Backend,
) -> None:
    created = backend.create("/calico/a", "v1")

    updated = backend.update("/calico/a", "v2", created)

    assert updated > created
    assert backend.get("/calico/a") == KeyValue("/calico/a", "v2", created, updated)


def test_update_with_a_stale_revision_raises_revision_conflict_and_writes_nothing(
    backend: Backend,
) -> None:
    created = backend.create("/calico/a", "v1")
    current = backend.update("/calico/a", "v2", created)

    with pytest.raises(RevisionConflict) as raised:
        backend.update("/calico/a", "v3", created)

    assert (raised.value.key, raised.value.expected, raised.value.actual) == (
        "/calico/a",
        created,
        current,
    )
    assert backend.get("/calico/a") == KeyValue("/calico/a", "v2", created, current)
    assert backend.revision() == current


def test_update_of_a_missing_key_raises_key_not_found(backend: Backend) -> None:
    before = backend.revision()

    with pytest.raises(KeyNotFound):
        backend.update("/calico/missing", "v", 1)

    assert backend.get("/calico/missing") is None
    assert backend.revision() == before


# --- delete ------------------------------------------------------------------------------


def test_delete_returns_the_previous_key_value_and_removes_the_key(backend: Backend) -> None:
    created = backend.create("/calico/a", "v1")

    assert backend.delete("/calico/a") == KeyValue("/calico/a", "v1", created, created)
    assert backend.get("/calico/a") is None
    assert backend.revision() > created


def test_delete_with_a_stale_expected_revision_raises_revision_conflict_and_keeps_the_key(
    backend: Backend,
) -> None:
    created = backend.create("/calico/a", "v1")
    current = backend.update("/calico/a", "v2", created)

    with pytest.raises(RevisionConflict):
        backend.delete("/calico/a", expected_revision=created)

    assert backend.get("/calico/a") == KeyValue("/calico/a", "v2", created, current)


def test_delete_with_the_current_expected_revision_removes_the_key(backend: Backend) -> None:
    created = backend.create("/calico/a", "v1")

    assert backend.delete("/calico/a", expected_revision=created).value == "v1"
    assert backend.get("/calico/a") is None


def test_delete_of_a_missing_key_raises_key_not_found(backend: Backend) -> None:
    before = backend.revision()

    with pytest.raises(KeyNotFound):
        backend.delete("/calico/missing")

    assert backend.revision() == before


# --- revisions ---------------------------------------------------------------------------


def test_revisions_strictly_increase_across_every_kind_of_write_and_client(
    backend_factory: BackendFactory,
) -> None:
    first, second = backend_factory(), backend_factory()

    revisions = [first.create("/calico/a", "1")]
    revisions.append(second.update("/calico/a", "2", revisions[-1]))
    revisions.append(first.create("/calico/b", "1"))
    revisions.append(second.txn([], [Put("/calico/c", "1"), Delete("/calico/b")]))
    second.delete("/calico/a")
    revisions.append(first.revision())
    revisions.append(second.txn([Compare("/calico/a", 0)], [Put("/calico/a", "3")]))

    assert revisions == sorted(set(revisions))
    assert first.revision() == second.revision() == revisions[-1]


def test_revisions_are_never_reused_after_deletes_even_after_reopening(
    backend_factory: BackendFactory,
) -> None:
    backend = backend_factory()
    created = backend.create("/calico/a", "v")
    backend.delete("/calico/a")
    after_delete = backend.revision()
    backend.close()

    reopened = backend_factory()

    assert after_delete > created
    assert reopened.revision() == after_delete
    assert reopened.list("") == ([], after_delete)
    assert reopened.create("/calico/a", "v") > after_delete


def test_revisions_increase_across_processes(backend_factory: BackendFactory) -> None:
    backend = backend_factory()
    before = backend.create("/calico/parent-1", "v")

    [in_child] = run_in_processes(create_one, [(backend_factory.opener, "/calico/child", "v")])
    after = backend.create("/calico/parent-2", "v")

    assert before < in_child < after
    assert backend.get("/calico/child") == KeyValue("/calico/child", "v", in_child, in_child)


# --- list ----------------------------------------------------------------------------------


def test_list_of_an_empty_store_returns_no_keys_and_its_starting_revision(
    backend: Backend, fresh_revision: int
) -> None:
    assert backend.list("/calico/") == ([], fresh_revision)
    assert backend.list("") == ([], fresh_revision)


def test_list_returns_only_keys_under_the_prefix_sorted_with_a_revision_covering_them(
    backend: Backend,
) -> None:
    for key in ("/calico/pools/b", "/calico/nodes/n1", "/calico/pools/a", "/calico/poolsx"):
        backend.create(key, key)
    before = backend.get("/calico/pools/b")
    assert before is not None
    backend.update("/calico/pools/b", "new", before.mod_revision)

    listed, revision = backend.list("/calico/pools/")

    assert [kv.key for kv in listed] == ["/calico/pools/a", "/calico/pools/b"]
    assert [kv.value for kv in listed] == ["/calico/pools/a", "new"]
    assert revision >= max(kv.mod_revision for kv in listed)
    assert revision == backend.revision()
    assert listed == [backend.get("/calico/pools/a"), backend.get("/calico/pools/b")]


def test_list_prefix_is_a_raw_string_prefix_so_callers_end_directories_with_a_slash(
    backend: Backend,
) -> None:
    for key in ("/a/b", "/a/b/x", "/a/bc", "/a/c", "/a"):
        backend.create(key, "v")

    assert [kv.key for kv in backend.list("/a/b")[0]] == ["/a/b", "/a/b/x", "/a/bc"]
    assert [kv.key for kv in backend.list("/a/b/")[0]] == ["/a/b/x"]


def test_list_with_an_empty_prefix_returns_every_key(backend: Backend) -> None:
    for key in ("/z", "/a", "other", "\U0010ffff"):
        backend.create(key, "v")

    assert [kv.key for kv in backend.list("")[0]] == ["/a", "/z", "other", "\U0010ffff"]


@pytest.mark.parametrize(
    ("prefix", "first_key_after"),
    [("/k\U0010ffff", "/l"), ("/k\ud7ff", "/k\ue000")],
    ids=["highest-code-point", "below-surrogates"],
)
def test_list_prefix_ending_near_the_top_of_unicode_excludes_keys_beyond_it(
    backend: Backend, prefix: str, first_key_after: str
) -> None:
    inside = [prefix, f"{prefix}/x", f"{prefix}\U0010ffff"]
    for key in [*inside, first_key_after, "/k"]:
        backend.create(key, "v")

    assert [kv.key for kv in backend.list(prefix)[0]] == sorted(inside)


# --- txn -----------------------------------------------------------------------------------


def test_txn_with_one_failing_compare_raises_for_that_key_and_writes_nothing(
    backend: Backend,
) -> None:
    a = backend.create("/calico/a", "a1")
    b = backend.create("/calico/b", "b1")

    with pytest.raises(RevisionConflict) as raised:
        backend.txn(
            [Compare("/calico/a", a), Compare("/calico/b", a), Compare("/calico/c", 0)],
            [Put("/calico/a", "a2"), Put("/calico/c", "c1"), Delete("/calico/b")],
        )

    assert (raised.value.key, raised.value.expected, raised.value.actual) == ("/calico/b", a, b)
    assert backend.revision() == b
    assert backend.list("/calico/") == (
        [KeyValue("/calico/a", "a1", a, a), KeyValue("/calico/b", "b1", b, b)],
        b,
    )


def test_txn_with_every_compare_holding_applies_all_ops_at_one_new_revision(
    backend: Backend,
) -> None:
    a = backend.create("/calico/a", "a1")
    b = backend.create("/calico/b", "b1")

    revision = backend.txn(
        [Compare("/calico/a", a), Compare("/calico/b", b), Compare("/calico/c", 0)],
        [Put("/calico/a", "a2"), Put("/calico/c", "c1"), Delete("/calico/b")],
    )

    assert revision == b + 1
    assert backend.list("/calico/") == (
        [KeyValue("/calico/a", "a2", a, revision), KeyValue("/calico/c", "c1", revision, revision)],
        revision,
    )


def test_txn_delete_of_a_missing_key_is_a_noop_beside_other_ops(backend: Backend) -> None:
    revision = backend.txn([], [Delete("/calico/missing"), Put("/calico/a", "v")])

    assert backend.get("/calico/missing") is None
    assert backend.get("/calico/a") == KeyValue("/calico/a", "v", revision, revision)
    with backend.watch("/calico/", 0) as watch:
        assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/a", "v", revision)]
        assert watch.next(timeout=0.1) is None


@pytest.mark.parametrize(
    "ops", [[], [Delete("/calico/missing")]], ids=["no-ops", "only-missing-deletes"]
)
def test_txn_that_changes_nothing_returns_the_current_revision_without_bumping(
    backend: Backend, ops: list[Delete]
) -> None:
    current = backend.create("/calico/a", "v")

    assert backend.txn([Compare("/calico/a", current)], ops) == current
    assert backend.revision() == current


def test_txn_without_ops_still_checks_its_compares(backend: Backend) -> None:
    current = backend.create("/calico/a", "v")

    with pytest.raises(RevisionConflict):
        backend.txn([Compare("/calico/a", current + 1)], [])


def test_txn_naming_one_key_in_two_ops_is_rejected_and_writes_nothing(backend: Backend) -> None:
    before = backend.revision()

    with pytest.raises(ValueError):
        backend.txn([], [Put("/calico/a", "1"), Delete("/calico/a")])

    assert backend.revision() == before


# --- watch ---------------------------------------------------------------------------------


def test_watch_streams_creates_updates_and_deletes_in_order_with_values_and_revisions(
    backend: Backend,
) -> None:
    with backend.watch("/calico/", backend.revision()) as watch:
        created = backend.create("/calico/a", "v1")
        updated = backend.update("/calico/a", "v2", created)
        backend.delete("/calico/a")
        deleted = backend.revision()

        assert next_events(watch, 3) == [
            Event(EventType.PUT, "/calico/a", "v1", created),
            Event(EventType.PUT, "/calico/a", "v2", updated),
            Event(EventType.DELETE, "/calico/a", "v2", deleted),
        ]


def test_watch_delivers_every_op_of_a_transaction_in_op_order_at_its_shared_revision(
    backend: Backend,
) -> None:
    backend.create("/calico/b", "b1")

    with backend.watch("/calico/", backend.revision()) as watch:
        revision = backend.txn(
            [], [Put("/calico/c", "c1"), Delete("/calico/b"), Put("/calico/a", "a1")]
        )

        assert next_events(watch, 3) == [
            Event(EventType.PUT, "/calico/c", "c1", revision),
            Event(EventType.DELETE, "/calico/b", "b1", revision),
            Event(EventType.PUT, "/calico/a", "a1", revision),
        ]


def test_watch_from_a_middle_revision_resumes_without_duplicates_or_gaps(
    backend: Backend,
) -> None:
    revisions = [backend.create(f"/calico/k{i}", str(i)) for i in range(6)]

    with backend.watch("/calico/", revisions[2]) as watch:
        events = next_events(watch, 3)
        assert watch.next(timeout=0.1) is None

    assert [(event.key, event.revision) for event in events] == [
        (f"/calico/k{i}", revisions[i]) for i in range(3, 6)
    ]


def test_watch_delivers_a_backlog_larger_than_one_read_in_order(backend: Backend) -> None:
    # 7 ops per revision so that any read size cuts some revision in the middle.
    expected: list[Event] = []
    for batch in range(172):
        keys = [f"/calico/k{batch:03}-{op}" for op in range(7)]
        revision = backend.txn([], [Put(key, "v") for key in keys])
        expected.extend(Event(EventType.PUT, key, "v", revision) for key in keys)

    with backend.watch("/calico/", 0) as watch:
        assert next_events(watch, len(expected)) == expected
        assert watch.next(timeout=0.1) is None


def test_watch_only_sees_keys_under_its_prefix(backend: Backend) -> None:
    with backend.watch("/calico/pools/", 0) as watch:
        backend.create("/calico/poolsx", "no")
        backend.create("/calico/nodes/n1", "no")
        inside = backend.create("/calico/pools/p1", "yes")
        backend.create("/calico/pools", "no")

        assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/pools/p1", "yes", inside)]
        assert watch.next(timeout=0.1) is None


def test_watch_next_returns_none_when_idle_for_the_timeout(backend: Backend) -> None:
    with backend.watch("/calico/", 0) as watch:
        started = time.monotonic()

        assert watch.next(timeout=0.1) is None
        assert time.monotonic() - started >= 0.1


def test_watch_sees_writes_from_another_backend_instance(
    backend_factory: BackendFactory,
) -> None:
    reader, writer = backend_factory(), backend_factory()

    with reader.watch("/calico/", reader.revision()) as watch:
        revision = writer.create("/calico/a", "v")

        assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/a", "v", revision)]


def test_watch_sees_writes_from_another_process(backend_factory: BackendFactory) -> None:
    backend = backend_factory()

    with backend.watch("/calico/", 0) as watch:
        [revision] = run_in_processes(
            create_one, [(backend_factory.opener, "/calico/from-child", "v")]
        )

        assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/from-child", "v", revision)]


def test_closing_a_watch_from_another_thread_unblocks_a_blocked_next(backend: Backend) -> None:
    watch = backend.watch("/calico/", 0)
    returned: list[Event | None] = []
    waiter = threading.Thread(target=lambda: returned.append(watch.next()))
    waiter.start()
    time.sleep(0.2)

    watch.close()
    waiter.join(timeout=WAIT)

    assert not waiter.is_alive()
    assert returned == [None]


def test_interrupting_a_watch_unblocks_a_blocked_next_and_the_watch_goes_on(
    backend: Backend,
) -> None:
    with backend.watch("/calico/", backend.revision()) as watch:
        returned: list[Event | None] = []
        waiter = threading.Thread(target=lambda: returned.append(watch.next()))
        waiter.start()
        time.sleep(0.2)

        watch.interrupt()
        waiter.join(timeout=WAIT)
        revision = backend.create("/calico/after", "v")

        assert not waiter.is_alive()
        assert returned == [None]
        assert next_events(watch, 1) == [Event(EventType.PUT, "/calico/after", "v", revision)]


def test_an_interrupt_before_next_makes_the_next_wait_return_none(backend: Backend) -> None:
    with backend.watch("/calico/", backend.revision()) as watch:
        watch.interrupt()

        assert watch.next() is None


def test_close_is_idempotent_for_backends_and_watches(backend_factory: BackendFactory) -> None:
    backend = backend_factory()
    watch = backend.watch("/calico/", 0)

    watch.close()
    watch.close()
    backend.close()
    backend.close()

    assert watch.next(timeout=0) is None


def test_watch_from_a_compacted_revision_raises_watch_compacted(
    backend_factory: BackendFactory,
) -> None:
    backend = backend_factory(history=3)
    revisions = [backend.create(f"/calico/k{i}", "v") for i in range(10)]

    with pytest.raises(WatchCompacted) as raised, backend.watch("/calico/", 0) as watch:
        watch.next(timeout=WAIT)

    # `oldest` is the oldest revision a watch can still start after.
    assert raised.value.requested == 0
    assert 0 < raised.value.oldest < revisions[-1]
    retained = [revision for revision in revisions if revision > raised.value.oldest]
    with backend.watch("/calico/", raised.value.oldest) as watch:
        assert [event.revision for event in next_events(watch, len(retained))] == retained


def test_a_watch_that_falls_behind_the_retained_history_raises_watch_compacted_never_skips(
    backend_factory: BackendFactory,
) -> None:
    """An open watch never silently skips history discarded after it was opened.

    A polling store hands events over only when `next()` asks, so a consumer that lags by
    more than the history has lost them and is told so. A streaming store has already sent
    every event to the open watch, so a later compaction takes nothing from it. (etcd's own
    way of falling behind, a stream that breaks and resumes after a compaction, is tested in
    tests/integration/test_datastore_etcd.py.)
    """
    backend = backend_factory(history=3)
    # From the current revision, so that etcd registers the watch as caught up at once.
    start = backend.revision()

    with backend.watch("/calico/", start) as watch:
        revisions = [backend.create(f"/calico/k{i}", "v") for i in range(10)]

        if backend_factory.store.streams_watches:
            assert [event.revision for event in next_events(watch, 10)] == revisions
            return
        with pytest.raises(WatchCompacted) as raised:
            next_events(watch, 10)

    assert raised.value.requested == start


# --- concurrency -------------------------------------------------------------------------


def test_concurrent_compare_and_swap_increments_from_many_processes_lose_no_update(
    backend_factory: BackendFactory,
) -> None:
    processes, increments = 8, 200
    backend = backend_factory()
    backend.create("/calico/counter", "0")

    per_process = run_in_processes(
        count_up, [(backend_factory.opener, "/calico/counter", increments)] * processes
    )

    successes = [revision for revisions in per_process for revision in revisions]
    counter = backend.get("/calico/counter")
    assert counter is not None
    assert len(successes) == processes * increments
    assert len(set(successes)) == len(successes)
    assert counter.value == str(processes * increments)
    assert counter.mod_revision == max(successes)


def test_concurrent_creates_of_the_same_keys_from_two_processes_let_exactly_one_win_each(
    backend_factory: BackendFactory,
) -> None:
    keys = [f"/calico/handles/h{i}" for i in range(50)]

    existed = run_in_processes(
        create_each,
        [(backend_factory.opener, keys, "first"), (backend_factory.opener, keys, "second")],
    )

    assert sorted(existed[0] + existed[1]) == sorted(keys)
    listed, _ = backend_factory().list("/calico/handles/")
    winners = {kv.key: kv.value for kv in listed}
    assert winners == {key: "second" if key in existed[0] else "first" for key in keys}


# --- SQLite specifics ------------------------------------------------------------------------


def test_sqlite_first_open_of_a_fresh_file_from_many_processes_at_once_works(
    tmp_path: Path,
) -> None:
    opener = functools.partial(SqliteBackend, tmp_path / "calico.db", create=True)

    revisions = run_in_processes(create_one, [(opener, f"/calico/p{i}", "v") for i in range(4)])

    with opener() as backend:
        assert sorted(revisions) == [1, 2, 3, 4]
        assert [kv.key for kv in backend.list("/calico/")[0]] == [f"/calico/p{i}" for i in range(4)]


def test_sqlite_creates_the_store_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "calico.db"

    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/a", "v")
        journal_mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]

    assert journal_mode == "wal"


def assert_unavailable_naming(
    raised: pytest.ExceptionInfo[DatastoreUnavailable], path: Path
) -> None:
    message = str(raised.value)
    assert str(path) in message
    assert "\n" not in message


def test_sqlite_garbage_file_raises_datastore_unavailable_naming_the_path(tmp_path: Path) -> None:
    path = tmp_path / "calico.db"
    path.write_bytes(b"this is not a database\n" * 400)

    with pytest.raises(DatastoreUnavailable) as raised, SqliteBackend(path) as backend:
        backend.list("")

    assert_unavailable_naming(raised, path)
    assert "not a database" in str(raised.value)


def test_sqlite_corrupt_pages_raise_datastore_unavailable_on_use(tmp_path: Path) -> None:
    path = tmp_path / "calico.db"
    with SqliteBackend(path, create=True) as backend:
        for i in range(50):
            backend.create(f"/calico/k{i}", "v" * 200)
    page_size = 4096
    with path.open("r+b") as file:
        file.seek(page_size)
        file.write(b"\xff" * (path.stat().st_size - page_size))

    with pytest.raises(DatastoreUnavailable) as raised, SqliteBackend(path) as backend:
        backend.list("")

    assert_unavailable_naming(raised, path)


def test_sqlite_path_under_a_regular_file_raises_datastore_unavailable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    path = tmp_path / "file" / "sub" / "calico.db"

    with pytest.raises(DatastoreUnavailable) as raised:
        SqliteBackend(path, create=True)

    assert_unavailable_naming(raised, path)


def test_sqlite_directory_as_path_raises_datastore_unavailable(tmp_path: Path) -> None:
    with pytest.raises(DatastoreUnavailable) as raised:
        SqliteBackend(tmp_path)

    assert_unavailable_naming(raised, tmp_path)


def test_sqlite_schema_newer_than_supported_raises_datastore_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "calico.db"
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA user_version = 999")

    with pytest.raises(DatastoreUnavailable) as raised:
        SqliteBackend(path)

    assert_unavailable_naming(raised, path)
    assert "999" in str(raised.value)


def test_sqlite_use_after_close_raises_datastore_unavailable(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "calico.db", create=True)
    backend.close()

    with pytest.raises(DatastoreUnavailable):
        backend.get("/calico/a")


def test_sqlite_closing_the_backend_ends_its_watches(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "calico.db", create=True)
    watch = backend.watch("/calico/", 0)

    backend.close()

    assert watch.next() is None


def _write_through_inherited_backend(backend: SqliteBackend, results: Queue[int]) -> None:
    results.put(backend.create("/calico/child", "v"))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork()")
def test_sqlite_backend_inherited_through_fork_opens_its_own_connection(tmp_path: Path) -> None:
    fork = multiprocessing.get_context("fork")
    with SqliteBackend(tmp_path / "calico.db", create=True) as backend:
        before = backend.create("/calico/parent-1", "v")
        results: Queue[int] = fork.Queue()
        child = fork.Process(target=_write_through_inherited_backend, args=(backend, results))
        child.start()
        in_child = results.get(timeout=WAIT)
        child.join(timeout=WAIT)

        assert child.exitcode == 0
        assert before < in_child < backend.create("/calico/parent-2", "v")


def _counted_polls(watch: Any) -> list[int]:
    """Counts the watch's looks at the database from now on (one element per look)."""
    if watch._wakes is None:
        pytest.skip("inotify cannot watch the directory here: the watch polls")
    # The first look opens the watch's connection (SQLite's own files are written, which
    # must not wake it: only `-changed` does).
    assert watch.next(timeout=0.1) is None
    looks: list[int] = []
    looked = watch._poll

    def counted() -> None:
        looks.append(1)
        looked()

    watch._poll = counted
    return looks


def test_an_idle_sqlite_watch_sleeps_on_inotify_instead_of_polling(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)  # the default poll interval
    with backend.watch("/calico/", 0) as watch:
        looks = _counted_polls(watch)
        assert watch.next(timeout=0.5) is None
    # It looks on entry and when the wait is over; polling every poll_interval (20 ms) would
    # be some 25 looks.
    assert len(looks) == 2


def test_a_sqlite_watch_is_not_woken_by_writes_to_other_files_of_its_directory(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    with backend.watch("/calico/", backend.revision()) as watch:
        looks = _counted_polls(watch)
        stop = threading.Event()

        def scribble() -> None:  # what SQLite's WAL and pages, or anything else, would do
            while not stop.wait(0.02):
                (tmp_path / "store.db-wal-like").write_bytes(b"x")

        writer = threading.Thread(target=scribble)
        writer.start()
        try:
            assert watch.next(timeout=0.5) is None
        finally:
            stop.set()
            writer.join()
    assert len(looks) == 2  # on entry and when the wait is over


def test_sqlite_watch_is_woken_by_another_process_write_not_by_its_poll(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    # A poll interval far longer than any wait here: only the wake-up can deliver the event.
    backend = SqliteBackend(path, create=True, poll_interval=600)
    delivered: queue.Queue[Event | None] = queue.Queue()
    with backend.watch("/calico/", 0) as watch:
        reader = threading.Thread(target=lambda: delivered.put(watch.next(timeout=None)))
        reader.start()
        run_in_processes(
            create_one, [(functools.partial(SqliteBackend, path, create=True), "/calico/woke", "v")]
        )
        event = delivered.get(timeout=WAIT)
        reader.join()

        assert event is not None and event.key == "/calico/woke"
