"""Scale, measured as curves (issue 23): labs of N nodes, and one node with 5000 endpoints.

For each N (--nodes, default 10,25,50,100) one lab, `--encap none`, the BGP mesh below
--reflectors-from nodes (25) and from there on two route reflectors for all the others
(`calico-lab up --route-reflectors 2`, the seeds' recipe), one pod per node without a
server. Measured in the same run, for each N:

- up: `calico-lab up` wall time; converged: from the start of `up` until every node has a
  route to every other node's pod block, via that node (the pods are added right after
  `up`, started at once as `calico-lab apply` starts a DaemonSet's: pods.start_all), with the
  time the pods took and the time from the last pod to convergence beside it, and the CPU
  each calico-node spent (mean over the nodes) during `up` and from then to convergence;
- RSS (VmRSS) of every calico-node and every BIRD once converged: median and max;
- idle: CPU of all nodes together over --idle seconds (default two routeRefreshIntervals,
  so each node's periodic resync falls in it twice) as a share of one core, per process
  kind (calico-node with the children it reaped, BIRD), and wake-ups per node per second
  (voluntary context switches of all of the process's threads: each one is a thread
  going to sleep, to be woken again), measured once every node has applied the
  datastore and 5 s more have passed;
- pod route: --trials times a pod on node1 in an IPPool of its own (so it opens a new
  block), from the start of its CNI ADD until the block is routed via node1 on every
  other node: the kernels' own route notifications (one rtnetlink socket per node
  namespace, RTMGRP_IPV4_ROUTE), stamped as they arrive; p50 and p99 (nearest rank);
- policy: --trials times a new NetworkPolicy selecting the pod of every node, written to
  the datastore from this process; from the write (its start: a Felix may apply it before
  the writer has read the datastore's answer) until the end (NFT_MSG_NEWGEN) of the
  nftables transaction that carries its chain on the last node
  (one nfnetlink socket per node namespace, NFNLGRP_NFTABLES); p50, p99, and the CPU
  calico-node spent per node on one change (all nodes' CPU over the change, less the idle
  rate measured before, divided by N);
- with --datastore etcd for the N in --etcd-nodes (default 100): the same, plus the CPU of
  the three etcd members while idle and over each change's window (idle included: etcd's
  idle work is too uneven to subtract), and etcd's own count of watchers and watch streams
  (its /metrics).

Then one node with --endpoints (5000) synthetic endpoints and --policies (1000) policies,
bench-policy's synthetic cluster (bench/policy.py). A real calico-node (policy only, flow
logs off) starts on the policies and is fed the endpoints 1000 at a time: its RSS at each
step and the growth per 1000 endpoints (least squares); then --label-changes (50) times an
endpoint's `role` label changes, from the write to the end of the nftables
transaction that moves its address between sets (p50/p99). Another calico-node, on 500
policies and fed 1000 endpoints, gives the RSS of issue 23's target case next to its
80 MB. And the full load as bench-policy part 1 times it (read, calc, render, script,
`nft -f` into a fresh namespace) next to `nft -f`'s own floor for the same script.
--no-labs runs only this one node (a few minutes).

The figures' growth over N = 25...100 is printed as an exponent k (cost ∝ N^k, least
squares on log-log; over all N measured when fewer than two are in 25...100). The last
line is the headline for the largest N measured (100 in the full run).

Needs root. Run: make bench-scale [ARGS="--nodes 10,25 --idle 20"]. Labs are named
sc<N>x<hex> and always removed; fs.inotify.max_user_instances is raised for the run when
the biggest SQLite lab needs it (and put back at the end).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import ipaddress
import json
import math
import os
import random
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import policy as policy_bench  # puts the repository root on sys.path (tests.support)
from lab_runs import LAB, down

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.datastore.config import config_from_env, open_backend
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.felix.calc import settings as felix_settings
from pycalico.felix.dataplane import routes as route_manager
from pycalico.felix.dataplane.status_files import read_revision
from pycalico.lab import host_limits, pods
from pycalico.lab.cluster import node_env
from pycalico.lab.namespaces import ns_name
from pycalico.lab.state import LabState, Pod
from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace

API = "projectcalico.org/v3"
CLK_TCK = os.sysconf("SC_CLK_TCK")
MB = 1024 * 1024
POD_LABELS = {"scale": "pod"}
NEW_BLOCK_POOLS = "10.250.0.0/16"  # --trials pools of their own, one /24 each, blocks /26
# Netlink numbers (linux/rtnetlink.h, linux/netfilter/nfnetlink.h, nf_tables.h).
NETLINK_NETFILTER = 12
RTMGRP_IPV4_ROUTE = 0x40
RTM_NEWROUTE = 24
RTA_DST, RTA_GATEWAY = 1, 5
NFNLGRP_NFTABLES = 7
NFNL_SUBSYS_NFTABLES = 10
NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE, NFT_MSG_NEWGEN = 3, 6, 15
NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM = 12, 14
NFTA_CHAIN_NAME, NFTA_RULE_CHAIN = 3, 2
SO_RCVBUFFORCE = 33
BIRD_PROTO = 12

STARTED = time.monotonic()


def now() -> float:
    return time.monotonic()


def progress(message: str) -> None:
    print(f"[{now() - STARTED:7.1f} s] {message}", flush=True)


# --- figures ---------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile: with 10 values the p99 is the largest."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def exponent(points: list[tuple[int, float]]) -> float | None:
    """k of cost ∝ N^k by least squares on log-log; None without two usable points."""
    usable = [(math.log(n), math.log(v)) for n, v in points if v > 0]
    if len({x for x, _ in usable}) < 2:
        return None
    mx = statistics.mean(x for x, _ in usable)
    my = statistics.mean(y for _, y in usable)
    return sum((x - mx) * (y - my) for x, y in usable) / sum((x - mx) ** 2 for x, _ in usable)


def slope(points: list[tuple[float, float]]) -> float:
    mx = statistics.mean(x for x, _ in points)
    my = statistics.mean(y for _, y in points)
    return sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)


# --- processes -------------------------------------------------------------------------------


def cpu_seconds(pid: int, children: bool = True) -> float:
    """utime + stime (and the reaped children's) of `pid`; 0 when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLK_TCK


def switches(pid: int) -> dict[str, int]:
    """Voluntary context switches of each of `pid`'s threads, by thread id: each is a
    thread going to sleep, to be woken again (preemptions, which a busy machine adds, are
    left out)."""
    found = {}
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{tid}/status") as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches"):
                        found[tid] = int(line.split()[1])
    return found


