#!/usr/bin/python3 -IS
"""pycalico CNI shim: hand this call to the node's CNI agent, or run the plugin in-process.

Installed into the CNI bin directory as `calico` and `calico-ipam` by pycalico.cni.install,
which fills in PLUGIN, PYTHON and SOCKET below (a relative SOCKET is taken from the shim's
own directory, as shim.c takes it). It is started with `-IS` and imports only
built-in modules (no json, no enum-laden socket module), so it costs little more than the
interpreter's own start-up. The wire format is in pycalico.cni.agent: the agent may run in
another mount namespace, so CNI_NETNS is opened here, where the runtime is, and its
descriptor passed along; a call the agent hands back is run here in-process.
"""

import _socket
import os
import sys

PLUGIN = "calico"
PYTHON = sys.executable
SOCKET = "/var/run/calico/cni-agent.sock"
TIMEOUT = 120.0  # longer than the plugin's own 90 s IPAM deadline
PROTOCOL = "pycalico-cni/2"  # the first word of a request: the wire format and its version


def _run_here(stdin: bytes) -> None:
    """No agent: run the full plugin in a fresh interpreter, with the same stdin."""
    import tempfile

    with tempfile.TemporaryFile() as spill:  # any size, no pipe that could fill up
        spill.write(stdin)
        spill.seek(0)
        os.dup2(spill.fileno(), 0)
    os.execv(PYTHON, [PYTHON, "-m", "pycalico.cni.main", PLUGIN, *sys.argv[1:]])


def _read_exactly(conn: "_socket.socket", size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = conn.recv(min(left, 1 << 16))
        if not chunk:
            raise OSError("short reply")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _agent_address() -> str:
    if SOCKET.startswith("/"):
        return SOCKET
    return os.path.realpath(os.path.join(os.path.dirname(os.path.realpath(__file__)), SOCKET))


def _open_netns() -> "tuple[str, int]":
    """CNI_NETNS opened as pycalico.netns.open_netns opens it (only a regular file, read-only
    and non-blocking): the request's <netns> word, and the descriptor (-1 for none). What
    failed is the agent's to report, as the plugin would: the word carries the errno."""
    path = os.environ.get("CNI_NETNS", "")
    if not path:
        return "-", -1
    try:
        if os.stat(path).st_mode & 0o170000 != 0o100000:  # not S_ISREG
            return "other", -1
        return "fd", os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as exc:
        return str(exc.errno or 5), -1


def main() -> int:
    if sys.argv[1:]:
        _run_here(b"")  # -v and friends: nothing to forward
    stdin = sys.stdin.buffer.read()
    env = b"\0".join(k + b"=" + v for k, v in os.environb.items())
    try:
        conn = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        conn.settimeout(TIMEOUT)
        conn.connect(_agent_address())
    except OSError:
        _run_here(stdin)
    word, netns = _open_netns()
    header = f"{PROTOCOL} {PLUGIN} {len(env)} {len(stdin)} {word}\n".encode()
    rights = []
    if netns >= 0:  # the descriptor travels with the header's bytes
        rights = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, netns.to_bytes(4, sys.byteorder))]
    try:
        try:
            sent = conn.sendmsg([header], rights)
            conn.sendall(header[sent:] + env + stdin)
        except OSError:
            pass  # an agent that refused early has answered, then stopped reading
        finally:
            if netns >= 0:
                os.close(netns)
        reply = b""
        while b"\n" not in reply:
            chunk = conn.recv(64)
            if not chunk:
                raise OSError("no reply")
            reply += chunk
        head, _, rest = reply.partition(b"\n")
        if head == b"in-process 0":
            out, code = b"", -1  # the agent's answer: the call is to run here
        else:
            code_text, size_text = head.split()
            size = int(size_text)
            out = rest + _read_exactly(conn, size - len(rest)) if size > len(rest) else rest[:size]
            code = int(code_text)
    except (OSError, ValueError):
        out = (
            b'{"cniVersion": "1.1.0", "code": 999, '
            b'"msg": "the CNI agent closed the connection without an answer"}'
        )
        code = 1
    finally:
        conn.close()
    if code == -1:
        _run_here(stdin)
    sys.stdout.buffer.write(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
