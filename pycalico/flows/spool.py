"""A sender's records on disk, so that a Felix that restarts still resends what the
aggregator may not have, under the same identity and numbers.

A directory (0700) holds `sender`, the identity, and `records`, a journal of lines:
`<time> <record line>` for each record as it is queued and `A <seq>` for each
acknowledgement. Every line is written straight to the file (one write, no fsync): a
killed process loses nothing the kernel accepted; a machine that loses power may lose the
tail, and a torn last line is skipped. The journal is rewritten (write a new file, rename
it in) when it has grown to several times what is still kept.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import socket
from dataclasses import dataclass

log = logging.getLogger("pycalico.flows")

_MIN_COMPACT_LINES = 1000


@dataclass(frozen=True)
class Entry:
    seq: int
    time: float
    line: bytes  # the wire line, newline included


def new_sender_id(prefix: str = "") -> str:
    """An identity nobody else has: the given prefix (Felix: its node name), or this
    host's name, and random digits."""
    return f"{prefix or socket.gethostname()}-{secrets.token_hex(6)}"


class Spool:
    def __init__(self, directory: str, prefix: str = "") -> None:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self._dir = directory
        self._path = os.path.join(directory, "records")
        id_path = os.path.join(directory, "sender")
        try:
            with open(id_path, encoding="utf-8") as f:
                self.sender = f.read().strip()
        except FileNotFoundError:
            self.sender = ""
        if not self.sender:
            self.sender = new_sender_id(prefix)
            _replace(id_path, (self.sender + "\n").encode())
        self._id_path = id_path
        self.entries, self.acked = self._load()
        self._lines = len(self.entries)
        self._file = open(self._path, "ab", buffering=0)  # noqa: SIM115 (kept open)

    def _load(self) -> tuple[list[Entry], int]:
        entries: list[Entry] = []
        acked = 0
        try:
            with open(self._path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return entries, acked
        for line in raw.split(b"\n"):
            if not line:
                continue
            try:
                if line.startswith(b"A "):
                    acked = max(acked, int(line[2:]))
                    continue
                stamp, _, body = line.partition(b" ")
                seq = json.loads(body)["seq"]
                entries.append(Entry(int(seq), float(stamp), body + b"\n"))
            except (ValueError, KeyError, TypeError):
                log.warning("skipping a damaged line of %s", self._path)
        entries.sort(key=lambda e: e.seq)
        return entries, acked

    def append(self, entry: Entry) -> None:
        self._file.write(f"{entry.time:.3f} ".encode() + entry.line)
        self._lines += 1

    def ack(self, seq: int) -> None:
        self._file.write(f"A {seq}\n".encode())
        self._lines += 1

    def compact_if_grown(self, kept: list[Entry], acked: int) -> None:
        """Rewrite the journal as `kept` and `acked` when it is much longer than that."""
        if self._lines >= max(_MIN_COMPACT_LINES, 4 * len(kept)):
            self._rewrite(kept, acked)

    def restart_as(self, sender: str, kept: list[Entry]) -> None:
        """Take a new identity: `kept` is all this sender still has, none acknowledged."""
        _replace(self._id_path, (sender + "\n").encode())
        self.sender = sender
        self._rewrite(kept, 0)

    def _rewrite(self, kept: list[Entry], acked: int) -> None:
        body = b"".join(f"{e.time:.3f} ".encode() + e.line for e in kept)
        _replace(self._path, body + (f"A {acked}\n".encode() if acked else b""))
        self._file.close()
        self._file = open(self._path, "ab", buffering=0)  # noqa: SIM115
        self._lines = len(kept) + 1

    def close(self) -> None:
        self._file.close()


def _replace(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
