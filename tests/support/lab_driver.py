"""Driving calico-lab from e2e tests: the command, pod addresses, pings, waiting, and a
packet counter for underlay captures."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycalico.lab import probe
from pycalico.lab.settle import settle
from pycalico.lab.state import ROOT, LabState
from pycalico.netns import in_netns

LAB = os.path.join(os.path.dirname(sys.executable), "calico-lab")


def lab(
    *args: str, stdin: str | None = None, check: bool = True, env: dict[str, str] | None = None
) -> str:
    out = lab_run(*args, stdin=stdin, env=env)
    if check and out.returncode != 0:
        raise AssertionError(f"calico-lab {' '.join(args)} failed: {out.stderr}")
    return out.stdout


def lab_run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """calico-lab as a user runs it; `env` replaces the environment (CALICO_LAB unset by
    default, so that a test never acts on a lab named in the caller's shell)."""
    if env is None:
        env = {k: v for k, v in os.environ.items() if k != "CALICO_LAB"}
    return subprocess.run(
        [LAB, *args], input=stdin, capture_output=True, text=True, check=False, env=env
    )


def down_leaving_nothing(name: str) -> None:
    """`calico-lab down`, then the check that it left none of the lab's namespaces or state."""
    lab("down", "--name", name, check=False)
    leftovers = [
        n
        for n in subprocess.run(
            ["ip", "netns", "list"], capture_output=True, text=True, check=True
        ).stdout.split()
        if n.startswith(f"{name}-")
    ]
    assert leftovers == [], f"down left namespaces behind: {leftovers}"
    assert not os.path.exists(os.path.join(ROOT, name))


@contextmanager
def console(name: str) -> Iterator[dict[str, str]]:
    """`calico-lab console --port 0` running; the URLs it printed, by their label
    (`Flow console`, `Lab page`). SIGTERM must end it cleanly."""
    env = {k: v for k, v in os.environ.items() if k != "CALICO_LAB"}
    proc = subprocess.Popen(
        [LAB, "console", "--name", name, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        urls = {}
        while (line := proc.stdout.readline()) and not line.startswith("Ctrl-C"):
            label, _, rest = line.partition(": ")
            if rest.startswith("http://"):
                urls[label] = rest.split()[0]
        assert {"Flow console", "Lab page"} <= set(urls), proc.stderr.read()
        yield urls
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def calicoctl(name: str, *args: str, stdin: str | None = None, node: str = "node1") -> str:
    """calicoctl on a lab node, as `calico-lab exec NODE -- calicoctl ...` runs it."""
    return lab("exec", node, "--name", name, "--", "calicoctl", *args, stdin=stdin)


def wait_for(what: str, check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.2)


def ping_stream(
    name: str, pod: str, address: str, count: int, interval: float
) -> subprocess.Popen[str]:
    """A ping running in the background from `pod`; `received()` reads its result."""
    state = LabState.load(name)
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            state.pods[f"default/{pod}"].netns,
            "ping",
            "-c",
            str(count),
            "-i",
            str(interval),
            "-W",
            "1",
            address,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def received(ping: subprocess.Popen[str]) -> tuple[int, str]:
    out, _ = ping.communicate(timeout=120)
    return int(out.split(" received")[0].rsplit(" ", 1)[1]), out


def pod_ip(name: str, pod: str) -> str:
    state = LabState.load(name)
    return state.pods[f"default/{pod}"].ip


def node_ip(name: str, node: str) -> str:
    """The node's underlay address."""
    return LabState.load(name).node_ips[node].split("/")[0]


def ping_three(name: str, pod: str, address: str) -> None:
    lab("exec", f"default/{pod}", "--name", name, "--", "ping", "-c3", "-i0.2", "-W2", address)


class Capture:
    """Counts packets on one interface of a namespace (AF_PACKET), by kind."""

    def __init__(self, netns: str, ifname: str) -> None:
        self.netns, self.ifname = netns, ifname
        self.vxlan = 0
        self.plain_icmp = 0
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Capture:
        self._thread.start()
        self._ready.wait(5)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        def listen() -> None:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
            sock.bind((self.ifname, 0))
            sock.settimeout(0.1)
            self._ready.set()
            with sock:
                while not self._stop.is_set():
                    try:
                        frame = sock.recv(65535)
                    except TimeoutError:
                        continue
                    if frame[12:14] != b"\x08\x00":
                        continue  # not IPv4 (ARP and the like)
                    ip = frame[14:]
                    proto = ip[9]
                    header = (ip[0] & 0x0F) * 4
                    if proto == 17 and struct.unpack("!H", ip[header + 2 : header + 4])[0] == 4789:
                        self.vxlan += 1
                    elif proto == 1:
                        self.plain_icmp += 1

        in_netns(f"/run/netns/{self.netns}", listen)


def explained(name: str, src: str, dst: str, port: int, proto: str = "tcp") -> bool:
    where = ["--port", str(port)] if proto != "icmp" else []
    out = calicoctl(name, "policy", "explain", "--from", src, "--to", dst, "--proto", proto, *where)
    return out.strip().splitlines()[-1] == "verdict: ALLOW"


def check_explain_agrees_with_packets(
    name: str, port: int, proto: str = "tcp"
) -> dict[str, dict[str, str]]:
    state = LabState.load(name)
    settle(state)  # every change so far is in every node's kernel
    results = probe.matrix(state, proto, port)
    for src, row in results.items():
        for dst, seen in row.items():
            if dst == "external" and port != 80 and proto != "icmp":
                continue  # the external host serves only 80: refused is not blocked
            target = probe.EXTERNAL_IP if dst == "external" else dst
            agrees = explained(name, src, target, port, proto) == bool(seen)
            assert agrees, (src, dst, port, proto, seen)
    return results