def switches_between(before: dict[str, int], after: dict[str, int]) -> int:
    """Wake-ups between two samples, over the threads in both: a thread that ended takes
    its count with it (summing whole processes went negative when one did)."""
    return sum(after[tid] - before[tid] for tid in before.keys() & after.keys())


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def bird_pid(state: LabState, node: str) -> int | None:
    from pycalico.confd.bird_process import BirdProcess

    return BirdProcess("", state.path("nodes", node, "run")).pid()


@dataclass
class Kinds:
    """The lab's processes by kind."""

    calico_node: list[int]
    bird: list[int]
    etcd: list[int]

    @classmethod
    def of(cls, state: LabState) -> Kinds:
        birds = [pid for node in state.nodes if (pid := bird_pid(state, node))]
        return cls(
            [state.pids[f"calico-node:{n}"] for n in state.nodes],
            birds,
            [pid for what, pid in state.pids.items() if what.startswith("etcd:")],
        )

    def cpu(self) -> dict[str, float]:
        return {
            "calico-node": sum(cpu_seconds(p) for p in self.calico_node),
            "bird": sum(cpu_seconds(p) for p in self.bird),
            "etcd": sum(cpu_seconds(p) for p in self.etcd),
        }

    def switches(self) -> dict[str, dict[str, int]]:
        return {
            kind: {f"{p}/{tid}": n for p in pids for tid, n in switches(p).items()}
            for kind, pids in (("calico-node", self.calico_node), ("bird", self.bird))
        }


# --- watching every node's kernel ------------------------------------------------------------


def _messages(data: bytes) -> Iterator[tuple[int, bytes]]:
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            return
        yield kind, data[offset + 16 : offset + length]
        offset += (length + 3) & ~3


def _attributes(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + length]
        offset += (length + 3) & ~3


@dataclass
class RouteEvent:
    stamp: float
    node: str
    dst: ipaddress.IPv4Network
    gateway: str


@dataclass
class NftEvent:
    stamp: float  # the transaction's end (NFT_MSG_NEWGEN)
    node: str
    chains: frozenset[str]  # chains it added or added rules to
    elements: int  # set element messages in it (added or deleted)


class KernelWatch:
    """Route and nftables notifications from every node's namespace, stamped on arrival
    by one thread that does nothing else."""

    def __init__(self, namespaces: dict[str, str]) -> None:
        """`namespaces`: node name -> the path of its network namespace."""
        self.routes: list[RouteEvent] = []
        self.nft: list[NftEvent] = []
        self.lost = 0  # notifications the kernel dropped (ENOBUFS)
        self._owner: dict[int, tuple[str, str, socket.socket]] = {}
        self._chains: dict[int, set[str]] = {}
        self._elements: dict[int, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        for node, path in namespaces.items():
            for kind in ("route", "nft"):
                sock = in_netns(path, lambda kind=kind: self._open(kind))
                self._owner[sock.fileno()] = (node, kind, sock)
                self._chains[sock.fileno()] = set()
                self._elements[sock.fileno()] = 0
        self._thread = threading.Thread(target=self._run, name="kernel-watch", daemon=True)
        self._thread.start()

    @staticmethod
    def _open(kind: str) -> socket.socket:
        if kind == "route":
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            sock.bind((0, RTMGRP_IPV4_ROUTE))
        else:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
            sock.bind((0, 1 << (NFNLGRP_NFTABLES - 1)))
        sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 2 * MB)
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        poller = select.epoll()
        for fd in self._owner:
            poller.register(fd, select.EPOLLIN)
        while not self._stop.is_set():
            for fd, _ in poller.poll(0.2):
                stamp = now()
                node, kind, sock = self._owner[fd]
                while True:
                    try:
                        data = sock.recv(1 << 20)
                    except BlockingIOError:
                        break
                    except OSError:  # ENOBUFS: the kernel dropped some
                        with self._lock:
                            self.lost += 1
                        continue
                    if kind == "route":
                        self._route(stamp, node, data)
                    else:
                        self._nft(stamp, node, fd, data)
        poller.close()

    def _route(self, stamp: float, node: str, data: bytes) -> None:
        for kind, body in _messages(data):
            if kind != RTM_NEWROUTE or len(body) < 12:
                continue
            dst_len = body[1]
            dst, gateway = "0.0.0.0", ""
            for attr, value in _attributes(body, 12):
                if attr == RTA_DST and len(value) == 4:
                    dst = socket.inet_ntoa(value)
                elif attr == RTA_GATEWAY and len(value) == 4:
                    gateway = socket.inet_ntoa(value)
            event = RouteEvent(stamp, node, ipaddress.ip_network(f"{dst}/{dst_len}"), gateway)
            with self._lock:
                self.routes.append(event)

    def _nft(self, stamp: float, node: str, fd: int, data: bytes) -> None:
        for kind, body in _messages(data):
            if kind >> 8 != NFNL_SUBSYS_NFTABLES:
                continue
            message = kind & 0xFF
            if message == NFT_MSG_NEWGEN:
                event = NftEvent(stamp, node, frozenset(self._chains[fd]), self._elements[fd])
                self._chains[fd].clear()
                self._elements[fd] = 0
                with self._lock:
                    self.nft.append(event)
                continue
            if message in (NFT_MSG_NEWSETELEM, NFT_MSG_DELSETELEM):
                self._elements[fd] += 1
                continue
            wanted = {NFT_MSG_NEWCHAIN: NFTA_CHAIN_NAME, NFT_MSG_NEWRULE: NFTA_RULE_CHAIN}
            if message in wanted:
                for attr, value in _attributes(body, 4):  # after struct nfgenmsg
                    if attr == wanted[message]:
                        self._chains[fd].add(value.rstrip(b"\0").decode(errors="replace"))

    def routes_since(self, since: float) -> list[RouteEvent]:
        with self._lock:
            return [e for e in self.routes if e.stamp >= since]

    def nft_since(self, since: float) -> list[NftEvent]:
        with self._lock:
            return [e for e in self.nft if e.stamp >= since]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for _, _, sock in self._owner.values():
            sock.close()


