"""Real etcd servers for tests: started on free loopback ports, always stopped and removed.

`etcd_server()` runs one member, `etcd_cluster()` three, and `tls_files()` makes a CA with
server and client certificates for 127.0.0.1 (and a second, unrelated CA to trust by
mistake). Every process is stopped by its PID (SIGTERM, then SIGKILL) and its data
directory removed on exit, whether the test passed or not; each is also started with a
parent-death signal (`setpriv --pdeathsig`), so even a killed pytest leaves no etcd behind.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ETCD = "/usr/bin/etcd"
# Execs etcd under the same PID with SIGKILL as its parent-death signal.
_DIE_WITH_PARENT = ("/usr/bin/setpriv", "--pdeathsig", "KILL", "--")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 5.0
# Fast heartbeats and elections: a cluster test that kills the leader waits for a new one.
_TIMING = ("--heartbeat-interval", "20", "--election-timeout", "200")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    # A CA that signed nothing here: trusting it instead of `ca` must fail verification.
    wrong_ca: Path


@dataclass
class EtcdMember:
    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    log: Path
    process: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = field(default=None, repr=False)

    def command(self, initial_cluster: str) -> list[str]:
        command = [
            *_DIE_WITH_PARENT,
            ETCD,
            "--name",
            self.name,
            "--data-dir",
            str(self.data_dir),
            "--listen-client-urls",
            self.client_url,
            "--advertise-client-urls",
            self.client_url,
            "--listen-peer-urls",
            self.peer_url,
            "--initial-advertise-peer-urls",
            self.peer_url,
            "--initial-cluster",
            initial_cluster,
            "--initial-cluster-token",
            os.path.basename(self.data_dir.parent),
            "--logger",
            "zap",
            "--log-level",
            "warn",
            *_TIMING,
        ]
        if self.tls is not None:
            command += [
                "--cert-file",
                str(self.tls.server_cert),
                "--key-file",
                str(self.tls.server_key),
                "--trusted-ca-file",
                str(self.tls.ca),
                "--client-cert-auth",
            ]
        return command

    def start(self, initial_cluster: str) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(initial_cluster),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def kill(self) -> None:
        """SIGKILL: the member vanishes the way a crashed machine does."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: connections stay open but nothing answers, like a partitioned member."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGSTOP)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.kill(self.process.pid, signal.SIGCONT)  # a paused member cannot act on SIGTERM
        os.kill(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


def _free_ports(count: int) -> list[int]:
    """Ports the kernel just handed out; etcd binds them a moment later (retried if lost)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def client_context(tls: TlsFiles | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    context = ssl.create_default_context(cafile=str(tls.ca))
    context.load_cert_chain(str(tls.client_cert), str(tls.client_key))
    return context


def gateway(url: str, path: str, body: object, tls: TlsFiles | None = None) -> dict[str, Any]:
    """One call to etcd's JSON gateway, independent of the backend under test."""
    request = urllib.request.Request(
        f"{url}/v3/{path}", data=json.dumps(body).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5, context=client_context(tls)) as response:
        result: dict[str, Any] = json.load(response)
    return result


def put(url: str, key: str, value: bytes | str, tls: TlsFiles | None = None) -> int:
    """Write a key behind the backend's back (e.g. a value no pycalico would write)."""
    raw = value.encode() if isinstance(value, str) else value
    body = {"key": base64.b64encode(key.encode()).decode(), "value": base64.b64encode(raw).decode()}
    return int(gateway(url, "kv/put", body, tls)["header"]["revision"])


def compact(url: str, revision: int, tls: TlsFiles | None = None) -> None:
    """Discard the history before `revision`: watches can then start at `revision` at most."""
    gateway(url, "kv/compaction", {"revision": str(revision), "physical": True}, tls)


def _healthy(member: EtcdMember) -> bool:
    try:
        gateway(member.client_url, "kv/range", {"key": "AA=="}, member.tls)
    except (OSError, urllib.error.URLError, ValueError):
        return False
    return True


def _wait_healthy(members: Sequence[EtcdMember]) -> bool:
    """True once every member serves a linearizable read; False if one of them exited."""
    deadline = time.monotonic() + START_TIMEOUT
    pending = list(members)
    while pending:
        for member in list(pending):
            assert member.process is not None
            if member.process.poll() is not None:
                return False
            if _healthy(member):
                pending.remove(member)
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"etcd did not become healthy in {START_TIMEOUT}s:\n{pending[0].log_tail()}"
            )
        if pending:
            time.sleep(0.02)
    return True


@contextlib.contextmanager
def _members(size: int, base: Path | None, tls: TlsFiles | None) -> Iterator[list[EtcdMember]]:
    root = Path(tempfile.mkdtemp(prefix="pycalico-etcd-", dir=base))
    members: list[EtcdMember] = []
    try:
        # Ports can be taken between choosing and binding them; a fresh choice then works.
        for attempt in range(3):
            ports = _free_ports(2 * size)
            scheme = "https" if tls is not None else "http"
            members = [
                EtcdMember(
                    name=f"m{i}",
                    client_url=f"{scheme}://127.0.0.1:{ports[2 * i]}",
                    peer_url=f"http://127.0.0.1:{ports[2 * i + 1]}",
                    data_dir=root / f"m{i}-{attempt}",
                    log=root / f"m{i}.log",
                    tls=tls,
                )
                for i in range(size)
            ]
            initial_cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
            for member in members:
                member.start(initial_cluster)
            if _wait_healthy(members):
                break
            for member in members:
                member.stop()
        else:
            raise RuntimeError(f"etcd did not start:\n{members[0].log_tail()}")
        yield members
    finally:
        for member in members:
            member.stop()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def etcd_server(base: Path | None = None, tls: TlsFiles | None = None) -> Iterator[EtcdMember]:
    """One etcd member with a fresh store, its data under `base` (default: the temp dir)."""
    with _members(1, base, tls) as [member]:
        yield member


@contextlib.contextmanager
def etcd_cluster(base: Path | None = None, size: int = 3) -> Iterator[list[EtcdMember]]:
    with _members(size, base, None) as members:
        yield members


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _ca(directory: Path, name: str) -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
        "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2",
        "-subj", f"/CN={name}",
    )  # fmt: skip
    return cert, key


def _signed(directory: Path, name: str, ca: tuple[Path, Path], usage: str) -> tuple[Path, Path]:
    cert, key, request = (directory / f"{name}.{ext}" for ext in ("crt", "key", "csr"))
    extensions = directory / f"{name}.ext"
    extensions.write_text(
        "subjectAltName = IP:127.0.0.1\n"
        f"extendedKeyUsage = {usage}\n"
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid, issuer\n"
    )
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[0]), "-CAkey", str(ca[1]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(extensions),
    )  # fmt: skip
    return cert, key


def tls_files(directory: Path) -> TlsFiles:
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(directory, "ca")
    # etcd's gateway dials its own gRPC port with the server certificate as a client one.
    server = _signed(directory, "server", ca, "serverAuth, clientAuth")
    client = _signed(directory, "client", ca, "clientAuth")
    wrong_ca, _ = _ca(directory, "wrong-ca")
    return TlsFiles(ca[0], server[0], server[1], client[0], client[1], wrong_ca)
