"""The embedded datastore: the Backend contract on one SQLite file.

Many processes on one machine share the file. SQLite serialises writers, so every write
runs in a `BEGIN IMMEDIATE` transaction: the write lock is taken before the compares are
read, which makes read-check-write atomic across processes (no lost update). WAL mode lets
readers and watchers run while a writer holds that lock.

Layout:

* `kv` holds the keys with their create and mod revisions;
* `meta` is one row: the store revision (never reused, not even after deletes) and
  `compacted`, the newest revision whose events have been pruned;
* `events` records one row per applied op, keyed by (revision, seq), for watches. Writers
  prune it so that the events of the last `history` revisions are kept.

Watches poll `events`; each has its own connection so it never contends with the backend's
lock. Between polls a watch sleeps on inotify. A commit writes the WAL file before it
publishes the commit in the -shm index (shared memory: no inotify event), so a watcher woken
by the WAL write could find nothing yet; every writer therefore writes one byte to
`<path>-changed` once its commit is published, and watchers wake on that file alone: one
look per commit. An idle watch costs nothing: it looks on
its own only every WOKEN_RECHECK_SECONDS, for a writer that died between its commit and that
byte. Where inotify cannot watch the directory, it polls every `poll_interval`. (Polling
every 20 ms made each calico-node's Felix and confd wake 100 times a second doing nothing:
1.4% of a core per node, idle; looking again for 0.2 s after each wake-up, as the watches
did before the `-changed` byte, cost each of a 100-node lab's 200 watchers ten polls per
write.)

The store is the file at the path, not whatever file a connection happens to hold: every
operation first checks that the path still names the file (device and inode) it opened, and
a write checks again just before it commits. If the file was removed or replaced, the
operation fails naming the path and the old connection is dropped unused; the next operation
opens the file now at the path. Without this a process would go on writing into an unlinked
file while the others use a new one: two stores handing out the same addresses.

Only a caller that may create the store passes `create=True` (calico-node at startup,
calicoctl's writes); it creates the file, never its directory, so a mistyped path fails. The
store holds every resource, so it is private: the file is created 0600 (SQLite gives its -wal
and -shm the file's mode), and such a caller also takes away anything more from an existing
store, with a log line. Its directory is only warned about when open to others, as etcd
warns about its data directory: it may be shared, and is never changed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import stat
import threading
import time
import urllib.parse
import weakref
from collections import deque
from collections.abc import Iterator, Sequence

from pycalico.datastore import dir_changes
from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreUnavailable,
    Delete,
    Event,
    EventType,
    KeyValue,
    Op,
    Put,
    RevisionConflict,
    Watch,
    WatchCompacted,
)

log = logging.getLogger("pycalico.datastore")

_SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        create_revision INTEGER NOT NULL,
        mod_revision INTEGER NOT NULL
    ) WITHOUT ROWID""",
    """CREATE TABLE IF NOT EXISTS meta (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        revision INTEGER NOT NULL,
        compacted INTEGER NOT NULL
    )""",
    "INSERT OR IGNORE INTO meta (id, revision, compacted) VALUES (1, 0, 0)",
    """CREATE TABLE IF NOT EXISTS events (
        revision INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        key TEXT NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (revision, seq)
    ) WITHOUT ROWID""",
    f"PRAGMA user_version = {_SCHEMA_VERSION}",
)

# Writers wait this long for another process's write lock before giving up.
_BUSY_TIMEOUT_SECONDS = 30.0

# A watch cursor whose seq is this has delivered every event of its revision.
_WHOLE_REVISION = 2**63 - 1

_WATCH_BATCH = 500
# How often a watch that inotify wakes looks anyway: only a writer that died between its
# commit and its `-changed` byte leaves a watcher asleep.
WOKEN_RECHECK_SECONDS = 30.0
# Written to by every writer once its commit is published (see the module's docstring).
CHANGED_SUFFIX = "-changed"

# Connections that are never touched again, not even closed: those inherited through fork(),
# whose file locks and shared memory belong to the parent, and those whose file was removed
# or replaced, because closing the last connection to a file checkpoints and then deletes
# `<path>-wal` and `<path>-shm` by name, which by then may be the new store's. Holding them
# here keeps garbage collection from closing them.
_parked_connections: list[sqlite3.Connection] = []

# SQLite's own files next to the store. Left behind by a removed store, SQLite would take
# them for a new store's at the same path and replay the old pages into it.
_COMPANION_SUFFIXES = ("-wal", "-shm", "-journal")

_FileIdentity = tuple[int, int]  # (st_dev, st_ino)