# --- a lab run -------------------------------------------------------------------------------


@dataclass
class LabRun:
    nodes: int
    datastore: str
    reflectors: int
    up: float = 0.0
    pods: float = 0.0  # adding one pod per node
    converged: float = 0.0
    converged_after_pods: float = 0.0  # from the last pod's CNI ADD returning
    up_cpu: float = 0.0  # calico-node CPU s per node by the end of `up` (start-up included)
    pods_cpu: float = 0.0  # calico-node CPU s per node from then until converged
    applies: list[int] = field(default_factory=list)  # Felix's applies per node, bring-up
    bird_reloads: list[int] = field(default_factory=list)  # new bird.cfg per node, bring-up
    node_rss: list[float] = field(default_factory=list)
    bird_rss: list[float] = field(default_factory=list)
    idle_seconds: float = 0.0
    idle_cpu: dict[str, float] = field(default_factory=dict)  # share of one core
    idle_wakeups: dict[str, float] = field(default_factory=dict)  # per node per second
    pod_route: list[float] = field(default_factory=list)
    policy: list[float] = field(default_factory=list)
    policy_cpu: list[float] = field(default_factory=list)  # calico-node s per node per change
    etcd_change_cpu: list[float] = field(default_factory=list)  # etcd s per change
    etcd_watchers: dict[str, float] = field(default_factory=dict)
    lost: int = 0


class LabDatastore:
    """The lab's datastore as its nodes reach it (from node1's namespace: an etcd lab's
    members are on the underlay)."""

    def __init__(self, state: LabState) -> None:
        self.ns = f"/run/netns/{ns_name(state.name, state.nodes[0])}"
        env = node_env(state, state.nodes[0])
        self.backend = in_netns(self.ns, lambda: open_backend(config_from_env(env)))
        self.client = ResourceClient(self.backend)

    def apply(self, doc: dict[str, Any]) -> None:
        resource = normalize(doc)
        in_netns(self.ns, lambda: self.client.apply(resolve(resource["kind"]), resource))

    def create(self, doc: dict[str, Any]) -> float:
        """Create the resource in one write; when the write began."""
        resource, kind = normalize(doc), resolve(doc["kind"])

        def write() -> float:
            began = now()
            self.client.create(kind, resource)
            return began

        return float(in_netns(self.ns, write))

    def revision(self) -> int:
        return int(in_netns(self.ns, self.backend.revision))

    def close(self) -> None:
        self.backend.close()


def applied_everywhere(state: LabState, ds: LabDatastore, timeout: float) -> None:
    """Until every node's Felix has applied the datastore as it is now."""
    target = ds.revision()
    deadline = now() + timeout
    behind = list(state.nodes)
    while behind:
        still = []
        for node in behind:
            if read_revision(state.path("nodes", node, "run", "felix-revision")) < target:
                still.append(node)
        behind = still
        if behind and now() > deadline:
            raise RuntimeError(f"Felix behind revision {target} on {', '.join(behind[:5])}")
        if behind:
            time.sleep(0.1)


