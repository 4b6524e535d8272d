r"""The node's CNI agent: answers CNI calls that the fast shim forwards over a unix socket.

A runtime starts a CNI plugin once per pod; in Python most of that time is interpreter
start-up and imports. The agent keeps the interpreter, pyroute2 and the datastore open, so
the shim (built-in modules only, started with `-IS`) just forwards bytes.

Wire format, one exchange per connection. Request: an ASCII line
`<plugin> <env bytes> <stdin bytes>\n`, then the environment as NUL-separated `KEY=VALUE`
pairs, then the plugin's stdin. Reply: `<exit code> <stdout bytes>\n`, then stdout.
"""

from __future__ import annotations

import os
import signal
import socketserver
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pycalico.cni.main import PLUGINS, handle
from pycalico.cni.protocol import GENERIC, CniError

DEFAULT_SOCKET = "/var/run/calico/cni-agent.sock"
MAX_REQUEST = 16 << 20


def parse_env(blob: bytes) -> dict[str, str]:
    env = {}
    for pair in blob.split(b"\0"):
        key, eq, value = pair.partition(b"=")
        if eq:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        try:
            plugin, env_size, stdin_size = self.rfile.readline(256).decode("ascii").split()
            sizes = int(env_size), int(stdin_size)
            if plugin not in PLUGINS or not all(0 <= n <= MAX_REQUEST for n in sizes):
                raise ValueError(f"bad request header for plugin {plugin!r}")
            env_blob, stdin = self.rfile.read(sizes[0]), self.rfile.read(sizes[1])
            if (len(env_blob), len(stdin)) != sizes:
                raise ValueError("the request ended early")
            env = parse_env(env_blob)
        except (ValueError, UnicodeDecodeError) as exc:
            out, code = (
                CniError(GENERIC, f"bad request to the CNI agent: {exc}").to_json("1.1.0"),
                1,
            )
        else:
            out, code = handle(plugin, env, stdin)
        body = out.encode()
        self.wfile.write(f"{code} {len(body)}\n".encode() + body)


class Agent(socketserver.UnixStreamServer):
    """Serves each connection on one of a few long-lived worker threads.

    Long-lived because each worker keeps its own netlink handle (see dataplane.host_netlink);
    a few because the work is CPU- and lock-bound, so more threads only add switching.
    """

    workers = 8

    def __init__(self, path: str) -> None:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by an agent that died
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)
        self.path = path
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cni")
        _warm_up()

    def process_request(self, request: Any, client_address: Any) -> None:
        self.pool.submit(self._serve_one, request, client_address)

    def _serve_one(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def server_close(self) -> None:
        super().server_close()
        self.pool.shutdown(wait=True)
        if os.path.exists(self.path):
            os.unlink(self.path)


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
    opts = parser.parse_args(argv)
    try:
        agent = Agent(opts.socket)
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
