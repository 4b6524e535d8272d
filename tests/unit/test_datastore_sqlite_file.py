"""The SQLite store as a file: only the file at the path is written, it is created only when
asked and only in an existing directory, and it is private to its owner."""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from pycalico.datastore.backend import DatastoreUnavailable
from pycalico.datastore.config import DatastoreConfig, open_backend
from pycalico.datastore.sqlite import SqliteBackend

WAIT = 10.0


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def digest(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def test_a_write_after_the_file_is_removed_fails_naming_it_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/a", "v")
        # A second name keeps the removed file readable to the test, as an open one is.
        os.link(path, tmp_path / "removed.db")
        path.unlink()
        wal = Path(f"{path}-wal")
        before = digest(tmp_path / "removed.db", wal)

        with pytest.raises(DatastoreUnavailable) as raised:
            backend.create("/calico/b", "v")
        with pytest.raises(DatastoreUnavailable) as again:
            backend.get("/calico/a")

        assert f"datastore {path} was removed or replaced" in str(raised.value)
        assert f"datastore {path} does not exist" in str(again.value)
        assert digest(tmp_path / "removed.db", wal) == before
        assert not path.exists()


def test_a_write_waiting_for_the_lock_when_the_file_is_removed_commits_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/a", "v")
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's write, holding the lock
        outcome: list[BaseException | int] = []

        def write() -> None:
            try:
                outcome.append(backend.create("/calico/b", "v"))
            except DatastoreUnavailable as exc:
                outcome.append(exc)

        writer = threading.Thread(target=write)
        writer.start()
        # Give the write time to pass its first check and queue on the lock; were it slower,
        # the first check would refuse it instead, and the assertions below still hold.
        time.sleep(0.2)
        os.link(path, tmp_path / "removed.db")
        path.unlink()
        before = digest(tmp_path / "removed.db", Path(f"{path}-wal"))
        holder.execute("ROLLBACK")
        writer.join(WAIT)

        assert len(outcome) == 1 and isinstance(outcome[0], DatastoreUnavailable), outcome
        assert digest(tmp_path / "removed.db", Path(f"{path}-wal")) == before
        holder.close()


def test_after_the_file_is_replaced_one_operation_fails_and_the_next_reads_the_new_file(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(tmp_path / "new.db", create=True) as other:
        other.create("/calico/new", "v")
    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/old", "v")
        # Replaced as it must be: the old file's -wal and -shm go with it.
        os.replace(tmp_path / "new.db", path)
        for suffix in ("-wal", "-shm"):
            os.unlink(f"{path}{suffix}")

        with pytest.raises(DatastoreUnavailable, match="was removed or replaced"):
            backend.list("/calico/")

        assert [kv.key for kv in backend.list("/calico/")[0]] == ["/calico/new"]
        backend.create("/calico/after", "v")
    with SqliteBackend(path) as reopened:
        assert [kv.key for kv in reopened.list("/calico/")[0]] == [
            "/calico/after",
            "/calico/new",
        ]


def test_a_replacement_next_to_the_old_files_wal_is_refused_not_read(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(tmp_path / "new.db", create=True) as other:
        other.create("/calico/new", "v")
    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/old", "v")
        os.replace(tmp_path / "new.db", path)

        with pytest.raises(DatastoreUnavailable, match="was removed or replaced"):
            backend.get("/calico/old")
        with pytest.raises(DatastoreUnavailable) as raised:
            backend.get("/calico/new")

        assert f"{path}-wal is still the old file's" in str(raised.value)


def test_a_watch_on_a_removed_file_fails_instead_of_going_quiet(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(path, create=True) as backend, backend.watch("/calico/", 0) as watch:
        backend.create("/calico/a", "v")
        assert watch.next(timeout=WAIT) is not None
        path.unlink()

        with pytest.raises(DatastoreUnavailable, match=f"datastore {path} was removed"):
            watch.next(timeout=WAIT)


def test_a_missing_store_is_not_created_without_create(tmp_path: Path) -> None:
    path = tmp_path / "store.db"

    with pytest.raises(DatastoreUnavailable, match=f"^datastore {path} does not exist$"):
        SqliteBackend(path)
    with pytest.raises(DatastoreUnavailable, match=f"datastore {path} does not exist"):
        open_backend(DatastoreConfig(sqlite_path=str(path)))

    assert list(tmp_path.iterdir()) == []


def test_create_makes_the_file_but_never_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "missing" / "dir" / "store.db"

    with pytest.raises(DatastoreUnavailable) as raised:
        SqliteBackend(path, create=True)

    assert str(raised.value) == (
        f"cannot create datastore {path}: directory {path.parent} does not exist"
    )
    assert list(tmp_path.iterdir()) == []


def test_create_refuses_the_wal_of_a_removed_store(tmp_path: Path) -> None:
    path = tmp_path / "store.db"
    Path(f"{path}-wal").write_bytes(b"left by a removed store")

    with pytest.raises(DatastoreUnavailable, match=f"{path}-wal is left from a removed"):
        SqliteBackend(path, create=True)

    assert not path.exists()


def test_a_new_store_is_private_to_its_owner(tmp_path: Path) -> None:
    directory = tmp_path / "calico"
    directory.mkdir(mode=0o755)
    directory.chmod(0o755)  # whatever the umask
    path = directory / "store.db"

    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/a", "v")
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")

        assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(directory) == 0o755  # perhaps shared: warned about, never changed


def test_an_existing_open_store_is_tightened_when_started_with_a_log_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "store.db"
    with SqliteBackend(path, create=True) as backend:
        backend.create("/calico/a", "v")
        # A store from before stores were private, as a user would find it.
        for loose in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            loose.chmod(0o644)
        tmp_path.chmod(0o755)

        with caplog.at_level(logging.WARNING, "pycalico.datastore"):
            SqliteBackend(path).close()
            assert caplog.messages == [] and mode(path) == 0o644  # a user only, not a starter
            SqliteBackend(path, create=True).close()

        assert (mode(path), mode(Path(f"{path}-wal")), mode(tmp_path)) == (0o600, 0o600, 0o755)
        assert f"{path} had mode 0644; tightened to 0600" in caplog.messages
        assert (
            f"{tmp_path}, the datastore's directory, has mode 0755; 0700 is recommended"
            in caplog.messages
        )


def test_a_shared_sticky_directory_is_left_as_it_is(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)

    SqliteBackend(shared / "store.db", create=True).close()

    assert mode(shared) == 0o1777
    assert mode(shared / "store.db") == 0o600