def lab_up(name: str, args: list[str]) -> float:
    """`calico-lab up`, its progress condensed; its wall time."""
    started = now()
    proc = subprocess.Popen(
        [LAB, "up", "--name", name, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = 0
    assert proc.stderr is not None
    for line in proc.stderr:
        line = line.strip()
        if re.fullmatch(r"node\d+ ready", line):
            ready += 1
            if ready % 10 == 0:
                progress(f"  {ready} nodes ready")
        elif line:
            progress(f"  {line}")
    proc.wait()
    if proc.returncode != 0:
        raise RuntimeError(f"calico-lab up {name} failed (see above)")
    return now() - started


def unrouted(state: LabState, tables: dict[str, Any]) -> list[str]:
    """Nodes that lack a route to some other node's pod via that node."""
    missing = []
    for node in state.nodes:
        routes = []
        for r in tables[node].get_routes(family=socket.AF_INET, table=254):
            dst = r.get_attr("RTA_DST")
            if dst:
                routes.append(
                    (ipaddress.ip_network(f"{dst}/{r['dst_len']}"), r.get_attr("RTA_GATEWAY"))
                )
        for pod in state.pods.values():
            if pod.node == node or not pod.ip:
                continue
            via = state.node_ips[pod.node].split("/")[0]
            ip = ipaddress.ip_address(pod.ip)
            if not any(ip in dst and gw == via for dst, gw in routes):
                missing.append(node)
                break
    return missing


def bring_up_work(state: LabState) -> tuple[list[int], list[int]]:
    """Per node, how many times Felix applied and confd loaded a new bird.cfg so far (from
    their log lines): how well the bring-up's burst of writes coalesced."""
    applies, reloads = [], []
    for node in state.nodes:
        with open(state.path("nodes", node, "calico-node.log"), errors="replace") as f:
            text = f.read()
        applies.append(text.count("Finished applying updates to dataplane"))
        reloads.append(text.count("BIRD config updated"))
    return applies, reloads


def wait_converged(state: LabState, timeout: float) -> None:
    from pyroute2 import IPRoute

    tables = {
        node: in_netns(f"/run/netns/{ns_name(state.name, node)}", IPRoute) for node in state.nodes
    }
    try:
        deadline = now() + timeout
        while missing := unrouted(state, tables):
            if now() > deadline:
                raise RuntimeError(f"not converged after {timeout:.0f} s: {missing[:5]}")
            time.sleep(0.5)
    finally:
        for ipr in tables.values():
            ipr.close()


def idle(run: LabRun, kinds: Kinds, seconds: float) -> dict[str, float]:
    """Measure the idle lab over `seconds`; the CPU rate per kind (s per s)."""
    cpu0, sw0, t0 = kinds.cpu(), kinds.switches(), now()
    step = 30.0
    while (left := seconds - (now() - t0)) > 0:
        time.sleep(min(step, left))
        if seconds - (now() - t0) > 0:
            progress(f"  idle {now() - t0:.0f}/{seconds:.0f} s")
    cpu1, sw1, elapsed = kinds.cpu(), kinds.switches(), now() - t0
    rates = {k: (cpu1[k] - cpu0[k]) / elapsed for k in cpu0}
    run.idle_seconds = elapsed
    run.idle_cpu = rates
    run.idle_wakeups = {
        k: switches_between(sw0[k], sw1[k])
        / elapsed
        / max(1, len(getattr(kinds, k.replace("-", "_"))))
        for k in sw0
    }
    return rates


def new_blocks(
    run: LabRun, state: LabState, ds: LabDatastore, watch: KernelWatch, trials: int
) -> None:
    """A pod on node1 in a pool of its own, each time: its block routed everywhere."""
    base = ipaddress.ip_network(NEW_BLOCK_POOLS)
    cidrs = list(base.subnets(new_prefix=24))[:trials]
    for k, cidr in enumerate(cidrs):
        ds.apply(
            {
                "apiVersion": API,
                "kind": "IPPool",
                "metadata": {"name": f"scale-b{k}"},
                "spec": {
                    "cidr": str(cidr),
                    "blockSize": 26,
                    "ipipMode": "Never",
                    "vxlanMode": "Never",
                    "natOutgoing": False,
                },
            }
        )
    applied_everywhere(state, ds, 60 + len(state.nodes))
    time.sleep(2)  # confd's new bird.cfg (the pools' filters) on every node
    origin = state.node_ips["node1"].split("/")[0]
    others = set(state.nodes) - {"node1"}
    for k in range(trials):
        started = now()
        pod = pods.add(
            state,
            f"nb{k}",
            "node1",
            labels={"scale": "new-block"},
            annotations={"cni.projectcalico.org/ipv4pools": json.dumps([f"scale-b{k}"])},
        )
        ip = ipaddress.ip_address(pod.ip)
        if ip not in cidrs[k]:
            raise RuntimeError(f"pod nb{k} got {ip}, not from pool scale-b{k} ({cidrs[k]})")
        deadline = now() + 60
        while True:
            seen = {
                e.node: e.stamp
                for e in reversed(watch.routes_since(started))
                if e.node in others and ip in e.dst and e.gateway == origin
            }
            if set(seen) == others:
                run.pod_route.append(max(seen.values()) - started)
                slowest = max(seen, key=lambda node: seen[node])
                break
            if now() > deadline:
                raise RuntimeError(f"block of {ip} not routed on {sorted(others - set(seen))[:5]}")
            time.sleep(0.05)
        progress(f"  new block {k + 1}/{trials}: {run.pod_route[-1]:.2f} s (last: {slowest})")
        time.sleep(0.5)


def policy_changes(
    run: LabRun,
    state: LabState,
    ds: LabDatastore,
    watch: KernelWatch,
    kinds: Kinds,
    idle_rate: dict[str, float],
    trials: int,
) -> None:
    """A new NetworkPolicy selecting every node's pod, each time: in every kernel."""
    for k in range(trials):
        name = f"scale-pol-{k:03d}"
        doc = {
            "apiVersion": API,
            "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": "scale == 'pod'",
                "types": ["Ingress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"selector": "scale == 'pod'"},
                        "destination": {"ports": [8000 + k]},
                    }
                ],
            },
        }
        cpu0, t0 = kinds.cpu(), now()
        # From the write's start: a node's Felix may well apply it before this thread has
        # read the datastore's answer.
        written = ds.create(doc)
        deadline = written + 60
        while True:
            done = {
                e.node: e.stamp
                for e in reversed(watch.nft_since(written))
                if any(name in chain for chain in e.chains)
            }
            if len(done) == len(state.nodes):
                break
            if now() > deadline:
                missing = sorted(set(state.nodes) - set(done))
                raise RuntimeError(f"{name} not in the kernel of {missing[:5]}")
            time.sleep(0.02)
        run.policy.append(max(done.values()) - written)
        slowest = max(done, key=lambda node: done[node])
        time.sleep(1.0)  # the change's last work (status files, metrics) inside the window
        cpu1, window = kinds.cpu(), now() - t0
        extra = cpu1["calico-node"] - cpu0["calico-node"] - idle_rate["calico-node"] * window
        run.policy_cpu.append(extra / len(state.nodes))
        if kinds.etcd:
            # Raw: etcd's idle rate (its compactions, its 200 streams' keep-alives) is too
            # uneven to subtract over a window of a second or two (it went negative).
            run.etcd_change_cpu.append(cpu1["etcd"] - cpu0["etcd"])
        progress(
            f"  policy {k + 1}/{trials}: {run.policy[-1]:.2f} s (last: {slowest}), "
            f"calico-node {run.policy_cpu[-1] * 1000:.1f} ms CPU per node"
        )


