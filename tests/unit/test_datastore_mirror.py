"""The in-memory mirror Felix and confd read from: the same answers as the datastore."""

from __future__ import annotations

import contextlib
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pycalico.datastore.backend import (
    Backend,
    DatastoreError,
    Delete,
    Event,
    EventType,
    KeyValue,
    Put,
)
from pycalico.datastore.follow import Wakeup, follow
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.sqlite import SqliteBackend

PREFIX = "/calico/"


def catch_up(mirror: Mirror, backend: SqliteBackend, after: int, until: int) -> None:
    with backend.watch(PREFIX, after) as watch:
        while mirror.revision() < until:
            event = watch.next(timeout=5)
            assert event is not None
            mirror.apply(event)


def test_a_mirror_fed_by_the_watch_lists_exactly_what_the_datastore_lists(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    backend.create("/calico/a/0", "before")
    mirror = Mirror(PREFIX)
    loaded = mirror.load(backend)
    rng = random.Random(7)
    keys = [f"/calico/{rng.choice('abc')}/{i}" for i in range(40)]
    for _ in range(300):
        key = rng.choice(keys)
        if rng.random() < 0.3:
            backend.txn([], [Delete(key)])
        elif rng.random() < 0.2:
            backend.txn([], [Put(key, "t1"), Put(rng.choice(keys) + "x", "t2")])
        else:
            backend.txn([], [Put(key, str(rng.random()))])
    last = backend.revision()
    backend.create("/elsewhere/z", "not under the prefix")
    catch_up(mirror, backend, loaded, last)

    for prefix in ("/calico/", "/calico/a/", "/calico/b/1", "/calico/zz"):
        assert mirror.list(prefix)[0] == backend.list(prefix)[0]
    assert mirror.get("/calico/a/0") == backend.get("/calico/a/0")
    assert mirror.get("/elsewhere/z") is None


def test_an_event_decoded_ahead_is_not_decoded_again_once_the_mirror_has_taken_it() -> None:
    mirror = Mirror(PREFIX)
    mirror.apply(Event(EventType.PUT, "/calico/a", "1", 5))
    ahead = mirror.decoded_ahead(Event(EventType.PUT, "/calico/a", "2", 6), lambda v: [int(v)])
    mirror.apply(Event(EventType.PUT, "/calico/a", "2", 6))
    kv = mirror.get("/calico/a")
    assert kv is not None
    assert mirror.decoded(kv, lambda kv: pytest.fail("decoded twice")) is ahead == [2]


def test_each_stored_value_is_decoded_once_per_version(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    backend.create("/calico/a", "1")
    backend.create("/calico/b", "2")
    mirror = Mirror(PREFIX)
    loaded = mirror.load(backend)
    calls: list[str] = []

    def decode(kv: KeyValue) -> int:
        calls.append(kv.key)
        return int(kv.value)

    def values() -> list[int]:
        return [mirror.decoded(kv, decode) for kv in mirror.list(PREFIX)[0]]

    assert values() == [1, 2] and values() == [1, 2]
    assert calls == ["/calico/a", "/calico/b"]
    backend.update("/calico/a", "10", backend.get("/calico/a").mod_revision)  # type: ignore[union-attr]
    catch_up(mirror, backend, loaded, backend.revision())
    assert values() == [10, 2]
    assert calls == ["/calico/a", "/calico/b", "/calico/a"]
    mirror.load(backend)  # a reload keeps what is still current
    assert values() == [10, 2] and len(calls) == 3


def test_the_mirror_refuses_writes_and_watches() -> None:
    mirror = Mirror(PREFIX)
    with pytest.raises(DatastoreError, match="read-only"):
        mirror.create("/calico/a", "v")
    with pytest.raises(DatastoreError, match="cannot be watched"):
        mirror.watch(PREFIX, 0)


@contextlib.contextmanager
def following(backend: Backend, apply: Callable[[Mirror], None], **kwargs: Any) -> Iterator[None]:
    """`follow` on its own thread (no resyncs unless asked), stopped and joined after."""
    stop = threading.Event()
    resync = kwargs.pop("resync_seconds", lambda: math.inf)
    follower = threading.Thread(
        target=follow, args=(backend, apply, stop, resync), kwargs=kwargs
    )
    follower.start()
    try:
        yield
    finally:
        stop.set()  # with no timeout and no change, only `stop` itself can end a wait
        follower.join(timeout=10)
    assert not follower.is_alive()


def until(condition: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def keys_of(view: Mirror) -> list[str]:
    return [kv.key for kv in view.list(PREFIX)[0]]


def test_follow_applies_once_loaded_then_after_changes_from_a_current_mirror(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    backend.create("/calico/first", "1")
    seen: list[tuple[int, list[str]]] = []

    with following(backend, lambda view: seen.append((view.revision(), keys_of(view)))):
        assert until(lambda: bool(seen))
        assert seen[0] == (backend.revision(), ["/calico/first"])
        backend.txn([], [Put("/calico/second", "2"), Delete("/calico/first")])
        target = backend.revision()
        assert until(lambda: seen[-1][0] >= target)
        assert seen[-1] == (target, ["/calico/second"])


def test_follow_takes_changes_no_key_of_which_is_relevant_into_the_mirror_without_applying(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    applied: list[list[str]] = []
    idled = threading.Event()

    with following(
        backend,
        lambda view: applied.append(keys_of(view)),
        idle=lambda _: idled.set() or math.inf,
        relevant=lambda event, _: "/wanted/" in event.key,
    ):
        assert until(lambda: bool(applied)) and applied == [[]]
        idled.clear()
        backend.create("/calico/other/a", "1")
        assert idled.wait(10)  # the change went by as a quiet turn
        assert applied == [[]]
        backend.create("/calico/wanted/b", "2")
        assert until(lambda: len(applied) >= 2)
        assert applied[1:] == [["/calico/other/a", "/calico/wanted/b"]]  # the mirror kept both


def test_follow_sleeps_between_changes_until_its_wakeup_rings_and_stops_when_told(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    idles: list[float] = []
    turned = threading.Event()
    wakeup = Wakeup()

    def idle(view: Mirror) -> float:
        idles.append(time.monotonic())
        turned.set()
        return math.inf  # nothing due until something wakes the loop

    with following(backend, lambda view: None, idle=idle, wakeup=wakeup):
        assert turned.wait(10)
        turned.clear()
        assert not turned.wait(1.0)  # no timed tick: the loop sleeps
        assert len(idles) == 1
        wakeup.ring()
        assert turned.wait(10)
        assert len(idles) == 2


def test_follow_runs_idle_again_when_the_seconds_it_asked_for_have_passed(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    asked: list[float] = []

    def idle(view: Mirror) -> float:
        asked.append(time.monotonic())
        return 0.05

    with following(backend, lambda view: None, idle=idle):
        assert until(lambda: len(asked) >= 3)


def test_changes_within_the_minimum_interval_of_the_last_apply_are_applied_together(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    applied: list[list[str]] = []

    with following(
        backend, lambda view: applied.append(keys_of(view)), min_apply_interval=3600.0
    ):
        assert until(lambda: bool(applied))
        backend.create("/calico/a", "1")
        backend.create("/calico/b", "2")
        time.sleep(0.5)  # would have been two applies without the interval
        assert applied == [[]]


def test_a_lone_change_after_a_quiet_interval_is_applied_at_once(tmp_path: Path) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    applied: list[list[str]] = []

    with following(backend, lambda view: applied.append(keys_of(view)), min_apply_interval=0.2):
        assert until(lambda: bool(applied))
        time.sleep(0.3)
        backend.create("/calico/a", "1")
        backend.create("/calico/b", "2")
        assert until(lambda: applied[-1] == ["/calico/a", "/calico/b"])


class CountingBackend(SqliteBackend):
    """Counts its watches' `next` calls: a loop that spins shows up as thousands."""

    nexts = 0

    def watch(self, prefix: str, after_revision: int) -> Any:
        inner = super().watch(prefix, after_revision)
        backend = self

        class Counted:
            def next(self, timeout: float | None = None) -> Any:
                backend.nexts += 1
                return inner.next(timeout)

            def __getattr__(self, name: str) -> Any:
                return getattr(inner, name)

        return Counted()


def test_a_change_waiting_for_its_apply_is_waited_for_without_spinning(tmp_path: Path) -> None:
    backend = CountingBackend(tmp_path / "store.db", create=True)
    applied: list[list[str]] = []
    in_apply = threading.Event()

    def apply(view: Mirror) -> None:
        applied.append(keys_of(view))
        if applied[-1] == ["/calico/a"]:
            in_apply.set()
            time.sleep(0.3)  # a change arrives meanwhile: it must wait out the interval

    with following(backend, apply, min_apply_interval=1.0):
        assert until(lambda: bool(applied))
        time.sleep(1.1)  # past the interval: the next change is applied at once
        backend.create("/calico/a", "1")
        assert in_apply.wait(10)
        backend.create("/calico/b", "2")
        before = backend.nexts
        assert until(lambda: applied[-1] == ["/calico/a", "/calico/b"], 20)
        assert backend.nexts - before < 20


def test_a_reload_keeps_the_stored_value_object_of_every_key_still_at_its_version(
    tmp_path: Path,
) -> None:
    backend = SqliteBackend(tmp_path / "store.db", create=True)
    backend.create("/calico/a", "1")
    backend.create("/calico/b", "2")
    mirror = Mirror(PREFIX)
    mirror.load(backend)
    a, b = mirror.get("/calico/a"), mirror.get("/calico/b")
    assert a is not None and b is not None
    backend.update("/calico/b", "20", b.mod_revision)

    mirror.load(backend)

    assert mirror.get("/calico/a") is a
    reloaded = mirror.get("/calico/b")
    assert reloaded is not b and reloaded is not None and reloaded.value == "20"