def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string that starts with `prefix`; None if unbounded.

    SQLite compares TEXT as UTF-8 bytes, which orders like code points, so incrementing
    the last code point that can be incremented gives the exclusive end of the range.
    """
    chars = list(prefix)
    while chars:
        last = ord(chars.pop())
        if last < 0x10FFFF:
            following = last + 1
            if 0xD800 <= following <= 0xDFFF:
                # Surrogates cannot be encoded in UTF-8; the next encodable one follows them.
                following = 0xE000
            return "".join(chars) + chr(following)
    return None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _identity_at(path: str) -> _FileIdentity | None:
    """The file the path names now, or None if it names none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _connect(path: str) -> sqlite3.Connection:
    # mode=rw: SQLite never creates the file; only SqliteBackend._create does, with its mode.
    uri = "file:" + urllib.parse.quote(os.path.abspath(path)) + "?mode=rw"
    # Autocommit (isolation_level=None) so that every transaction is begun explicitly, with
    # the locking mode chosen here rather than by the sqlite3 module.
    conn = sqlite3.connect(
        uri,
        uri=True,
        timeout=_BUSY_TIMEOUT_SECONDS,
        isolation_level=None,
        check_same_thread=False,
    )
    # In WAL mode NORMAL keeps the store consistent through any process crash and skips the
    # fsync per commit; only an OS crash can lose the newest commits. Every CNI call commits
    # several times, so this is most of its datastore cost.
    conn.execute("PRAGMA synchronous=NORMAL")
    return conn


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode, which persists, so only the creator of a store does this.

    The switch cannot happen inside a transaction, and it upgrades a read lock to a write
    lock, where SQLite reports contention at once instead of calling the busy handler (it
    could deadlock). Processes opening a fresh file together do contend, so retry here.
    """
    deadline = time.monotonic() + _BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
        time.sleep(0.005)


def _ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version == _SCHEMA_VERSION:
        return
    if version > _SCHEMA_VERSION:
        raise DatastoreUnavailable(
            f"cannot open datastore {path}: schema version {version} is newer than "
            f"this pycalico supports ({_SCHEMA_VERSION})"
        )
    _switch_to_wal(conn)
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have created the schema while this one waited for the lock.
        if conn.execute("PRAGMA user_version").fetchone()[0] != _SCHEMA_VERSION:
            for statement in _SCHEMA:
                conn.execute(statement)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _tighten(path: str, st: os.stat_result, mode: int) -> None:
    """Take away every permission beyond `mode`, saying so; a file of another owner is left."""
    current = stat.S_IMODE(st.st_mode)
    if not current & ~mode:
        return
    try:
        os.chmod(path, current & mode)
    except OSError as exc:
        log.warning(
            "%s has mode %04o, readable beyond its owner, and cannot be tightened: %s",
            path,
            current,
            exc.strerror or _one_line(exc),
        )
        return
    log.warning("%s had mode %04o; tightened to %04o", path, current, current & mode)


def _warn_if_open_directory(directory: str) -> None:
    """Warn when the store's directory is open beyond its owner, as etcd warns about its
    data directory. It is not changed: it may be shared (`/var/lib`, `/tmp`), and the
    store's own files are private (0600) whatever their directory's mode."""
    try:
        st = os.stat(directory)
    except OSError:
        return  # the store's own open reports a missing directory
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077:
        log.warning(
            "%s, the datastore's directory, has mode %04o; 0700 is recommended", directory, mode
        )


def _check_retained(compacted: int, cursor: tuple[int, int]) -> None:
    """Raise WatchCompacted unless every event after `cursor` is still in the table."""
    revision, seq = cursor
    if seq == _WHOLE_REVISION:
        if compacted > revision:
            raise WatchCompacted(revision, compacted)
    elif compacted >= revision:
        raise WatchCompacted(revision - 1, compacted)


class SqliteBackend(Backend):
    """The Backend contract on one SQLite file, shared by any number of processes.

    `create`: make the file if it is missing (its directory must exist), and take away
    permissions beyond the owner's from an existing one; otherwise a missing file is an
    error naming the path. `history` is how many of the latest revisions keep their events
    for watches; a watch starting further back raises WatchCompacted. Each writer prunes
    with its own setting. `poll_interval` is how often watches look for new events, in
    seconds, where inotify cannot tell them of writes.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        create: bool = False,
        history: int = 100_000,
        poll_interval: float = 0.02,
    ) -> None:
        if history < 1:
            raise ValueError("history must keep at least one revision")
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        self.path = os.fspath(path)
        self._history = history
        self._poll_interval = poll_interval
        self._lock = threading.Lock()
        self._closed = False
        self._watches: weakref.WeakSet[SqliteWatch] = weakref.WeakSet()
        self._conn: sqlite3.Connection | None = None
        self._identity: _FileIdentity | None = None  # the file self._conn holds
        # The -wal and -shm files self._conn opened, which SQLite keeps open until it closes.
        self._companions: dict[str, _FileIdentity | None] = {}
        # Opened now so that an unusable file is reported by the constructor. Only this
        # first open may create: a store that disappears later is reported, not remade.
        self._open(create)
        self._pid = os.getpid()

    def _open(self, create: bool) -> sqlite3.Connection:
        """Connect to the file now at the path, which becomes the one this backend holds."""
        identity = self._find(create)
        if self._identity is not None and identity != self._identity:
            self._refuse_stale_companions()
        try:
            conn = _connect(self.path)
        except sqlite3.Error as exc:
            raise DatastoreUnavailable(
                f"cannot open datastore {self.path}: {_one_line(exc)}"
            ) from exc
        try:
            _ensure_schema(conn, self.path)
            if _identity_at(self.path) != identity:
                raise self._replaced()
        except BaseException as exc:
            _parked_connections.append(conn)  # it may hold another file: never close it
            if isinstance(exc, sqlite3.Error):
                raise DatastoreUnavailable(
                    f"cannot open datastore {self.path}: {_one_line(exc)}"
                ) from exc
            raise
        self._conn, self._identity = conn, identity
        self._companions = {suffix: _identity_at(self.path + suffix) for suffix in ("-wal", "-shm")}
        return conn

    def _refuse_stale_companions(self) -> None:
        """After the file was replaced: the old file's -wal or -shm still at the path would
        be read as the new file's, pages of one store written over the other."""
        for suffix, identity in self._companions.items():
            if identity is not None and _identity_at(self.path + suffix) == identity:
                raise DatastoreUnavailable(
                    f"datastore {self.path} was replaced while in use, and {self.path}{suffix} "
                    "is still the old file's; remove it once no process uses the old file"
                )

    def _find(self, create: bool) -> _FileIdentity:
        """The file at the path, created if allowed and missing, with its mode tightened."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if create:
                return self._create()
            raise DatastoreUnavailable(f"datastore {self.path} does not exist") from None
        except OSError as exc:
            raise DatastoreUnavailable(
                f"cannot open datastore {self.path}: {exc.strerror or _one_line(exc)}"
            ) from exc
        if not stat.S_ISREG(st.st_mode):
            raise DatastoreUnavailable(f"cannot open datastore {self.path}: not a regular file")
        if create:
            # Whoever may start the store (calico-node at startup) also secures one made
            # before stores were private; the CNI and calicoctl's reads only use it.
            _tighten(self.path, st, 0o600)
            for suffix in ("-wal", "-shm"):
                with contextlib.suppress(OSError):  # absent, or gone since: nothing to do
                    _tighten(self.path + suffix, os.stat(self.path + suffix), 0o600)
            _warn_if_open_directory(os.path.dirname(os.path.abspath(self.path)))
        return st.st_dev, st.st_ino

    def _create(self) -> _FileIdentity:
        directory = os.path.dirname(os.path.abspath(self.path))
        if not os.path.isdir(directory):
            raise DatastoreUnavailable(
                f"cannot create datastore {self.path}: directory {directory} does not exist"
            )
        for suffix in _COMPANION_SUFFIXES:
            # Refused rather than removed: deciding they are stale races with a process that
            # is creating the same store right now, whose files they may be.
            if os.path.lexists(self.path + suffix) and not os.path.lexists(self.path):
                raise DatastoreUnavailable(
                    f"cannot create datastore {self.path}: {self.path}{suffix} is left from "
                    "a removed datastore; remove it once no process uses the old one"
                )
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            return self._find(create=False)  # another process created it first
        except OSError as exc:
            raise DatastoreUnavailable(
                f"cannot create datastore {self.path}: {exc.strerror or _one_line(exc)}"
            ) from exc
        try:
            st = os.fstat(fd)
        finally:
            os.close(fd)
        log.info("created datastore %s", self.path)
        _warn_if_open_directory(directory)
        return st.st_dev, st.st_ino

    def _replaced(self) -> DatastoreUnavailable:
        return DatastoreUnavailable(
            f"datastore {self.path} was removed or replaced while in use; nothing was "
            "written to the old file, and the next operation opens the file now at the path"
        )

    def _checked(self, conn: sqlite3.Connection) -> sqlite3.Connection:
        """`conn` (this backend's) if the path still names its file; else it is dropped."""
        if _identity_at(self.path) != self._identity:
            _parked_connections.append(conn)
            self._conn = None
            raise self._replaced()
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise DatastoreUnavailable(f"datastore {self.path} is closed")
            if self._pid != os.getpid():
                if self._conn is not None:
                    _parked_connections.append(self._conn)
                self._conn, self._pid = None, os.getpid()
            conn = self._open(create=False) if self._conn is None else self._checked(self._conn)
            try:
                yield conn
            except sqlite3.Error as exc:
                raise DatastoreUnavailable(f"datastore {self.path}: {_one_line(exc)}") from exc

    @contextlib.contextmanager
    def _transaction(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._connection() as conn:
            conn.execute(begin)
            try:
                yield conn
                # Again just before the commit: a write may have waited long for the lock.
                self._checked(conn).execute("COMMIT")
            except BaseException:
                # Also after a failed COMMIT: a long-running process must not be left inside
                # a transaction that every later BEGIN would trip over.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def get(self, key: str) -> KeyValue | None:
        with self._connection() as conn:
            row = conn.execute(
                "SELECT value, create_revision, mod_revision FROM kv WHERE key = ?", (key,)
            ).fetchone()
        return None if row is None else KeyValue(key, *row)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        end = _prefix_end(prefix)
        query = "SELECT key, value, create_revision, mod_revision FROM kv WHERE key >= ?"
        params: tuple[str, ...] = (prefix,)
        if end is not None:
            query += " AND key < ?"
            params += (end,)
        # A deferred transaction is one read snapshot: the keys and the revision agree.
        with self._transaction("BEGIN") as conn:
            revision = conn.execute("SELECT revision FROM meta").fetchone()[0]
            rows = conn.execute(query + " ORDER BY key", params).fetchall()
        return [KeyValue(*row) for row in rows], revision

    def revision(self) -> int:
        with self._connection() as conn:
            return conn.execute("SELECT revision FROM meta").fetchone()[0]

    def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            # etcd refuses this too; accepting it here would let the backends disagree.
            raise ValueError("a transaction may name each key in at most one op")
        with self._transaction("BEGIN IMMEDIATE") as conn:
            for compare in compares:
                row = conn.execute(
                    "SELECT mod_revision FROM kv WHERE key = ?", (compare.key,)
                ).fetchone()
                actual = 0 if row is None else row[0]
                if actual != compare.mod_revision:
                    raise RevisionConflict(compare.key, compare.mod_revision, actual)
            current = conn.execute("SELECT revision FROM meta").fetchone()[0]
            revision = current + 1
            events: list[tuple[int, int, str, str, str]] = []
            for op in ops:
                if isinstance(op, Put):
                    conn.execute(
                        "INSERT INTO kv (key, value, create_revision, mod_revision)"
                        " VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE"
                        " SET value = excluded.value, mod_revision = excluded.mod_revision",
                        (op.key, op.value, revision, revision),
                    )
                    events.append((revision, len(events), op.key, EventType.PUT.value, op.value))
                elif isinstance(op, Delete):
                    row = conn.execute(
                        "DELETE FROM kv WHERE key = ? RETURNING value", (op.key,)
                    ).fetchone()
                    if row is not None:
                        events.append(
                            (revision, len(events), op.key, EventType.DELETE.value, row[0])
                        )
                else:
                    raise TypeError(f"not a transaction op: {op!r}")
            if not events:
                # Like etcd, a transaction that changed nothing does not consume a revision.
                return current
            conn.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?)", events)
            compacted = max(0, revision - self._history)
            conn.execute("DELETE FROM events WHERE revision <= ?", (compacted,))
            conn.execute(
                "UPDATE meta SET revision = ?, compacted = max(compacted, ?)",
                (revision, compacted),
            )
        self._announce()
        return revision

    def _announce(self) -> None:
        """Wake the watchers: the commit is published now."""
        try:
            # No symlink followed: the store's directory may be writable by others.
            fd = os.open(
                self.path + CHANGED_SUFFIX,
                os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                0o600,
            )
        except OSError:  # e.g. a read-only directory: watchers find the write on a recheck
            return
        try:
            os.pwrite(fd, b"\0", 0)
        finally:
            os.close(fd)

    def watch(self, prefix: str, after_revision: int) -> SqliteWatch:
        if after_revision < 0:
            raise ValueError("after_revision cannot be negative")
        with self._connection() as conn:
            compacted = conn.execute("SELECT compacted FROM meta").fetchone()[0]
            identity = self._identity
        assert identity is not None  # set by every successful open
        _check_retained(compacted, (after_revision, _WHOLE_REVISION))
        watch = SqliteWatch(self.path, identity, prefix, after_revision, self._poll_interval)
        self._watches.add(watch)
        return watch

    def close(self) -> None:
        for watch in list(self._watches):
            watch.close()
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._conn is None:
                return
            if self._pid == os.getpid() and _identity_at(self.path) == self._identity:
                self._conn.close()
            else:
                _parked_connections.append(self._conn)
            self._conn = None


class SqliteWatch(Watch):
    """Polls the events table; `close()` may be called from any thread."""

    def __init__(
        self,
        path: str,
        identity: _FileIdentity,
        prefix: str,
        after_revision: int,
        poll_interval: float,
    ) -> None:
        self._path = path
        self._identity = identity  # the backend's file: events are never read from another
        self._poll_interval = poll_interval
        end = _prefix_end(prefix)
        self._range: tuple[str, ...] = (prefix,) if end is None else (prefix, end)
        self._query = (
            "SELECT revision, seq, key, type, value FROM events"
            " WHERE (revision, seq) > (?, ?) AND key >= ?"
            + ("" if end is None else " AND key < ?")
            + f" ORDER BY revision, seq LIMIT {_WATCH_BATCH}"
        )
        # (revision, seq) of the last event delivered, or (revision, _WHOLE_REVISION) once
        # every event up to that revision has been seen.
        self._cursor = (after_revision, _WHOLE_REVISION)
        self._buffer: deque[Event] = deque()
        self._closed = threading.Event()
        self._woken = threading.Event()  # interrupt() or close()
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._changes = dir_changes.shared()
        self._wakes = None if self._changes is None else _watch_changed(self._changes, path)
        self._seen_changes = 0

    def next(self, timeout: float | None = None) -> Event | None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._closed.is_set():
            if not self._buffer:
                if self._changes is not None and self._wakes is not None:
                    # Noted before the look, so a write published after it wakes the sleep.
                    self._seen_changes = self._changes.count(self._wakes)
                self._poll()
            if self._buffer:
                return self._buffer.popleft()
            if self._woken.is_set() and not self._closed.is_set():
                self._woken.clear()
                return None
            wait = self._poll_interval if self._wakes is None else WOKEN_RECHECK_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                wait = min(wait, remaining)
            self._sleep(wait)
        return None

    def _sleep(self, seconds: float) -> None:
        """Until the database's directory changes, `seconds` pass, or the watch closes."""
        if self._changes is None or self._wakes is None:
            self._woken.wait(seconds)
        else:
            self._changes.wait(self._wakes, self._seen_changes, seconds, self._woken.is_set)

    def interrupt(self) -> None:
        self._woken.set()
        if self._changes is not None:
            self._changes.wake_all()

    def _poll(self) -> None:
        with self._lock:
            if self._closed.is_set():
                return
            try:
                if self._conn is None:
                    self._conn = _connect(self._path)
                self._conn.execute("BEGIN")
                try:
                    revision, compacted = self._conn.execute(
                        "SELECT revision, compacted FROM meta"
                    ).fetchone()
                    _check_retained(compacted, self._cursor)
                    rows = self._conn.execute(self._query, (*self._cursor, *self._range)).fetchall()
                finally:
                    self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise DatastoreUnavailable(f"datastore {self._path}: {_one_line(exc)}") from exc
            # Checked after the read, which needs the connection open: an unlinked file's
            # events would otherwise look like a quiet store to the watcher for ever.
            if _identity_at(self._path) != self._identity:
                _parked_connections.append(self._conn)
                self._conn = None
                raise DatastoreUnavailable(
                    f"datastore {self._path} was removed or replaced while watched"
                )
        self._buffer.extend(
            Event(EventType(kind), key, value, event_revision)
            for event_revision, _, key, kind, value in rows
        )
        if len(rows) < _WATCH_BATCH:
            self._cursor = (revision, _WHOLE_REVISION)
        else:
            self._cursor = (rows[-1][0], rows[-1][1])

    def close(self) -> None:
        self._closed.set()
        self._woken.set()
        with self._lock:
            if self._conn is not None:
                if _identity_at(self._path) == self._identity:
                    self._conn.close()
                else:
                    _parked_connections.append(self._conn)
                self._conn = None
        if self._changes is not None:
            self._changes.wake_all()


def _watch_changed(changes: dir_changes.DirectoryChanges, path: str) -> dir_changes.Handle | None:
    """Wake-ups on the store's `-changed` byte, written once a commit can be read."""
    try:
        return changes.watch(path + CHANGED_SUFFIX)
    except OSError:
        return None  # e.g. the per-user limit of inotify watches: poll