def etcd_watchers(state: LabState) -> dict[str, float]:
    """etcd's own gauges of watchers and watch streams, from member 1's /metrics."""
    from pycalico.lab.underlay_plan import etcd_member_ip

    def read() -> str:
        with urllib.request.urlopen(f"http://{etcd_member_ip(0)}:2379/metrics", timeout=5) as r:
            return str(r.read().decode())

    text = in_netns(f"/run/netns/{ns_name(state.name, 'etcd1')}", read)
    found = {}
    for metric in ("etcd_debugging_mvcc_watcher_total", "etcd_debugging_mvcc_watch_stream_total"):
        match = re.search(rf"^{metric} (\S+)$", text, re.M)
        if match:
            found[metric.removeprefix("etcd_debugging_mvcc_")] = float(match.group(1))
    return found


def measure(
    run: LabRun, state: LabState, ds: LabDatastore, opts: argparse.Namespace, what: str
) -> None:
    """Everything after convergence, on a lab whose pods are in place."""
    n = len(state.nodes)
    applied_everywhere(state, ds, 60 + n)
    time.sleep(5)
    kinds = Kinds.of(state)
    run.node_rss = [rss_mb(p) for p in kinds.calico_node]
    run.bird_rss = [rss_mb(p) for p in kinds.bird]
    progress(f"{what}: idle for {opts.idle:.0f} s")
    rates = idle(run, kinds, opts.idle)
    watch = KernelWatch({n: f"/run/netns/{ns_name(state.name, n)}" for n in state.nodes})
    try:
        progress(f"{what}: {opts.trials} new blocks on node1")
        new_blocks(run, state, ds, watch, opts.trials)
        applied_everywhere(state, ds, 60 + n)
        time.sleep(2)
        progress(f"{what}: {opts.trials} policy changes")
        policy_changes(run, state, ds, watch, kinds, rates, opts.trials)
        if run.datastore == "etcd":
            run.etcd_watchers = etcd_watchers(state)
        run.lost = watch.lost
    finally:
        watch.close()


def add_pods(state: LabState) -> None:
    """One pod per node, started as kubelets start a DaemonSet's (pods.start_all)."""
    done: list[Pod] = []

    def started(pod: Pod) -> None:
        done.append(pod)
        if len(done) % 10 == 0 or len(done) == len(state.nodes):
            progress(f"  {len(done)}/{len(state.nodes)} pods")

    pods.start_all(
        [
            functools.partial(pods.add, state, f"p{i + 1}", node, labels=dict(POD_LABELS))
            for i, node in enumerate(state.nodes)
        ],
        started,
    )


def lab_run(n: int, datastore: str, opts: argparse.Namespace) -> LabRun:
    reflectors = 2 if n >= max(3, opts.reflectors_from) else 0
    run = LabRun(n, datastore, reflectors)
    name = f"sc{n}x{uuid.uuid4().hex[:3]}"
    what = f"N={n} {datastore}" + (f", {reflectors} route reflectors" if reflectors else ", mesh")
    progress(f"{what}: calico-lab up --name {name}")
    args = ["--nodes", str(n), "--encap", "none", "--datastore", datastore]
    if reflectors:
        args += ["--route-reflectors", str(reflectors)]
    started = now()
    try:
        run.up = lab_up(name, args)
        progress(f"{what}: up in {run.up:.1f} s; one pod per node")
        state = LabState.load(name)
        kinds = Kinds.of(state)
        up_cpu = kinds.cpu()["calico-node"]
        run.up_cpu = up_cpu / n
        t = now()
        add_pods(state)
        run.pods = now() - t
        pods_done = now()
        wait_converged(state, timeout=120 + 3 * n)
        run.converged = now() - started
        run.converged_after_pods = now() - pods_done
        run.pods_cpu = (kinds.cpu()["calico-node"] - up_cpu) / n
        run.applies, run.bird_reloads = bring_up_work(state)
        progress(f"{what}: converged {run.converged:.1f} s after up began")
        ds = LabDatastore(state)
        try:
            measure(run, state, ds, opts, what)
        finally:
            ds.close()
    finally:
        progress(f"{what}: removing the lab")
        down(name)
    return run


# --- one node, many endpoints ----------------------------------------------------------------


# Issue 23's memory target: calico-node with this many local endpoints and policies.
TARGET_ENDPOINTS, TARGET_POLICIES, TARGET_RSS_MB = 1000, 500, 80.0


@dataclass
class Single:
    endpoints: int
    policies: int
    cold: policy_bench.Cold | None = None
    changes: list[float] = field(default_factory=list)  # label change: write -> kernel
    start_to_ready: float = 0.0  # the real calico-node: start -> applied, on the policies
    rss_steps: list[tuple[int, float]] = field(default_factory=list)  # endpoints, MB
    # The other calico-node, on TARGET_POLICIES: its RSS with 0 and TARGET_ENDPOINTS.
    target_steps: list[tuple[int, float]] = field(default_factory=list)


def policy_counts(total: int) -> tuple[int, int, int]:
    """bench-policy's mix (half NetworkPolicy, 30% global, 20% in tier security)."""
    np_count, gnp_count = total // 2, total * 3 // 10
    return np_count, gnp_count, total - np_count - gnp_count


def build_store(path: str, endpoints: int, policies: int) -> float:
    backend = SqliteBackend(path, create=True)
    try:
        docs = policy_bench.cluster_docs(endpoints, policy_counts(policies))
        return policy_bench.apply_docs(ResourceClient(backend), docs)
    finally:
        backend.close()


