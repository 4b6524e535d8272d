"""Wake-ups when a file is written, for every SQLite watch of a process.

One inotify instance serves the whole process: the kernel allows only a few per user (128
by default, shared by every process of that user), and a lab runs many watching processes.
It watches the file's directory (the file need not exist yet); a reader thread counts the
writes of each watched file and wakes the waiters only for those, not for the directory's
other files (SQLite's WAL and database pages, written before a commit is readable). A
waiter notes the count before it looks at the database, so a write in between is never
missed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

from inotify_simple import INotify, flags

log = logging.getLogger("pycalico.datastore")

Handle = tuple[int, str]  # (inotify watch of the directory, the file's name in it)


class DirectoryChanges:
    def __init__(self) -> None:
        self._inotify = INotify()
        self._changed = threading.Condition()
        self._counts: dict[Handle, int] = {}
        threading.Thread(target=self._read, name="dir-changes", daemon=True).start()

    def watch(self, path: str) -> Handle:
        """A handle for the file at `path` (the same one for the same file)."""
        directory, name = os.path.split(os.path.abspath(path))
        handle = (int(self._inotify.add_watch(directory, flags.MODIFY)), name)
        with self._changed:
            self._counts.setdefault(handle, 0)
        return handle

    def count(self, handle: Handle) -> int:
        with self._changed:
            return self._counts.get(handle, 0)

    def wait(self, handle: Handle, seen: int, seconds: float, woken: Callable[[], bool]) -> None:
        """Until `handle`'s count moves past `seen`, `seconds` pass, or `wake_all`. `woken()`
        is asked under the lock that `wake_all` takes, so a wake-up given just before the
        wait starts is not missed."""
        with self._changed:
            if self._counts.get(handle, 0) == seen and not woken():
                self._changed.wait(seconds)

    def wake_all(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _read(self) -> None:
        while True:
            events = self._inotify.read()
            with self._changed:
                counted = False
                for event in events:
                    if event.mask & flags.Q_OVERFLOW:  # events were lost: any file may have
                        for handle in self._counts:
                            self._counts[handle] += 1
                        counted = True
                        continue
                    handle = (event.wd, event.name)
                    if handle in self._counts:
                        self._counts[handle] += 1
                        counted = True
                if counted:
                    self._changed.notify_all()


_shared: tuple[int, DirectoryChanges | None] | None = None
_shared_lock = threading.Lock()


def shared() -> DirectoryChanges | None:
    """This process's instance; None where inotify cannot be had (watches then just poll)."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared[0] != os.getpid():  # a forked child needs its own thread
            try:
                _shared = (os.getpid(), DirectoryChanges())
            except OSError as exc:
                log.info("no inotify (%s): datastore watches poll", exc)
                _shared = (os.getpid(), None)
        return _shared[1]
