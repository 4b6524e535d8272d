"""The etcd v3 datastore: the Backend contract over etcd's JSON gateway (`/v3/...`).

etcd already is the store the contract describes (one revision per write, create and mod
revisions per key, multi-key compare-and-swap transactions, ordered watches), so each
method is one gateway call. The gateway is spoken with `http.client` (~15 ms to import):
a client library (etcd3gw pulls in requests, ~130 ms; aetcd pulls in grpcio and asyncio,
~80 ms) would cost calicoctl more start-up time than its whole run against SQLite, for
nothing beyond the three calls used here (range, txn, watch).

Revisions are etcd's own, unshifted, so a resourceVersion read here is the one real
Calico sees on the same etcd. A fresh etcd is at revision 1, not 0.

Endpoints are tried in order, starting with the last one that answered. A call moves on
to the next endpoint when it cannot connect, and a read also when its answer does not come
in its share of the time; a transaction that was sent but got no answer is reported
instead, because it may have been applied and repeating it elsewhere would then fail its
own compares.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import json
import os
import queue
import re
import select
import socket
import ssl
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreError,
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

DEFAULT_PORT = 2379

# How long one call waits, in all, for some member to answer. calicoctl must report a
# cluster that answers nothing within 5 s of being started, its own start-up included.
DEFAULT_TIMEOUT = 4.0

# The gRPC statuses the gateway passes on when a member cannot serve now: UNAVAILABLE (no
# leader, not started) and CANCELLED (shutting down, "the client connection is closing").
# Another member may serve.
_TRY_ANOTHER_MEMBER = frozenset({1, 14})

# How a watch stream notices a member that vanished without closing the connection
# (power loss, partition): TCP keepalive probes after 10 s idle, every 5 s, 3 tries.
_KEEPALIVE = ((socket.TCP_KEEPIDLE, 10), (socket.TCP_KEEPINTVL, 5), (socket.TCP_KEEPCNT, 3))

# OpenSSL's names for the alerts a server sends when it wanted a client certificate.
_NO_CLIENT_CERT_ALERTS = frozenset(
    {"SSLV3_ALERT_BAD_CERTIFICATE", "TLSV13_ALERT_CERTIFICATE_REQUIRED"}
)

# A watch stream that breaks sooner than this after being opened is re-opened this late.
_REOPEN_INTERVAL = 0.5

_T = TypeVar("_T")


class _Unreachable(Exception):
    """The request never reached etcd, so any other endpoint may serve it."""


class _Interrupted(Exception):
    """The request was sent but no answer came: it may or may not have been applied."""


@dataclass(frozen=True, slots=True)
class _Endpoint:
    url: str
    host: str
    port: int
    https: bool


def _parse_endpoint(url: str) -> _Endpoint:
    try:
        parts = urlsplit(url)
        port = parts.port or DEFAULT_PORT
    except ValueError as exc:
        raise DatastoreUnavailable(f"invalid etcd endpoint '{url}': {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DatastoreUnavailable(
            f"invalid etcd endpoint '{url}': expected http://host:port or https://host:port"
        )
    return _Endpoint(url.rstrip("/"), parts.hostname, port, parts.scheme == "https")


def _encode(text: str) -> str:
    return base64.b64encode(text.encode()).decode("ascii")


def _encode_bytes(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _decode_key(field: str) -> str:
    raw = base64.b64decode(field)
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise DatastoreUnavailable(f"etcd holds a key that is not UTF-8 text: {raw!r}") from None


def _decode_value(field: str | None, key: str) -> str:
    try:
        return base64.b64decode(field or "").decode()
    except UnicodeDecodeError:
        raise DatastoreUnavailable(f"etcd key {key} holds a value that is not UTF-8 text") from None


def _range(prefix: str) -> dict[str, str]:
    """The gateway's `key`/`range_end` for every key starting with `prefix`.

    etcd orders keys as bytes, and UTF-8 never contains 0xff, so the prefix with its last
    byte incremented is the exclusive end. An empty prefix becomes etcd's "every key"
    range ("\\0" to "\\0"): etcd has no empty key.
    """
    raw = prefix.encode()
    if not raw:
        return {"key": _encode_bytes(b"\0"), "range_end": _encode_bytes(b"\0")}
    return {"key": _encode_bytes(raw), "range_end": _encode_bytes(raw[:-1] + bytes([raw[-1] + 1]))}


def _key_value(kv: dict[str, Any]) -> KeyValue:
    key = _decode_key(kv["key"])
    return KeyValue(
        key,
        _decode_value(kv.get("value"), key),
        int(kv["create_revision"]),
        int(kv["mod_revision"]),
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _reason(exc: BaseException) -> str:
    """A short, one-line cause for a failed connection or request."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"certificate verification failed: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS error: {_ssl_text(exc)}"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, ConnectionResetError | BrokenPipeError):
        return "connection closed by the server"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[:1].lower() + exc.strerror[1:]
    return _one_line(str(exc)) or type(exc).__name__