class NodeProcess:
    """A real calico-node (policy only, flow logs off) in a node namespace, on a store."""

    def __init__(self, ns: str, store: str, tmp: str) -> None:
        self.tmp = tmp
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("CALICO_", "FELIX_"))},
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": store,
            "NODENAME": policy_bench.NODE,
            "IP_AUTODETECTION_METHOD": "interface=eth0",
            "CALICO_NETWORKING_BACKEND": "none",
            "NO_DEFAULT_POOLS": "true",
            "CALICO_STATE_DIR": os.path.join(tmp, "lib"),
            "CALICO_RUN_DIR": os.path.join(tmp, "run"),
            "CALICO_CONFD_DIR": os.path.join(tmp, "confd"),
        }
        binary = os.path.join(os.path.dirname(sys.executable), "calico-node")
        with open(os.path.join(tmp, "calico-node.log"), "ab") as log:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, binary],
                env=env,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )

    def applied(self, target: int, timeout: float) -> None:
        """Until Felix has applied revision `target`."""
        deadline = now() + timeout
        while True:
            if read_revision(os.path.join(self.tmp, "run", "felix-revision")) >= target:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"calico-node exited; see {self.tmp}/calico-node.log")
            if now() > deadline:
                raise RuntimeError(f"calico-node did not apply revision {target} in time")
            time.sleep(0.05)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def label_change(
    client: ResourceClient, endpoints: int, rng: random.Random, watch: KernelWatch
) -> float:
    """One endpoint's `role` (used only by rule selectors) changed as `calicoctl label`
    changes it; from the write to the end of the nftables transaction that moves its
    address between sets."""
    kind = resolve("WorkloadEndpoint")
    i = rng.randrange(endpoints)
    ns = policy_bench.NAMESPACES[i % len(policy_bench.NAMESPACES)]
    current = client.get(kind, f"{policy_bench.NODE}-k8s-pod{i}-eth0", ns)
    assert current is not None
    old = current["metadata"]["labels"]["role"]
    current["metadata"]["labels"]["role"] = rng.choice(
        [f"r{r}" for r in range(policy_bench.ROLES) if f"r{r}" != old]
    )
    written = now()  # Felix may apply it before this thread has seen the write return
    client.update(kind, current)
    deadline = written + 30
    while now() < deadline:
        done = [e.stamp for e in watch.nft_since(written) if e.elements]
        if done:
            return min(done) - written
        time.sleep(0.005)
    raise RuntimeError("no nftables transaction with set elements after a label change")


def feed(
    calico_node: NodeProcess,
    backend: SqliteBackend,
    endpoints: int,
    steps: list[tuple[int, float]],
) -> None:
    """calico-node's RSS on what it has applied, then as it is fed `endpoints` 1000 at a
    time (each step once applied, and a second later)."""
    client = ResourceClient(backend)
    time.sleep(1)
    steps.append((0, rss_mb(calico_node.proc.pid)))
    for first in range(0, endpoints, 1000):
        docs = [policy_bench.wep_doc(i) for i in range(first, first + 1000)]
        policy_bench.apply_docs(client, docs)
        calico_node.applied(backend.revision(), 600)
        time.sleep(1)
        steps.append((first + 1000, rss_mb(calico_node.proc.pid)))
        progress(f"  calico-node with {first + 1000} endpoints: RSS {steps[-1][1]:.0f} MB")


def real_node(tmp: str, opts: argparse.Namespace, result: Single) -> None:
    """calico-node on the policies, fed endpoints 1000 at a time (RSS at each step), then
    label changes through it."""
    store = os.path.join(tmp, "node.db")
    build_store(store, 0, opts.policies)
    with node_namespace("scn", policy_bench.NODE_ADDRESS) as node:
        calico_node = NodeProcess(node.ns, store, tmp)
        backend = SqliteBackend(store, create=True)
        watch = KernelWatch({"node": node.path})
        try:
            client = ResourceClient(backend)
            started = now()
            calico_node.applied(backend.revision(), 600)
            result.start_to_ready = now() - started
            feed(calico_node, backend, opts.endpoints, result.rss_steps)
            # The endpoints have no interfaces here, so Felix retries their routes for its
            # grace period; on a real node the pod's veth exists first.
            time.sleep(route_manager.WORKLOAD_ROUTE_GRACE)
            rng = random.Random(7)
            for k in range(opts.label_changes):
                result.changes.append(label_change(client, opts.endpoints, rng, watch))
                if (k + 1) % 10 == 0:
                    progress(f"  {k + 1}/{opts.label_changes} label changes")
                time.sleep(rng.uniform(0.15, 0.3))  # apart: one change per apply
        finally:
            watch.close()
            backend.close()
            calico_node.stop()


def target_node(tmp: str, result: Single) -> None:
    """calico-node on TARGET_POLICIES, fed TARGET_ENDPOINTS: issue 23's memory target."""
    os.makedirs(tmp, mode=0o700)  # the datastore's directory, as TemporaryDirectory makes it
    store = os.path.join(tmp, "node.db")
    build_store(store, 0, TARGET_POLICIES)
    with node_namespace("sct", policy_bench.NODE_ADDRESS) as node:
        calico_node = NodeProcess(node.ns, store, tmp)
        backend = SqliteBackend(store, create=True)
        try:
            calico_node.applied(backend.revision(), 600)
            feed(calico_node, backend, TARGET_ENDPOINTS, result.target_steps)
        finally:
            backend.close()
            calico_node.stop()


def single_node(opts: argparse.Namespace) -> Single:
    result = Single(opts.endpoints, opts.policies)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        progress(
            f"one node: {opts.endpoints} endpoints x {opts.policies} policies; a real "
            "calico-node fed 1000 endpoints at a time, then label changes through it"
        )
        real_node(tmp, opts, result)
        progress(
            f"one node: calico-node on {TARGET_POLICIES} policies fed {TARGET_ENDPOINTS} "
            "endpoints (issue 23's memory target)"
        )
        target_node(os.path.join(tmp, "target"), result)
        store = os.path.join(tmp, "store.db")
        build_store(store, opts.endpoints, opts.policies)
        progress("one node: the full load and nft -f's floor")
        result.cold = policy_bench.cold_full(store, tmp)
    return result


