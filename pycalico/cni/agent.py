r"""The node's CNI agent: answers CNI calls that the fast shim forwards over a unix socket.

A runtime starts a CNI plugin once per pod; in Python most of that time is interpreter
start-up and imports. The agent keeps the interpreter, pyroute2 and the datastore open, so
the shim (built-in modules only, started with `-IS`) just forwards bytes.

Wire format, one exchange per connection. Request: an ASCII line
`<plugin> <env bytes> <stdin bytes>\n`, then the environment as NUL-separated `KEY=VALUE`
pairs, then the plugin's stdin. Reply: `<exit code> <stdout bytes>\n`, then stdout.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import socketserver
import sys
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from pycalico.cni.main import PLUGINS, handle
from pycalico.cni.protocol import (
    GENERIC,
    LATEST,
    TRY_AGAIN_LATER,
    CniError,
    check_config_size,
)

DEFAULT_SOCKET = "/var/run/calico/cni-agent.sock"
MAX_ENV = 16 << 20  # far above what the kernel lets an environment be
# Seconds from a connection to its answer: above the datastore's own timeouts (an etcd
# request gives up after 4 s, SQLite's busy wait sooner), below the shim's 120 s.
DEADLINE = 30.0


def parse_env(blob: bytes) -> dict[str, str]:
    env = {}
    for pair in blob.split(b"\0"):
        key, eq, value = pair.partition(b"=")
        if eq:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


class _Reader:
    """Reads one request from a connection, every read bounded by the call's deadline."""

    def __init__(self, conn: socket.socket, deadline: float) -> None:
        self.conn, self.deadline, self.buf = conn, deadline, bytearray()

    def _fill(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.conn.settimeout(left)
        chunk = self.conn.recv(1 << 16)
        if not chunk:
            raise EOFError
        self.buf += chunk

    def line(self, limit: int) -> bytes:
        while b"\n" not in self.buf:
            if len(self.buf) >= limit:
                raise ValueError("the request header is too long")
            self._fill()
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return line

    def exactly(self, size: int) -> bytes:
        while len(self.buf) < size:
            self._fill()
        out = bytes(self.buf[:size])
        del self.buf[:size]
        return out

    def skip(self, size: int) -> None:
        while len(self.buf) < size:
            size -= len(self.buf)
            self.buf.clear()
            self._fill()
        del self.buf[:size]


class _Handler(socketserver.BaseRequestHandler):
    server: Agent

    def handle(self) -> None:
        deadline = time.monotonic() + self.server.deadline
        reader = _Reader(self.request, deadline)
        try:
            plugin, env_size, stdin_size = reader.line(256).decode("ascii").split()
            sizes = int(env_size), int(stdin_size)
            if plugin not in PLUGINS or not 0 <= sizes[0] <= MAX_ENV or sizes[1] < 0:
                raise ValueError(f"bad request header for plugin {plugin!r}")
            env = parse_env(reader.exactly(sizes[0]))
            try:
                check_config_size(sizes[1])
            except CniError as exc:
                self._refuse_oversized(reader, sizes[1], exc)
                return
            stdin = reader.exactly(sizes[1])
        except (ValueError, UnicodeDecodeError) as exc:
            error = CniError(GENERIC, f"bad request to the CNI agent: {exc}")
            self._reply(error.to_json(LATEST), 1)
            return
        except TimeoutError:
            error = CniError(
                TRY_AGAIN_LATER,
                f"the CNI agent got no complete request within {self.server.deadline:g}s",
            )
            self._reply(error.to_json(LATEST), 1)
            return
        except (EOFError, OSError):
            return  # the caller went away: nobody to answer
        self._reply(*self.server.call(plugin, env, stdin, deadline))

    def _refuse_oversized(self, reader: _Reader, size: int, error: CniError) -> None:
        """The same refusal as the plugin's own. The shim sends all before it reads: what it
        sends is read and dropped, or it would find the connection closed, not the answer."""
        self._reply(error.to_json(LATEST), 1)
        with contextlib.suppress(TimeoutError, EOFError, OSError):
            reader.skip(size)

    def _reply(self, out: str, code: int) -> None:
        body = out.encode()
        try:
            self.request.settimeout(self.server.deadline)
            self.request.sendall(f"{code} {len(body)}\n".encode() + body)
        except OSError:
            pass  # the caller went away or stopped reading: nobody to answer


class Agent(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Reads each connection on a thread of its own, runs the call on one of a few
    long-lived worker threads, and answers by the deadline whatever happens.

    A thread per connection, because reading is waiting on the caller: a caller that
    stalls must not hold a worker. Long-lived workers, because each keeps its own netlink
    handle (see dataplane.host_netlink); a few, because the work is CPU- and lock-bound,
    so more threads only add switching.
    """

    workers = 8
    daemon_threads = True

    def __init__(self, path: str, deadline: float = DEADLINE) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by an agent that died
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)
        self.path = path
        self.deadline = deadline
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cni")
        _warm_up()

    def call(
        self, plugin: str, env: dict[str, str], stdin: bytes, deadline: float
    ) -> tuple[str, int]:
        """(stdout, exit code) of one call, or a "try again later" error at the deadline."""
        future = self.pool.submit(handle, plugin, env, stdin)
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if not future.cancel():
                # Running, and a thread cannot be interrupted: the caller is told the call
                # failed, so an ADD that succeeds after all is undone, leaving nothing.
                future.add_done_callback(lambda done: _undo_late_add(plugin, env, stdin, done))
        command = env.get("CNI_COMMAND", "")
        error = CniError(
            TRY_AGAIN_LATER, f"the CNI agent did not finish {command} within {self.deadline:g}s"
        )
        return error.to_json(LATEST), 1

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=True)
        if os.path.exists(self.path):
            os.unlink(self.path)


def _undo_late_add(
    plugin: str, env: dict[str, str], stdin: bytes, done: Future[tuple[str, int]]
) -> None:
    if env.get("CNI_COMMAND") != "ADD" or done.cancelled() or done.result()[1] != 0:
        return
    out, code = handle(plugin, {**env, "CNI_COMMAND": "DEL"}, stdin)
    container = env.get("CNI_CONTAINERID", "")
    outcome = "undone" if code == 0 else f"and undoing it failed: {out}"
    sys.stderr.write(
        f"calico-cni-agent: ADD of {container} finished after its deadline, {outcome}\n"
    )


def _warm_up() -> None:
    """Import now what every call needs, so no call pays for it."""
    import pyroute2  # noqa: F401

    import pycalico.cni.dataplane
    import pycalico.cni.ipam_plugin
    import pycalico.cni.plugin
    import pycalico.datastore.sqlite
    import pycalico.ipam.allocator  # noqa: F401


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="calico-cni-agent", description="Serve CNI calls forwarded by the shim."
    )
    parser.add_argument("--socket", default=DEFAULT_SOCKET)
    parser.add_argument(
        "--deadline", type=float, default=DEADLINE, help="seconds to answer each call in"
    )
    opts = parser.parse_args(argv)
    try:
        agent = Agent(opts.socket, opts.deadline)
    except OSError as exc:
        sys.stderr.write(f"calico-cni-agent: cannot listen on {opts.socket}: {exc.strerror}\n")
        return 1

    def stop(*_: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)  # leave no socket behind when stopped
    try:
        agent.serve_forever()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        agent.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
