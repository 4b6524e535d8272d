r"""The node's CNI agent: answers CNI calls that the fast shim forwards over a unix socket.

A runtime starts a CNI plugin once per pod; in Python most of that time is interpreter
start-up and imports. The agent keeps the interpreter, pyroute2 and the datastore open, so
the shim (built-in modules only, started with `-IS`) just forwards bytes.

The agent runs where calico-node runs, which need not be where the runtime is: another mount
namespace (calico-node in a container, or under `ip netns exec`), where a path the runtime
names may be nothing or another file. So it never interprets a caller's path itself:

* CNI_NETNS is opened by the shim, where the runtime is, and its descriptor passed along
  (SCM_RIGHTS); the agent checks it (netns.check_netns) and never opens the path.
* A call the agent cannot serve without the caller's paths is the shim's to run itself, in
  the runtime's context (`python -m pycalico.cni.main`, same environment and stdin): one
  whose network delegates IPAM to a plugin in CNI_PATH (that plugin, its data directory
  and its view of CNI_NETNS are the runtime's), and one whose datastore settings (netconf
  keys over the caller's environment) are not exactly the agent's own.

Wire format, one exchange per connection, version 2 (PROTOCOL). Request: an ASCII line
`pycalico-cni/2 <plugin> <env bytes> <stdin bytes> <netns>\n`, then the environment as
NUL-separated `KEY=VALUE` pairs, then the plugin's stdin. `<netns>` says what came of
opening CNI_NETNS where the caller is (as open_netns does: stat, then, for a regular file
only, a non-blocking read-only open):
  `fd`     opened: the descriptor travels as SCM_RIGHTS with the request's first bytes;
  `-`      CNI_NETNS unset or empty;
  `other`  something that is not a regular file (not opened: so not a namespace);
  `<n>`    a positive errno of stat or open (2: nothing there).
Reply: `<exit code> <stdout bytes>\n`, then stdout; or `in-process 0\n`: run it yourself.
A version 1 request (`<plugin> <env bytes> <stdin bytes>\n`, from a shim installed before
the agent was upgraded) is answered with a CNI error that says to reinstall the shims.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, NoReturn

from pycalico.cni.main import PLUGINS, handle
from pycalico.cni.protocol import (
    GENERIC,
    LATEST,
    MAX_CONFIG,
    TRY_AGAIN_LATER,
    CniError,
    check_config_size,
    read_request,
)

if TYPE_CHECKING:
    from pycalico.datastore.config import DatastoreConfig

_log = logging.getLogger("pycalico.cni.agent")

DEFAULT_SOCKET = "/var/run/calico/cni-agent.sock"
PROTOCOL = "pycalico-cni/2"  # the first word of a request: this wire format and its version
IN_PROCESS = b"in-process 0\n"  # the reply that hands the call back to the shim
MAX_ENV = 16 << 20  # far above what the kernel lets an environment be
# Seconds from a connection to its answer: above the datastore's own timeouts (an etcd
# request gives up after 4 s, SQLite's busy wait sooner), below the shim's 120 s.
DEADLINE = 30.0
_NETNS_WORD = re.compile(r"fd|-|other|[1-9][0-9]{0,3}")
_SIZE = re.compile(r"[0-9]{1,12}")


def parse_env(blob: bytes) -> dict[str, str]:
    env = {}
    for pair in blob.split(b"\0"):
        key, eq, value = pair.partition(b"=")
        if eq:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


class CallerNetns:
    """CNI_NETNS as the shim found it where the caller is: the header's `<netns>` word and
    the descriptor that came with it. `open` is the call's Request.netns_opener."""

    def __init__(self, word: str, fd: int | None) -> None:
        self.word, self.fd = word, fd

    def open(self, path: str) -> int:
        """A descriptor of the pod's namespace (a copy: whoever asked closes it), or what
        open_netns would have raised for `path` where the caller is. `path` only names it."""
        from pycalico.netns import NotANetworkNamespace, check_netns

        if self.fd is None:
            if self.word == "other":
                raise NotANetworkNamespace(f"{path} is not a network namespace")
            code = int(self.word) if self.word.isdigit() else 2  # `-`: no path, nothing there
            raise OSError(code, os.strerror(code), path)  # ENOENT: FileNotFoundError
        check_netns(self.fd, path)
        return os.dup(self.fd)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Reader:
    """Reads one request from a connection, every read bounded by the call's deadline, and
    keeps what descriptors came with it (the caller's network namespace)."""

    def __init__(self, conn: socket.socket, deadline: float) -> None:
        self.conn, self.deadline, self.buf = conn, deadline, bytearray()
        self.fds: list[int] = []
        self.truncated = False  # more descriptors were sent than there was room for

    def _fill(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.conn.settimeout(left)
        # Room for one descriptor: the kernel closes any more than that (MSG_CTRUNC).
        chunk, ancillary, flags, _ = self.conn.recvmsg(
            1 << 16, socket.CMSG_SPACE(array.array("i").itemsize), socket.MSG_CMSG_CLOEXEC
        )
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds = array.array("i")
                fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                self.fds.extend(fds)
        self.truncated |= bool(flags & socket.MSG_CTRUNC)
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

    def netns(self, word: str) -> CallerNetns:
        """The caller's namespace as the header's `<netns>` word says, with the descriptor
        that came with the request; the reader keeps no descriptor after this."""
        fds, self.fds = self.fds, []
        if self.truncated or len(fds) != (word == "fd"):
            for fd in fds:
                os.close(fd)
            raise ValueError(f"<netns> is {word!r} but {len(fds)} descriptors came with it")
        return CallerNetns(word, fds[0] if fds else None)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []


def for_the_caller(
    plugin: str, env: Mapping[str, str], stdin: bytes, own: DatastoreConfig
) -> str | None:
    """Why the shim is to run this call itself, where the caller is, rather than an agent
    whose datastore is `own` (None: the agent serves it): the call's network delegates IPAM
    to a plugin in CNI_PATH, or its datastore settings are not exactly `own` (another store,
    a relative path, or none pycalico can open: the caller gets that error where it would
    without an agent). A request the plugin refuses is the agent's: it answers as the plugin
    would."""
    from pycalico.cni.datastore_access import call_settings
    from pycalico.cni.plugin import delegates_ipam
    from pycalico.datastore.config import ConfigError

    try:
        req = read_request(env, stdin)
    except CniError:
        return None
    if req.command == "VERSION":
        return None
    if plugin == "calico" and delegates_ipam(req.config):
        return "its IPAM is a plugin in CNI_PATH"
    try:
        settings = call_settings(req.config, req.env)
    except (CniError, ConfigError):
        return "its datastore settings are not ones the agent can open"
    # A relative path names a file relative to each one's working directory.
    paths = (
        settings.sqlite_path,
        settings.etcd_key_file,
        settings.etcd_cert_file,
        settings.etcd_ca_cert_file,
    )
    if not all(os.path.isabs(p) for p in paths if p):
        return "its datastore settings name a relative path"
    if settings != own:
        return "its datastore is not the agent's own"
    return None


class _Answered(Exception):
    """The request was answered (refused) while it was read."""


class _Handler(socketserver.BaseRequestHandler):
    server: Agent

    def handle(self) -> None:
        deadline = time.monotonic() + self.server.deadline
        reader = _Reader(self.request, deadline)
        netns = None
        try:
            plugin, env, stdin, netns = self._read(reader)
            why = for_the_caller(plugin, env, stdin, self.server.datastore)
            if why:
                # Said at INFO: each such call pays for a Python start-up in the shim.
                _log.info(
                    "%s %s for container %s runs in-process in the shim: %s",
                    plugin,
                    env.get("CNI_COMMAND", "?"),
                    env.get("CNI_CONTAINERID", "?"),
                    why,
                )
                self._send(IN_PROCESS)
                return
            call, netns = netns, None  # the call closes it once done with it
            self._reply(*self.server.call(plugin, env, stdin, deadline, call))
        except _Answered:
            return
        except (ValueError, UnicodeDecodeError) as exc:
            error = CniError(GENERIC, f"bad request to the CNI agent: {exc}")
            self._reply(error.to_json(LATEST), 1)
        except TimeoutError:
            error = CniError(
                TRY_AGAIN_LATER,
                f"the CNI agent got no complete request within {self.server.deadline:g}s",
            )
            self._reply(error.to_json(LATEST), 1)
        except (EOFError, OSError):
            return  # the caller went away: nobody to answer
        finally:
            reader.close()
            if netns is not None:
                netns.close()

    def _read(self, reader: _Reader) -> tuple[str, dict[str, str], bytes, CallerNetns]:
        words = reader.line(256).decode("ascii").split()
        if words[:1] != [PROTOCOL]:
            self._refuse_other_protocol(reader, words)
        if len(words) != 5 or not all(_SIZE.fullmatch(w) for w in words[2:4]):
            raise ValueError(f"bad request header {' '.join(words)[:80]!r}")
        _, plugin, env_size, stdin_size, netns_word = words
        sizes = int(env_size), int(stdin_size)
        if plugin not in PLUGINS or sizes[0] > MAX_ENV or not _NETNS_WORD.fullmatch(netns_word):
            raise ValueError(f"bad request header for plugin {plugin!r}")
        env = parse_env(reader.exactly(sizes[0]))
        try:
            check_config_size(sizes[1])
        except CniError as exc:
            self._refuse(reader, sizes[1], exc)
        stdin = reader.exactly(sizes[1])
        return plugin, env, stdin, reader.netns(netns_word)

    def _refuse_other_protocol(self, reader: _Reader, words: list[str]) -> NoReturn:
        """A shim of another version is told so, and to reinstall the shims. What a version 1
        shim (header `<plugin> <env bytes> <stdin bytes>`) sends is read and dropped."""
        if len(words) == 3 and words[0] in PLUGINS and all(_SIZE.fullmatch(w) for w in words[1:]):
            size = int(words[1]) + int(words[2])
            version = "an older wire format (version 1)"
        else:
            size = 0
            version = f"another wire format ({words[0][:40]!r})" if words else "no wire format"
        error = CniError(
            GENERIC,
            f"this CNI shim speaks {version}, the node's CNI agent {PROTOCOL}: reinstall "
            "the shims from the agent's pycalico (python -m pycalico.cni.install)",
        )
        self._refuse(reader, size if size <= MAX_ENV + MAX_CONFIG else 0, error)

    def _refuse(self, reader: _Reader, size: int, error: CniError) -> NoReturn:
        """The same refusal as the plugin's own. The shim sends all before it reads: what it
        sends is read and dropped, or it would find the connection closed, not the answer."""
        self._reply(error.to_json(LATEST), 1)
        with contextlib.suppress(TimeoutError, EOFError, OSError):
            reader.skip(size)
        raise _Answered

    def _reply(self, out: str, code: int) -> None:
        body = out.encode()
        self._send(f"{code} {len(body)}\n".encode() + body)

    def _send(self, data: bytes) -> None:
        try:
            self.request.settimeout(self.server.deadline)
            self.request.sendall(data)
        except OSError:
            pass  # the caller went away or stopped reading: nobody to answer


class Agent(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """Reads each connection on a thread of its own, runs the call on one of a few
    long-lived worker threads, and answers by the deadline whatever happens.

    A thread per connection, because reading is waiting on the caller: a caller that
    stalls must not hold a worker. Long-lived workers, because each keeps its own netlink
    handle (see dataplane.host_netlink); a few, because the work is CPU- and lock-bound,
    so more threads only add switching.

    `datastore` is the agent's own (default: from its environment, as calico-node reads
    it); it serves only the calls whose settings are exactly these (for_the_caller).
    """

    workers = 8
    daemon_threads = True

    def __init__(
        self, path: str, deadline: float = DEADLINE, datastore: DatastoreConfig | None = None
    ) -> None:
        from pycalico.datastore.config import config_from_env

        self.datastore = config_from_env(os.environ) if datastore is None else datastore
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        if os.path.exists(path):
            os.unlink(path)  # a socket left by an agent that died
        # Set before binding: a bind that fails (a path too long) calls server_close.
        self.path = path
        self.deadline = deadline
        self.pool = ThreadPoolExecutor(self.workers, thread_name_prefix="cni")
        super().__init__(path, _Handler)
        os.chmod(path, 0o600)
        _warm_up()

    def call(
        self, plugin: str, env: dict[str, str], stdin: bytes, deadline: float, netns: CallerNetns
    ) -> tuple[str, int]:
        """(stdout, exit code) of one call, or a "try again later" error at the deadline.
        Closes `netns` once the call, or the undoing of an ADD finished late, is done."""
        future = self.pool.submit(handle, plugin, env, stdin, netns.open)
        late = False
        try:
            return future.result(timeout=max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            if not future.cancel():
                # Running, and a thread cannot be interrupted: the caller is told the call
                # failed, so an ADD that succeeds after all is undone, leaving nothing.
                future.add_done_callback(lambda done: _finish_late(plugin, env, stdin, netns, done))
                late = True  # _finish_late closes the namespace
        finally:
            if not late:
                netns.close()
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


def _finish_late(
    plugin: str,
    env: dict[str, str],
    stdin: bytes,
    netns: CallerNetns,
    done: Future[tuple[str, int]],
) -> None:
    try:
        _undo_late_add(plugin, env, stdin, netns, done)
    finally:
        netns.close()


def _undo_late_add(
    plugin: str,
    env: dict[str, str],
    stdin: bytes,
    netns: CallerNetns,
    done: Future[tuple[str, int]],
) -> None:
    if env.get("CNI_COMMAND") != "ADD" or done.cancelled() or done.result()[1] != 0:
        return
    out, code = handle(plugin, {**env, "CNI_COMMAND": "DEL"}, stdin, netns.open)
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
    from pycalico.datastore.config import ConfigError

    try:
        agent = Agent(opts.socket, opts.deadline)
    except ConfigError as exc:
        sys.stderr.write(f"calico-cni-agent: {exc}\n")
        return 1
    except OSError as exc:
        why = exc.strerror or exc  # a path too long for AF_UNIX has no errno
        sys.stderr.write(f"calico-cni-agent: cannot listen on {opts.socket}: {why}\n")
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