# --- the report ------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def figures(run: LabRun) -> dict[str, float | None]:
    def p(values: list[float], q: float) -> float | None:
        return pct(values, q) if values else None

    return {
        "up (s)": run.up,
        "converged (s)": run.converged,
        "pods added, one per node (s)": run.pods,
        "converged after the last pod (s)": run.converged_after_pods,
        "calico-node CPU per node during up (s)": run.up_cpu,
        "calico-node CPU per node, pods to converged (s)": run.pods_cpu,
        "Felix applies per node to converge (median)": statistics.median(run.applies),
        "bird.cfg loads per node to converge (median)": statistics.median(run.bird_reloads),
        "calico-node RSS median (MB)": statistics.median(run.node_rss),
        "calico-node RSS max (MB)": max(run.node_rss),
        "BIRD RSS median (MB)": statistics.median(run.bird_rss) if run.bird_rss else None,
        "BIRD RSS max (MB)": max(run.bird_rss) if run.bird_rss else None,
        "idle CPU calico-node, all nodes (% of a core)": 100 * run.idle_cpu["calico-node"],
        "idle CPU BIRD, all nodes (% of a core)": 100 * run.idle_cpu["bird"],
        "idle wake-ups calico-node (per node per s)": run.idle_wakeups["calico-node"],
        "idle wake-ups BIRD (per node per s)": run.idle_wakeups["bird"],
        "pod route p50 (s)": p(run.pod_route, 50),
        "pod route p99 (s)": p(run.pod_route, 99),
        "policy p50 (s)": p(run.policy, 50),
        "policy p99 (s)": p(run.policy, 99),
        "calico-node CPU per node per change (ms)": (
            1000 * statistics.median(run.policy_cpu) if run.policy_cpu else None
        ),
        "idle CPU etcd, 3 members (% of a core)": (
            100 * run.idle_cpu["etcd"] if run.datastore == "etcd" else None
        ),
        "etcd CPU over a change's window, idle included (ms)": (
            1000 * statistics.median(run.etcd_change_cpu) if run.etcd_change_cpu else None
        ),
        "etcd watchers": run.etcd_watchers.get("watcher_total"),
        "etcd watch streams": run.etcd_watchers.get("watch_stream_total"),
    }


def report(runs: list[LabRun], single: Single | None, failed: list[str]) -> None:
    if runs:
        lab_table(runs)
    if single is not None:
        single_report(single)
    for failure in failed:
        print(f"FAILED {failure}")
    headline(runs, single)


