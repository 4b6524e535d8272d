"""BGP speed with real BIRD 2: pod route propagation, mesh establishment, the timers in effect.

One run:
  * propagation: a 2-node lab with --encap none (BGP mesh). Each of SAMPLES pods goes into
    its own IPPool (a /26, made beforehand; `cni.projectcalico.org/ipv4pools` annotation),
    so every pod is the first of a fresh block, as a node's first pod or the pod that
    overflows a block is: node1 claims the block, confd renders it (blackhole + export) and
    reloads BIRD, BIRD sends the UPDATE, node2's BIRD programs its kernel. node2's routing
    table is watched with netlink events in its namespace; a sample is the time from
    `calico-lab pod add` returning on node1 until node2's kernel has the pod's /26. The
    datastore writes and node1's BIRD log split that time into IPAM, confd and BGP.
  * mesh: `calico-lab up --nodes 10 --encap none`, every node's BIRD asked over its control
    socket (what `birdc show protocols` reads) until all show 9 Established mesh peers.
  * the BIRD timers, read from the rendered bird.cfg and from BIRD itself.
Needs root. Run: make bench-bgp
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import inspect
import ipaddress
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from lab_runs import LAB, down
from pyroute2.netlink.rtnl import rt_proto

from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from pycalico.lab.state import ROOT
from pycalico.netns import in_netns

SAMPLES = int(os.environ.get("BENCH_BGP_SAMPLES", "20"))
MESH_NODES = int(os.environ.get("BENCH_BGP_NODES", "10"))
ROUTE_TIMEOUT = 30.0
MESH_TIMEOUT = 120.0
ANNOTATION = "cni.projectcalico.org/ipv4pools"
# What calico-node's confd watch uses: SqliteBackend's default poll interval.
SQLITE_POLL = inspect.signature(SqliteBackend).parameters["poll_interval"].default


def sh(*cmd: str, stdin: str | None = None) -> str:
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    return out.stdout


def lab_name() -> str:
    return f"bgpb{uuid.uuid4().hex[:3]}"


@contextlib.contextmanager
def lab_up(name: str, nodes: int) -> Iterator[subprocess.Popen[str]]:
    """`calico-lab up` running; interrupted (or failing) here, it is stopped the way Ctrl-C
    stops it (it removes what it built) before the caller's `down`."""
    proc = subprocess.Popen(
        [LAB, "up", "--name", name, "--nodes", str(nodes), "--encap", "none"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()


def up_failed(proc: subprocess.Popen[str]) -> RuntimeError:
    err = proc.stderr.read() if proc.stderr else ""
    return RuntimeError(f"calico-lab up failed ({proc.returncode}): {err.strip()}")


def node_dir(name: str, node: str, *parts: str) -> str:
    return os.path.join(ROOT, name, "nodes", node, *parts)


def birdc(ctl: str, command: str) -> list[str]:
    """One command on BIRD's control socket (birdc's protocol); the reply's text lines."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(2)
        sock.connect(ctl)
        with sock.makefile("rb") as reader:
            reader.readline()  # 0001 BIRD x.y.z ready.
            sock.sendall(command.encode() + b"\n")
            lines = []
            while True:
                raw = reader.readline()
                if not raw:
                    return lines
                line = raw.decode(errors="replace").rstrip("\n")
                if line[:4].isdigit() and line[4:5] == " ":
                    return lines  # the last line: code and a space
                lines.append(line[5:] if line[:4].isdigit() else line[1:])


def mesh_established(name: str, node: str) -> int:
    try:
        rows = birdc(node_dir(name, node, "run", "bird.ctl"), "show protocols")
    except OSError:
        return 0  # BIRD not started yet
    return sum(
        1 for row in rows if row.startswith("Mesh_") and row.rstrip().endswith("Established")
    )


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q=0.5 is the median of an odd count, the lower of an even)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


class RouteWatch:
    """Every route the kernel adds in a namespace, with the monotonic time it was seen."""

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self.added: list[tuple[float, ipaddress.IPv4Network, int]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> RouteWatch:
        self._thread.start()
        self._ready.wait(10)
        if self._error or not self._ready.is_set():
            raise RuntimeError(f"cannot watch routes in {self.netns}: {self._error}")
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(2)

    def _run(self) -> None:
        try:
            # The whole watch runs on this thread inside the namespace: the netlink socket
            # is opened there (pyroute2 opens it lazily, in its event loop).
            in_netns(f"/run/netns/{self.netns}", lambda: asyncio.run(self._watch()))
        except BaseException as exc:  # reported by __enter__ if it is still waiting
            self._error = exc
            self._ready.set()

    async def _watch(self) -> None:
        from pyroute2 import AsyncIPRoute

        async def batch(ipr: Any) -> list[Any]:
            return [msg async for msg in ipr.get()]

        async with AsyncIPRoute() as ipr:
            await ipr.bind()
            self._ready.set()
            while not self._stop.is_set():
                try:
                    # pyroute2 queues what the socket delivers: wait on its queue, not the fd.
                    messages = await asyncio.wait_for(batch(ipr), 0.1)
                except TimeoutError:
                    continue
                now = time.monotonic()
                for msg in messages:
                    dst = msg.get("dst") if msg.get("event") == "RTM_NEWROUTE" else None
                    if dst:
                        net = ipaddress.IPv4Network(f"{dst}/{msg['dst_len']}")
                        with self._lock:
                            self.added.append((now, net, msg["proto"]))

    def first(
        self, since: float, match: Any, timeout: float | None = None
    ) -> tuple[float, ipaddress.IPv4Network]:
        """The first route added at or after `since` for which match(network) holds."""
        timeout = ROUTE_TIMEOUT if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                for at, net, proto in self.added:
                    if at >= since and proto == rt_proto["bird"] and match(net):
                        return at, net
            if time.monotonic() > deadline:
                raise RuntimeError(f"no matching route in {self.netns} after {timeout:.0f}s")
            time.sleep(0.001)


class DatastoreWatch:
    """Every datastore write (key, monotonic time seen), polled every 5 ms (WAL: readers
    never hold up writers)."""

    def __init__(self, path: str) -> None:
        self.backend = SqliteBackend(path, create=True, poll_interval=0.005)
        self.writes: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._watch = self.backend.watch("/calico/", self.backend.revision())
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DatastoreWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._watch.close()
        self._thread.join(2)
        self.backend.close()

    def _run(self) -> None:
        with contextlib.suppress(Exception):  # closed under it at the end
            while not self._stop.is_set():
                event = self._watch.next(timeout=0.5)
                if event is not None:
                    with self._lock:
                        self.writes.append((time.monotonic(), event.key))

    def first(self, since: float, key: str) -> float | None:
        with self._lock:
            return next((at for at, k in self.writes if at >= since and k == key), None)

    def last_before(self, since: float, until: float) -> float | None:
        with self._lock:
            seen = [at for at, _ in self.writes if since <= at <= until]
        return seen[-1] if seen else None


def bird_reconfigures(name: str, node: str) -> list[float]:
    """Wall-clock times of BIRD's `Reconfiguring` (confd's birdc configure) on `node`."""
    stamp = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) <INFO> Reconfiguring$")
    times = []
    with open(node_dir(name, node, "calico-node.log"), encoding="utf-8", errors="replace") as f:
        for line in f:
            found = stamp.match(line.rstrip("\n"))
            if found:
                when = datetime.datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S.%f")
                times.append(when.timestamp())  # BIRD logs local time, as time.time() reads
    return times


def pools_yaml(count: int) -> str:
    return "".join(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        f"metadata:\n  name: bgpbench{i}\n"
        f"spec:\n  cidr: 10.250.{i}.0/26\n  blockSize: 26\n"
        "  ipipMode: Never\n  vxlanMode: Never\n---\n"
        for i in range(count)
    )


def wait_for(what: str, check: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


def propagation(name: str) -> dict[str, Any]:
    with lab_up(name, 2) as proc:
        if proc.wait() != 0:
            raise up_failed(proc)
    wait_for("node1's mesh session", lambda: mesh_established(name, "node1") == 1)
    sh(
        LAB,
        "exec",
        "--name",
        name,
        "node1",
        "--",
        "calicoctl",
        "apply",
        "-f",
        "-",
        stdin=pools_yaml(SAMPLES),
    )
    last = f"10.250.{SAMPLES - 1}.0/26"

    def rendered(node: str) -> bool:
        with open(node_dir(name, node, "confd", "bird.cfg"), encoding="utf-8") as f:
            return last in f.read()

    wait_for("the pools in both nodes' bird.cfg", lambda: rendered("node1") and rendered("node2"))
    time.sleep(1.0)  # let both BIRDs finish reloading before the first sample
    clock = time.time() - time.monotonic()
    samples = []
    datastore = DatastoreWatch(os.path.join(ROOT, name, "datastore.db"))
    with RouteWatch(f"{name}-node2") as watch, datastore:
        for i in range(SAMPLES):
            block = ipaddress.IPv4Network(f"10.250.{i}.0/26")
            start = time.monotonic()
            out = sh(
                LAB,
                "pod",
                "add",
                f"p{i}",
                "--node",
                "node1",
                "--name",
                name,
                "--annotation",
                f'{ANNOTATION}=["bgpbench{i}"]',
            )
            returned = time.monotonic()
            ip = ipaddress.IPv4Address(out.split()[-1])
            if ip not in block:
                raise RuntimeError(f"pod p{i} got {ip}, outside its pool {block}")
            covered, first_net = watch.first(start, lambda net, ip=ip: ip in net and net.prefixlen)
            block_at, _ = watch.first(start, lambda net, block=block: net == block)
            samples.append(
                {
                    "start": start,
                    "returned": returned,
                    "covered": covered,
                    "first": first_net,
                    "block": block_at,
                    "ip": ip,
                    "affinity": datastore.first(start, keys.affinity_key("node1", block)),
                }
            )
            time.sleep(0.3)  # independent samples: nothing of this one still in flight
        # Sanity: node2 really forwards to the last pod over the learned route (lab-only ping).
        sh("ip", "netns", "exec", f"{name}-node2", "ping", "-c1", "-W2", str(samples[-1]["ip"]))
    reconfigures = [t - clock for t in bird_reconfigures(name, "node1")]
    for s in samples:
        after = [t for t in reconfigures if t >= s["start"] - 0.001]
        s["reconfigured"] = after[0] if after and after[0] <= s["block"] + 0.001 else None
        s["last_write"] = (
            datastore.last_before(s["start"], s["reconfigured"]) if s["reconfigured"] else None
        )
    timers = bird_timers(name)
    return {"samples": samples, "timers": timers}


def bird_timers(name: str) -> dict[str, str]:
    with open(node_dir(name, "node1", "confd", "bird.cfg"), encoding="utf-8") as f:
        cfg = f.read()

    def block(header: str) -> str:
        found = re.search(rf"^{header}[^\n]*\{{\n(.*?)^\}}", cfg, re.M | re.S)
        return found.group(1) if found else ""

    def setting(text: str, key: str, default: str = "BIRD default") -> str:
        found = re.search(rf"^\s*{key} ([^;]+);", text, re.M)
        return found.group(1) if found else default

    kernel, device = block("protocol kernel kernel4"), block("protocol device")
    template = block("template bgp bgp_template ")
    mesh = re.search(r"^protocol bgp (Mesh_\S+)", cfg, re.M)
    if not mesh:
        raise RuntimeError("no mesh protocol in node1's bird.cfg")
    shown = "\n".join(
        birdc(node_dir(name, "node1", "run", "bird.ctl"), f"show protocols all {mesh.group(1)}")
    )

    def from_bird(pattern: str) -> str:
        found = re.search(pattern, shown)
        return found.group(1) if found else "?"

    version = birdc(node_dir(name, "node1", "run", "bird.ctl"), "show status")
    restart = setting(block(f"protocol bgp {mesh.group(1)}"), "graceful restart time", "")
    return {
        "version": next((v for v in version if v.startswith("BIRD ")), "BIRD ?"),
        "kernel scan": setting(kernel, "scan time"),
        "device scan": setting(device, "scan time"),
        "connect delay": setting(template, "connect delay time"),
        "connect retry": setting(template, "connect retry time"),
        "error wait": setting(template, "error wait time"),
        "graceful restart": "on" if re.search(r"^\s*graceful restart;", template, re.M) else "off",
        "restart time": restart or from_bird(r"(?s)Local capabilities.*?Restart time:\s+(\d+)"),
        "restart time source": "bird.cfg" if restart else "BIRD default",
        "hold": from_bird(r"Hold timer:\s+\S+/(\d+)"),
        "keepalive": from_bird(r"Keepalive timer:\s+\S+/(\d+)"),
        "hold in cfg": "yes" if "hold time" in cfg else "no",
    }


def mesh(name: str) -> dict[str, float]:
    nodes = [f"node{i + 1}" for i in range(MESH_NODES)]
    want = MESH_NODES - 1
    started = time.monotonic()
    up_done: float | None = None
    first_session: float | None = None
    reached: dict[str, float] = {}  # when each node first showed all its mesh peers
    with lab_up(name, MESH_NODES) as proc:
        while len(reached) < len(nodes) or up_done is None:
            if up_done is None and proc.poll() is not None:
                up_done = time.monotonic()
                if proc.returncode != 0:
                    raise up_failed(proc)
            for node in nodes:
                if node not in reached:
                    count = mesh_established(name, node)
                    now = time.monotonic()
                    if count and first_session is None:
                        first_session = now
                    if count == want:
                        reached[node] = now
            if time.monotonic() - started > MESH_TIMEOUT:
                raise RuntimeError(f"mesh incomplete after {MESH_TIMEOUT:.0f}s: {sorted(reached)}")
            time.sleep(0.01)
    settled = [node for node in nodes if mesh_established(name, node) != want]
    if settled:
        raise RuntimeError(f"sessions dropped again on {', '.join(settled)}")
    # Cross-check one node the way an operator would.
    status = sh(LAB, "exec", "--name", name, "node1", "--", "calicoctl", "node", "status")
    if status.count("node-to-node mesh") != want or status.count("Established") != want:
        raise RuntimeError(f"calicoctl node status on node1 disagrees:\n{status}")
    all_at = max(reached.values())
    assert first_session is not None
    return {
        "up": up_done - started,
        "first": first_session - started,
        "all": all_at - started,
        "after_up": all_at - up_done,
    }


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-bgp needs root (it builds labs of network namespaces)\n")
        return 1
    if not 1 <= SAMPLES <= 250 or not 2 <= MESH_NODES <= 20:
        sys.stderr.write("BENCH_BGP_SAMPLES must be 1-250 and BENCH_BGP_NODES 2-20\n")
        return 1
    first = lab_name()
    try:
        prop = propagation(first)
    finally:
        down(first)
    second = lab_name()
    try:
        mesh_times = mesh(second)
    finally:
        down(second)

    samples, t = prop["samples"], prop["timers"]
    n = len(samples)
    timed = [s for s in samples if s["reconfigured"] and s["affinity"] and s["last_write"]]
    series = {
        "add": [s["returned"] - s["start"] for s in samples],
        "block": [s["block"] - s["returned"] for s in samples],
        "covered": [s["covered"] - s["start"] for s in samples],
        "ipam": [s["affinity"] - s["start"] for s in timed],
        "confd": [s["reconfigured"] - s["affinity"] for s in timed],
        "quiet": [s["reconfigured"] - s["last_write"] for s in timed],
        "bgp": [s["block"] - s["reconfigured"] for s in timed],
    }
    host32 = [s for s in samples if s["first"].prefixlen == 32]
    print(f"BGP speed ({t['version']}, {os.cpu_count()} CPUs)")
    print(
        f"pod route propagation, 2-node lab --encap none: {n} pods on node1, each the first of "
        "a fresh /26 block\n(its own IPPool, ipv4pools annotation); node2's kernel routes "
        "watched by netlink events"
    )
    rows = [
        ("calico-lab pod add on node1 (wall time)", series["add"]),
        ("pod add return -> the /26 in node2's kernel (target p50 <= 1000)", series["block"]),
        ("pod add start -> first route to the pod in node2's kernel", series["covered"]),
        ("where it goes: pod add start -> block affinity written (IPAM)", series["ipam"]),
        ("  block affinity written -> node1's BIRD reconfigured (confd)", series["confd"]),
        ("  pod's last datastore write -> BIRD reconfigured (confd)", series["quiet"]),
        ("  node1's BIRD reconfigured -> the /26 in node2's kernel", series["bgp"]),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'milliseconds'.ljust(width)}  {'p50':>5} {'p90':>5} {'max':>5}")
    for label, values in rows:
        if values:
            cells = " ".join(f"{ms(pct(values, q)):>5}" for q in (0.5, 0.9, 1.0))
            print(f"{label.ljust(width)}  {cells}")
    if host32:
        lead = [s["block"] - s["covered"] for s in host32]
        early = sum(1 for s in host32 if s["covered"] <= s["returned"])
        print(
            f"{len(host32)}/{n}: node2 first got the pod's /32 ({early} of them before pod add "
            "returned): node1's BIRD learns the CNI's\nroute from its kernel and exports it "
            "while the new block is not yet in its filter; the /26 replaced it "
            f"{ms(statistics.median(lead))} ms later (median)"
        )
    print()
    print(f"mesh establishment: calico-lab up --nodes {MESH_NODES} --encap none (seconds)")
    mesh_rows = [
        ("calico-lab up (wall time)", mesh_times["up"]),
        ("up start -> first mesh session Established", mesh_times["first"]),
        (
            f"up start -> all {MESH_NODES} nodes show {MESH_NODES - 1} Established mesh peers",
            mesh_times["all"],
        ),
        ("up return -> all Established", mesh_times["after_up"]),
    ]
    width = max(len(r[0]) for r in mesh_rows)
    for label, value in mesh_rows:
        print(f"{label.ljust(width)}  {value:5.2f}")
    print()
    hold = "BIRD's defaults" if t["hold in cfg"] == "no" else "bird.cfg"
    timers = (
        f"BIRD timers: kernel scan {t['kernel scan']} s, device scan {t['device scan']} s, "
        f"connect delay {t['connect delay']} s, connect retry {t['connect retry']} s, "
        f"error wait {t['error wait']} s, graceful restart {t['graceful restart']} "
        f"(restart time {t['restart time']} s), hold/keepalive {t['hold']}/{t['keepalive']} s"
    )
    print(
        f"{timers}\n  (from node1's bird.cfg; restart time: {t['restart time source']}; "
        f"hold/keepalive: {hold}, from birdc show protocols all)"
    )
    print(
        f"confd: datastore watch woken by inotify (sqlite; polled at most every "
        f"{SQLITE_POLL * 1000:.0f} ms), render from the mirror, bird -p -c, birdc configure"
    )
    block = series["block"]
    print()
    print("README rows:")
    print(
        f"pod add returns -> its new /26 routed on the other node (BGP mesh), p50/p90/max of "
        f"{n}: {ms(pct(block, 0.5))}/{ms(pct(block, 0.9))}/{ms(max(block))} ms "
        "(target p50 <= 1 s)"
    )
    print(
        f"calico-lab up --nodes {MESH_NODES} --encap none -> every node {MESH_NODES - 1} "
        f"Established mesh peers: {mesh_times['all']:.1f} s from the start, "
        f"{mesh_times['after_up']:.1f} s after up returned ({mesh_times['up']:.1f} s)"
    )
    print(timers)
    print(f"bgp route propagation p50: {ms(pct(block, 0.5))} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