def _ssl_text(exc: ssl.SSLError) -> str:
    """OpenSSL's words without the `[SSL]` tag and the `(_ssl.c:1234)` source location."""
    text = re.sub(r"\s*\(_ssl\.c:\d+\)$", "", str(exc))
    return re.sub(r"^\[[^\]]*\]\s*", "", text)


def _error_reason(status: int, body: bytes) -> tuple[str, int | None]:
    """The message and gRPC code of a failed gateway call; anything else by its HTTP status."""
    try:
        payload = json.loads(body)
        return _one_line(payload.get("message") or payload["error"]), payload.get("code")
    except (ValueError, KeyError, TypeError, AttributeError):
        first_line = body.decode("utf-8", "replace").strip().split("\n", 1)[0][:200]
        return _one_line(f"HTTP {status} {first_line}; is this an etcd v3 endpoint?"), None


def _dropped(conn: http.client.HTTPConnection) -> bool:
    """Whether an idle keep-alive connection was closed by the server (or is unusable).

    An idle HTTP connection has nothing to read, so readability means end-of-file or
    garbage; reusing it would send a request nobody reads.
    """
    if conn.sock is None:
        return True
    readable, _, _ = select.select([conn.sock], [], [], 0)
    return bool(readable)


class EtcdBackend(Backend):
    """The Backend contract on an etcd v3 cluster, through its JSON gateway.

    `endpoints` are `http://host:port` or `https://host:port` client URLs of the members.
    For https, `ca_file` is the CA to verify members against (default: the system's) and
    `cert_file`/`key_file` a client certificate. `timeout` bounds, in seconds, how long a
    call waits for some member to answer.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        if isinstance(endpoints, str):
            raise TypeError("endpoints is a list of URLs, not one string")
        if not endpoints:
            raise DatastoreUnavailable("no etcd endpoints given")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._endpoints = [_parse_endpoint(url) for url in endpoints]
        self._timeout = timeout
        self._client_cert = bool(cert_file)
        self._tls = (
            _tls_context(ca_file, cert_file, key_file)
            if any(endpoint.https for endpoint in self._endpoints)
            else None
        )
        self._current = 0
        self._lock = threading.Lock()
        self._connections: dict[int, http.client.HTTPConnection] = {}
        self._pid = os.getpid()
        self._closed = False
        self._watches: weakref.WeakSet[EtcdWatch] = weakref.WeakSet()

    @property
    def endpoints(self) -> list[str]:
        return [endpoint.url for endpoint in self._endpoints]

    # --- talking to members -------------------------------------------------------------

    def _connect(self, endpoint: _Endpoint, timeout: float) -> http.client.HTTPConnection:
        conn: http.client.HTTPConnection
        if endpoint.https:
            conn = http.client.HTTPSConnection(
                endpoint.host, endpoint.port, timeout=timeout, context=self._tls
            )
        else:
            conn = http.client.HTTPConnection(endpoint.host, endpoint.port, timeout=timeout)
        try:
            conn.connect()  # includes the TLS handshake, so certificate errors land here
        except OSError as exc:
            conn.close()
            raise _Unreachable(self._why(exc)) from None
        return conn

    def _why(self, exc: BaseException) -> str:
        reason = _reason(exc)
        # A member that wants a client certificate answers its absence with an alert or,
        # as TLS 1.3 lets it, by hanging up after the handshake; say what is likely missing.
        if not self._client_cert and (
            isinstance(exc, ssl.SSLEOFError)
            or (isinstance(exc, ssl.SSLError) and exc.reason in _NO_CLIENT_CERT_ALERTS)
        ):
            reason += "; etcd may require a client certificate (ETCD_CERT_FILE, ETCD_KEY_FILE)"
        return reason

    def _on_some_member(
        self, attempt: Callable[[int, _Endpoint, float, float], _T], *, idempotent: bool
    ) -> _T:
        """`attempt(index, endpoint, connect_timeout, answer_timeout)` on the first member
        that answers."""
        deadline = time.monotonic() + self._timeout
        count = len(self._endpoints)
        first = self._current
        failures: list[tuple[str, str]] = []
        for tried in range(count):
            index = (first + tried) % count
            endpoint = self._endpoints[index]
            remaining = max(deadline - time.monotonic(), 0.001)
            # Each member gets a share of what is left, so that one silent member cannot use
            # it all up; but a write, which cannot move on once sent, waits for its answer
            # as long as there is time (a busy leader is slow, not gone).
            share = remaining / (count - tried)
            try:
                result = attempt(index, endpoint, share, share if idempotent else remaining)
            except _Unreachable as exc:
                failures.append((endpoint.url, str(exc)))
                continue
            except _Interrupted as exc:
                if not idempotent:
                    self._current = (index + 1) % count
                    raise DatastoreUnavailable(
                        f"etcd at {endpoint.url} could not complete a write, which may or may "
                        f"not have been applied: {exc}"
                    ) from None
                failures.append((endpoint.url, str(exc)))
                continue
            self._current = index
            return result
        reasons = {reason for _, reason in failures}
        if len(reasons) == 1:
            detail = f"{','.join(self.endpoints)}: {reasons.pop()}"
        else:
            detail = "; ".join(f"{url}: {reason}" for url, reason in failures)
        raise DatastoreUnavailable(f"cannot reach etcd at {detail}")

    def _call(self, path: str, body: dict[str, Any], *, idempotent: bool = True) -> Any:
        def attempt(
            index: int, endpoint: _Endpoint, connect_timeout: float, answer_timeout: float
        ) -> Any:
            conn = self._connections.pop(index, None)
            if conn is not None and _dropped(conn):
                conn.close()
                conn = None
            if conn is None:
                conn = self._connect(endpoint, connect_timeout)
            conn.sock.settimeout(answer_timeout)
            try:
                conn.request(
                    "POST",
                    f"/v3/{path}",
                    body=json.dumps(body),
                    headers={"Content-Type": "application/json"},
                )
                response = conn.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise _Interrupted(self._why(exc)) from None
            self._connections[index] = conn
            if response.status == 200:
                try:
                    return json.loads(data)
                except ValueError:
                    raise _Interrupted(
                        "the answer is not JSON; is this an etcd v3 endpoint?"
                    ) from None
            message, code = _error_reason(response.status, data)
            if code in _TRY_ANOTHER_MEMBER:
                raise _Interrupted(message)
            raise DatastoreUnavailable(f"etcd at {endpoint.url} refused {path}: {message}")

        with self._lock:
            if self._closed:
                raise DatastoreUnavailable("the etcd client is closed")
            if self._pid != os.getpid():
                # Sockets inherited through fork() are the parent's conversations.
                self._connections = {}
                self._pid = os.getpid()
            return self._on_some_member(attempt, idempotent=idempotent)

    # --- the contract -------------------------------------------------------------------

    def get(self, key: str) -> KeyValue | None:
        kvs = self._call("kv/range", {"key": _encode(key)}).get("kvs")
        return _key_value(kvs[0]) if kvs else None

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        # One range call: the keys and the header revision come from the same snapshot.
        result = self._call("kv/range", _range(prefix))
        return [_key_value(kv) for kv in result.get("kvs", ())], int(result["header"]["revision"])

    def revision(self) -> int:
        result = self._call("kv/range", {"key": _encode_bytes(b"\0"), "count_only": True})
        return int(result["header"]["revision"])

    def txn(self, compares: Sequence[Compare], ops: Sequence[Op]) -> int:
        keys = [op.key for op in ops]
        if len(set(keys)) != len(keys):
            raise ValueError("a transaction may name each key in at most one op")
        success: list[dict[str, Any]] = []
        for op in ops:
            if isinstance(op, Put):
                success.append(
                    {"request_put": {"key": _encode(op.key), "value": _encode(op.value)}}
                )
            elif isinstance(op, Delete):
                success.append({"request_delete_range": {"key": _encode(op.key)}})
            else:
                raise TypeError(f"not a transaction op: {op!r}")
        result = self._call(
            "kv/txn",
            {
                "compare": [_compare(compare) for compare in compares],
                "success": success,
                # Read back every compared key in the same transaction, so that a conflict
                # names what the key held when the compare failed, not some later value.
                "failure": [{"request_range": {"key": _encode(c.key)}} for c in compares],
            },
            idempotent=False,
        )
        if result.get("succeeded"):
            return int(result["header"]["revision"])
        for compare, response in zip(compares, result.get("responses", ()), strict=True):
            kvs = response["response_range"].get("kvs")
            actual = int(kvs[0]["mod_revision"]) if kvs else 0
            if actual != compare.mod_revision:
                raise RevisionConflict(compare.key, compare.mod_revision, actual)
        raise DatastoreUnavailable("etcd failed a transaction whose compares all hold")

    def watch(self, prefix: str, after_revision: int) -> EtcdWatch:
        if after_revision < 0:
            raise ValueError("after_revision cannot be negative")
        with self._lock:
            if self._closed:
                raise DatastoreUnavailable("the etcd client is closed")
        watch = EtcdWatch(self, _range(prefix), after_revision)
        self._watches.add(watch)
        return watch

    def close(self) -> None:
        for watch in list(self._watches):
            watch.close()
        with self._lock:
            self._closed = True
            if self._pid == os.getpid():
                for conn in self._connections.values():
                    conn.close()
            self._connections = {}


def _compare(compare: Compare) -> dict[str, Any]:
    if compare.mod_revision == 0:
        # "Absent" as Calico's own create spells it; a missing key has version 0.
        return {"key": _encode(compare.key), "target": "VERSION", "result": "EQUAL", "version": 0}
    return {
        "key": _encode(compare.key),
        "target": "MOD",
        "result": "EQUAL",
        "mod_revision": compare.mod_revision,
    }


def _tls_context(
    ca_file: str | None, cert_file: str | None, key_file: str | None
) -> ssl.SSLContext:
    if key_file and not cert_file:
        raise DatastoreUnavailable("an etcd key file needs its certificate file too")
    try:
        context = ssl.create_default_context(cafile=ca_file or None)
    except OSError as exc:
        raise DatastoreUnavailable(
            f"cannot load etcd CA file {ca_file}: {_tls_file_reason(exc)}"
        ) from None
    if cert_file:
        try:
            context.load_cert_chain(cert_file, key_file or None)
        except OSError as exc:
            files = f"{cert_file} with key {key_file}" if key_file else cert_file
            raise DatastoreUnavailable(
                f"cannot load etcd client certificate {files}: {_tls_file_reason(exc)}"
            ) from None
    return context


def _tls_file_reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError):
        return _ssl_text(exc)
    return _reason(exc)


# Queued by interrupt(): next() returns None for it.
_INTERRUPT = object()


class EtcdWatch(Watch):
    """One etcd watch stream, read by a thread into a queue; `close()` works from any thread.

    If the member serving the stream goes away, the thread re-opens it on any member from
    the revision after the last one it received, so nothing is missed or repeated; if that
    history has been compacted meanwhile, the watch ends with WatchCompacted. Events are
    taken off the stream as they come, so a slow consumer costs memory, never history.
    """

    def __init__(
        self, backend: EtcdBackend, key_range: dict[str, str], after_revision: int
    ) -> None:
        self._backend = backend
        self._range = key_range
        # Every event up to this revision has been queued.
        self._cursor = after_revision
        # One item per stream message: a revision's events stay together, so an interrupt
        # never falls between two of them.
        self._queue: queue.SimpleQueue[list[Event] | DatastoreError | object | None] = (
            queue.SimpleQueue()
        )
        self._buffer: collections.deque[Event] = collections.deque()
        self._error: DatastoreError | None = None
        self._closed = threading.Event()
        self._lock = threading.Lock()
        # Opened here so that an unreachable store is reported by watch() itself.
        self._conn, self._response = self._open()
        self._opened_at = time.monotonic()
        threading.Thread(target=self._run, name="etcd-watch", daemon=True).start()

    def _open(self) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
        body = json.dumps(
            {
                "create_request": {
                    **self._range,
                    "start_revision": self._cursor + 1,
                    # DELETE events then carry the value the key held, as the contract wants.
                    "prev_kv": True,
                }
            }
        )

        def attempt(
            index: int, endpoint: _Endpoint, connect_timeout: float, answer_timeout: float
        ) -> tuple[http.client.HTTPConnection, http.client.HTTPResponse]:
            conn = self._backend._connect(endpoint, connect_timeout)
            conn.sock.settimeout(answer_timeout)
            try:
                conn.request(
                    "POST", "/v3/watch", body=body, headers={"Content-Type": "application/json"}
                )
                response = conn.getresponse()
                if response.status != 200:
                    message, _ = _error_reason(response.status, response.read())
                    raise _Interrupted(message)
                # etcd first confirms (or refuses) the watch; history problems come later.
                created = _message(response.readline())
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                raise _Interrupted(self._backend._why(exc)) from None
            except _Interrupted:
                conn.close()
                raise
            if created.get("canceled") or not created.get("created"):
                conn.close()
                reason = _one_line(created.get("cancel_reason") or "no reason given")
                raise DatastoreUnavailable(f"etcd at {endpoint.url} refused a watch: {reason}")
            return conn, response

        conn, response = self._backend._on_some_member(attempt, idempotent=True)
        assert conn.sock is not None
        # The stream is idle whenever nothing changes: no read timeout, keepalive instead.
        conn.sock.settimeout(None)
        conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for option, value in _KEEPALIVE:
            conn.sock.setsockopt(socket.IPPROTO_TCP, option, value)
        return conn, response

    def _read(self) -> DatastoreError | None:
        """Queue the events of the stream's next message; the error that ends it, if any.

        Raises _Interrupted (or the OSError/HTTPException behind it) if the stream broke.
        """
        result = _message(self._response.readline())
        events = result.get("events", ())
        decoded = []
        for event in events:
            kv = event["kv"]
            key = _decode_key(kv["key"])
            if event.get("type") == "DELETE":
                kind, value = EventType.DELETE, event.get("prev_kv", {}).get("value")
            else:
                kind, value = EventType.PUT, kv.get("value")
            decoded.append(Event(kind, key, _decode_value(value, key), int(kv["mod_revision"])))
        if decoded:
            self._queue.put(decoded)
        if events:
            # etcd never splits one revision's events across messages.
            self._cursor = int(events[-1]["kv"]["mod_revision"])
        if result.get("compact_revision"):
            # etcd keeps history from compact_revision on, so a watch can start right after
            # compact_revision - 1: that is the contract's `oldest`.
            return WatchCompacted(self._cursor, int(result["compact_revision"]) - 1)
        if result.get("canceled"):
            reason = _one_line(result.get("cancel_reason") or "no reason given")
            return DatastoreUnavailable(f"etcd cancelled a watch: {reason}")
        return None

    def _run(self) -> None:
        try:
            while not self._closed.is_set():
                try:
                    error = self._read()
                except (OSError, http.client.HTTPException, _Interrupted):
                    if self._closed.is_set():
                        return
                    self._reopen()
                    continue
                if error is not None:
                    self._queue.put(error)
                    return
        except DatastoreError as exc:
            self._queue.put(exc)
        except Exception as exc:
            # A message this code cannot follow; a thread that died quietly would leave the
            # consumer waiting forever instead.
            self._queue.put(
                DatastoreUnavailable(f"etcd watch stream failed: {_one_line(repr(exc))}")
            )
        finally:
            with self._lock:
                self._conn.close()

    def _reopen(self) -> None:
        """Continue the stream on some member from the first revision not yet received."""
        with self._lock:
            self._conn.close()
        # A member that keeps accepting watches and dropping them must not make this spin.
        if time.monotonic() - self._opened_at < _REOPEN_INTERVAL:
            self._closed.wait(_REOPEN_INTERVAL)
        if self._closed.is_set():
            return
        conn, response = self._open()
        self._opened_at = time.monotonic()
        with self._lock:
            self._conn, self._response = conn, response
            if self._closed.is_set():
                # close() ran while this stream was being opened, so nothing woke it.
                conn.close()

    def next(self, timeout: float | None = None) -> Event | None:
        if self._closed.is_set():
            return None
        if self._buffer:
            return self._buffer.popleft()
        if self._error is not None:
            raise self._error
        try:
            item = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        if item is _INTERRUPT:
            return None
        if item is None:
            self._queue.put(None)  # wake any other thread blocked in next() too
            return None
        if isinstance(item, DatastoreError):
            self._error = item
            raise item
        assert isinstance(item, list)
        self._buffer.extend(item)
        return self._buffer.popleft()

    def interrupt(self) -> None:
        self._queue.put(_INTERRUPT)

    def close(self) -> None:
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(None)
        with self._lock:
            if self._conn.sock is not None:
                # Wakes the reader thread out of its blocking read; that thread closes the
                # connection. The plain-socket shutdown leaves a TLS socket's state alone.
                with contextlib.suppress(OSError):
                    socket.socket.shutdown(self._conn.sock, socket.SHUT_RDWR)


def _message(line: bytes) -> dict[str, Any]:
    """The `result` of one line of a watch stream."""
    if not line:
        raise _Interrupted("the watch stream ended")
    try:
        message = json.loads(line)
    except ValueError:
        raise _Interrupted("the watch stream sent something that is not JSON") from None
    result = message.get("result") if isinstance(message, dict) else None
    if not isinstance(result, dict):
        error = message.get("error") if isinstance(message, dict) else None
        detail = error.get("message") if isinstance(error, dict) else None
        raise _Interrupted(_one_line(str(detail or f"unexpected watch message {line[:100]!r}")))
    return result