def lab_table(runs: list[LabRun]) -> None:
    sqlite_runs = [r for r in runs if r.datastore == "sqlite"]
    columns = [f"N={r.nodes}{' etcd' if r.datastore == 'etcd' else ''}" for r in runs]
    table = {run_name: figures(r) for run_name, r in zip(columns, runs, strict=True)}
    ns = [r.nodes for r in sqlite_runs]
    in_range = [n for n in ns if 25 <= n <= 100]
    span = in_range if len(in_range) >= 2 else ns
    growth_title = f"k over N={min(span)}…{max(span)}" if len(span) >= 2 else "k"
    rows = [["figure", *columns, growth_title]]
    for key in next(iter(table.values())):
        values = [table[c][key] for c in columns]
        if all(v is None for v in values):
            continue
        points = [
            (r.nodes, v)
            for r, v in zip(runs, values, strict=True)
            if r.datastore == "sqlite" and r.nodes in span and v is not None
        ]
        k = exponent(points)
        digits = 0 if "watch" in key else 2
        rows.append([key, *(fmt(v, digits) for v in values), fmt(k)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    for r in runs:
        mode = f"{r.reflectors} route reflectors" if r.reflectors else "full mesh"
        extra = f", {r.lost} notification buffers lost" if r.lost else ""
        print(
            f"N={r.nodes} {r.datastore}: {mode}; idle measured over {r.idle_seconds:.0f} s{extra}"
        )


def single_report(single: Single) -> None:
    if single.cold is not None:
        cold = single.cold
        total = policy_bench.cold_total(cold)
        print(
            f"\none node, {single.endpoints} endpoints x {single.policies} policies: full load "
            f"{total:.2f} s (read {cold.read:.2f}, calc {cold.calc:.2f}, render {cold.render:.2f}, "
            f"script {cold.script:.2f}, nft -f {cold.apply:.2f}); nft -f floor best "
            f"{min(cold.floor):.2f} s, median {statistics.median(cold.floor):.2f} s "
            f"(load = {total / statistics.median(cold.floor):.2f}x floor)"
        )
        print(
            f"  label change (write -> nft transaction end), {len(single.changes)} changes: "
            f"p50 {pct(single.changes, 50) * 1000:.0f} ms, "
            f"p99 {pct(single.changes, 99) * 1000:.0f} ms"
        )
        steps = ", ".join(f"{n}: {mb:.0f}" for n, mb in single.rss_steps)
        growth = slope([(n / 1000, mb) for n, mb in single.rss_steps])
        print(
            f"  calico-node (real process, policy only, flow logs off): ready on the policies in "
            f"{single.start_to_ready:.1f} s; RSS MB by endpoints {steps}; "
            f"{growth:.1f} MB per 1000 endpoints"
        )
    target = target_rss(single)
    if target is not None:
        verdict = "met" if target <= TARGET_RSS_MB else "MISSED"
        print(
            f"  calico-node with {TARGET_ENDPOINTS} endpoints x {TARGET_POLICIES} policies "
            f"(issue 23's target case): RSS {target:.0f} MB, target <= {TARGET_RSS_MB:.0f} MB "
            f"{verdict}; {dict(single.target_steps)[0]:.0f} MB on the policies alone"
        )


def target_rss(single: Single | None) -> float | None:
    """calico-node's RSS in issue 23's target case, if measured."""
    return dict(single.target_steps).get(TARGET_ENDPOINTS) if single else None


def headline(runs: list[LabRun], single: Single | None) -> None:
    sqlite_runs = [r for r in runs if r.datastore == "sqlite"]
    biggest = max(sqlite_runs, key=lambda r: r.nodes) if sqlite_runs else None
    full = policy_bench.cold_total(single.cold) if single and single.cold else None
    target = f"{TARGET_ENDPOINTS}x{TARGET_POLICIES} calico-node RSS {fmt(target_rss(single), 0)} MB"
    if biggest is not None:  # the headline, exactly (the target case is printed above)
        print(
            f"scale: {biggest.nodes} nodes converged {biggest.converged:.1f} s, calico-node RSS "
            f"{max(biggest.node_rss):.0f} MB, policy p99 {fmt(pct(biggest.policy, 99))} s, "
            f"pod route p99 {fmt(pct(biggest.pod_route, 99))} s, "
            f"{single.endpoints if single else 5000}x{single.policies if single else 1000} "
            f"full load {fmt(full)} s"
        )
    elif single is not None and single.changes:
        growth = slope([(n / 1000, mb) for n, mb in single.rss_steps])
        print(
            f"scale: one node {single.endpoints}x{single.policies} full load {fmt(full)} s, "
            f"label change p99 {pct(single.changes, 99) * 1000:.0f} ms, calico-node "
            f"{growth:.1f} MB per 1000 endpoints, {target} (target <= {TARGET_RSS_MB:.0f})"
        )


# --- main ------------------------------------------------------------------------------------


def node_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a comma-separated list of node counts"
        ) from None
    return values


def options(argv: list[str]) -> argparse.Namespace:
    from pycalico.lab.underlay_plan import MAX_NODES

    refresh = felix_settings.resolve({}, {}, {}).route_refresh_interval
    p = argparse.ArgumentParser(prog="bench/scale.py", description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--nodes", type=node_list, default=[10, 25, 50, 100], help="lab sizes (10,25,50,100)"
    )
    p.add_argument(
        "--etcd-nodes",
        type=node_list,
        default=[100],
        help="sizes also run with --datastore etcd (100; '' for none)",
    )
    p.add_argument(
        "--reflectors-from", type=int, default=25, help="two route reflectors from this N on (25)"
    )
    p.add_argument(
        "--trials", type=int, default=10, help="new blocks and policy changes per lab (10)"
    )
    p.add_argument(
        "--idle",
        type=float,
        default=2 * refresh,
        help=f"idle seconds measured ({2 * refresh:.0f}: two routeRefreshIntervals)",
    )
    p.add_argument("--endpoints", type=int, default=5000, help="the single node's endpoints (5000)")
    p.add_argument("--policies", type=int, default=1000, help="the single node's policies (1000)")
    p.add_argument(
        "--label-changes", type=int, default=50, help="label changes on the single node (50)"
    )
    p.add_argument("--no-single", action="store_true", help="skip the single node")
    p.add_argument("--no-labs", action="store_true", help="only the single node")
    opts = p.parse_args(argv)
    if opts.no_labs:
        if opts.no_single:
            p.error("--no-labs and --no-single leave nothing to run")
        opts.nodes, opts.etcd_nodes = [], []
    elif not opts.nodes:
        p.error("--nodes needs at least one lab size")
    for n in opts.nodes + opts.etcd_nodes:
        if not 2 <= n <= MAX_NODES:
            p.error(f"lab sizes must be 2-{MAX_NODES}")
    if not 1 <= opts.trials <= 256:
        p.error("--trials must be 1-256")
    if opts.label_changes < 1:
        p.error("--label-changes must be at least 1")
    if opts.endpoints % 1000 or opts.endpoints <= 0:
        p.error("--endpoints must be a multiple of 1000")
    return opts


@contextlib.contextmanager
def enough_inotify(nodes: int) -> Iterator[None]:
    """Raise fs.inotify.max_user_instances for the run if the biggest lab needs it."""
    limit = host_limits.inotify_limit()
    needed = host_limits.inotify_in_use() + host_limits.inotify_needed(nodes, "sqlite") + 16
    if needed <= limit:
        yield
        return
    raised = 1 << needed.bit_length()
    progress(f"fs.inotify.max_user_instances {limit} -> {raised} for this run")
    with open(host_limits.MAX_INSTANCES, "w") as f:
        f.write(str(raised))
    try:
        yield
    finally:
        with open(host_limits.MAX_INSTANCES, "w") as f:
            f.write(str(limit))
        progress(f"fs.inotify.max_user_instances back to {limit}")


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-scale needs root (it builds labs of network namespaces)\n")
        return 1
    opts = options(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"bench/scale: N = {', '.join(map(str, opts.nodes)) or 'none'} (etcd also at "
        f"{', '.join(map(str, opts.etcd_nodes)) or 'none'}), --encap none, route reflectors "
        f"from N={opts.reflectors_from}, {opts.trials} trials, idle {opts.idle:.0f} s; one node "
        f"{opts.endpoints}x{opts.policies}; pycalico {policy_bench.version()}; load average "
        f"{os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        flush=True,
    )
    runs: list[LabRun] = []
    failed: list[str] = []
    with enough_inotify(max(opts.nodes, default=0)):
        for n, datastore in [(n, "sqlite") for n in opts.nodes] + [
            (n, "etcd") for n in opts.etcd_nodes
        ]:
            try:
                runs.append(lab_run(n, datastore, opts))
            except Exception as exc:  # the other sizes still count: say which failed, and why
                failed.append(f"N={n} {datastore}: {exc}")
                progress(f"N={n} {datastore} failed: {exc}")
    single = None
    if not opts.no_single:
        try:
            single = single_node(opts)
        except Exception as exc:
            failed.append(f"one node {opts.endpoints}x{opts.policies}: {exc}")
            progress(f"one node failed: {exc}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    report(runs, single, failed)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
