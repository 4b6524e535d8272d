"""The sending side of the flow stream, for Felix: a queue, acknowledgements, resends.

`send()` numbers a record and queues it (it never blocks on the network); one thread keeps
a connection to the aggregator, sends what is queued, and reads acknowledgements. On every
(re)connection the aggregator says the highest number it holds from this sender, and the
sender sends again everything it still has above that: a connection that dropped loses
nothing, and an aggregator that restarted with an empty window gets back every record of
the last `cache_seconds` (Goldmane's client keeps 5 minutes for the same reason), without
duplicates either way (dedup.py).

Like Felix's Goldmane client: at most `max_pending` records wait unacknowledged (5000);
past that a record is dropped and counted, with a warning; reconnecting backs off from
1 s to 10 s. With a spool directory the identity, the numbers and the records outlive the
process (spool.py).

Connected, the thread sleeps until something happens: a record queued or close() (a wake
pipe), an acknowledgement, or the time the oldest acknowledged record leaves the cache
(`expiry_wait`). With nothing cached, or nothing acknowledged yet, there is no timer: an
idle sender does not wake up.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from pycalico.flows import wire
from pycalico.flows.record import Flow
from pycalico.flows.spool import Entry, Spool, new_sender_id

log = logging.getLogger("pycalico.flows")

MAX_PENDING = 5000
CACHE_SECONDS = 300.0  # Goldmane's FlowCacheExpiry
RETRY_FIRST = 1.0
RETRY_MAX = 10.0
CONNECT_TIMEOUT = 5.0
# An aggregator that takes nothing for this long is treated as gone: reconnect.
SEND_TIMEOUT = 30.0
_RECV = 1 << 16


def expiry_wait(cache: Sequence[Entry], acked: int, keep: float, now: float) -> float | None:
    """Seconds until the oldest cached record can be dropped (acknowledged and `keep`
    seconds old), or None when it waits for an acknowledgement first (or nothing is
    cached): the acknowledgement wakes the sender anyway."""
    if not cache or cache[0].seq > acked:
        return None
    return max(cache[0].time + keep - now, 0.0)


@dataclass
class SenderStats:
    queued: int = 0
    acknowledged: int = 0
    dropped: int = 0
    rejected: int = 0
    connected: bool = False


class FlowSender:
    def __init__(
        self,
        server: str,
        *,
        sender_id: str = "",
        spool_dir: str | None = None,
        max_pending: int = MAX_PENDING,
        cache_seconds: float = CACHE_SECONDS,
        retry_first: float = RETRY_FIRST,
        retry_max: float = RETRY_MAX,
        clock: Callable[[], float] = time.time,
    ) -> None:
        host, _, port = server.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"'{server}' is not HOST:PORT")
        self._address = (host.strip("[]"), int(port))
        self._max_pending = max_pending
        self._cache_seconds = cache_seconds
        self._retry = (retry_first, retry_max)
        self._clock = clock
        self._lock = threading.Lock()
        self._acked_changed = threading.Condition(self._lock)
        self._spool = Spool(spool_dir, sender_id) if spool_dir else None
        self.sender = self._spool.sender if self._spool else new_sender_id(sender_id)
        # Every record not yet expired, acknowledged or not, in number order; and those
        # the current connection has yet to send.
        self._cache: collections.deque[Entry] = collections.deque()
        self._outbox: collections.deque[Entry] = collections.deque()
        self._acked = 0
        self._next = 1
        self.stats = SenderStats()
        if self._spool is not None:
            self._cache.extend(self._spool.entries)
            self._acked = self._spool.acked
            self._next = max([self._acked, *(e.seq for e in self._cache)]) + 1
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="flow-sender", daemon=True)
        self._warned_full = False
        self.turns = 0  # of the connected loop, each a wake-up of the thread

    def start(self) -> FlowSender:
        self._thread.start()
        return self

    def send(self, flow: Flow) -> bool:
        """Queue a record; False (and counted) when too many wait unacknowledged."""
        with self._lock:
            if self._next - 1 - self._acked >= self._max_pending:
                self.stats.dropped += 1
                if not self._warned_full:
                    self._warned_full = True
                    log.warning(
                        "dropping flow records: %d wait for the aggregator at %s:%d already",
                        self._max_pending, *self._address,
                    )  # fmt: skip
                return False
            entry = Entry(self._next, self._clock(), wire.record(self._next, flow))
            self._next += 1
            self._cache.append(entry)
            self._outbox.append(entry)
            if self._spool is not None:
                self._spool.append(entry)
            self.stats.queued += 1
        self._wake()
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every record queued so far is acknowledged; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._next - 1
            while self._acked < target:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._acked_changed.wait(left)
        return True

    def close(self) -> None:
        self._stop.set()
        self._wake()
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):  # a send blocked on a stalled peer returns
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread.is_alive():
            self._thread.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        if self._spool is not None:
            self._spool.close()

    def _wake(self) -> None:
        with contextlib.suppress(BlockingIOError):  # full: a wake-up is pending anyway
            os.write(self._wake_w, b"x")

    # --- the connection thread ---

    def _run(self) -> None:
        delay = self._retry[0]
        failure = ""
        while not self._stop.is_set():
            try:
                with socket.create_connection(self._address, timeout=CONNECT_TIMEOUT) as sock:
                    self._sock = sock
                    self._handshake(sock)
                    if failure:
                        log.info("reconnected to the aggregator at %s:%d", *self._address)
                        failure = ""
                    delay = self._retry[0]
                    self._stream(sock)
            except (OSError, wire.WireError) as exc:
                reason = str(exc) or type(exc).__name__
                if reason != failure and not self._stop.is_set():
                    log.warning("flow aggregator at %s:%d: %s", *self._address, reason)
                    failure = reason
            self._sock = None
            with self._lock:
                self.stats.connected = False
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self._retry[1])

    def _handshake(self, sock: socket.socket) -> None:
        sock.sendall(wire.hello(self.sender))
        lines = wire.LineBuffer()
        got: list[bytes] = []
        while not got:
            data = sock.recv(_RECV)
            if not data:
                raise wire.WireError("the aggregator closed the connection")
            got = lines.feed(data)
        welcome = wire.decode(got[0])
        if not isinstance(welcome, wire.Welcome):
            raise wire.WireError("the aggregator did not welcome this sender")
        with self._lock:
            if welcome.highest >= self._next:
                # It holds numbers this sender never gave: the identity was used before
                # and this sender's records were lost. Continuing would have new records
                # taken for old ones; under a new identity everything kept is sent again.
                old = self.sender
                self.sender = new_sender_id(old.rsplit("-", 1)[0])
                self._acked = 0
                if self._spool is not None:
                    self._spool.restart_as(self.sender, list(self._cache))
                raise wire.WireError(
                    f"the aggregator holds record {welcome.highest} of {old}, which this "
                    f"sender never numbered; continuing as {self.sender}"
                )
            self._advance(welcome.highest)
            self._outbox = collections.deque(e for e in self._cache if e.seq > welcome.highest)
            self.stats.connected = True
        sock.settimeout(SEND_TIMEOUT)

    def _stream(self, sock: socket.socket) -> None:
        lines = wire.LineBuffer()
        with selectors.DefaultSelector() as selector:
            selector.register(sock, selectors.EVENT_READ, "ack")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._stop.is_set():
                self.turns += 1
                with self._lock:
                    batch = [e.line for e in self._outbox]
                    self._outbox.clear()
                if batch:
                    sock.sendall(b"".join(batch))
                with self._lock:
                    wait = expiry_wait(self._cache, self._acked, self._cache_seconds, self._clock())
                for key, _ in selector.select(timeout=wait):
                    if key.data == "wake":
                        with contextlib.suppress(BlockingIOError):
                            os.read(self._wake_r, 4096)
                        continue
                    data = sock.recv(_RECV)
                    if not data:
                        raise wire.WireError("the aggregator closed the connection")
                    for line in lines.feed(data):
                        self._acknowledged(wire.decode(line))
                self._expire()

    def _acknowledged(self, message: wire.Message) -> None:
        if not isinstance(message, wire.Ack):
            raise wire.WireError(f"expected an ack, got {type(message).__name__}")
        with self._lock:
            for seq in message.rejected:
                self.stats.rejected += 1
                log.warning("the aggregator refused flow record %d (see its log)", seq)
            self._advance(message.seq)

    def _advance(self, seq: int) -> None:
        if seq <= self._acked:
            return
        self.stats.acknowledged += seq - self._acked
        self._acked = seq
        self._warned_full = False
        if self._spool is not None:
            self._spool.ack(seq)
        self._acked_changed.notify_all()

    def _expire(self) -> None:
        horizon = self._clock() - self._cache_seconds
        with self._lock:
            cache = self._cache
            while cache and cache[0].seq <= self._acked and cache[0].time <= horizon:
                cache.popleft()
            if self._spool is not None:
                self._spool.compact_if_grown(list(self._cache), self._acked)
