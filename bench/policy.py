"""Network policy speed: 1000 endpoints x 500 policies, cold, incremental, and on the wire.

One run, three parts, printed side by side with their targets:

1. Cold full. 1000 WorkloadEndpoints on node1 (5 namespaces, mixed labels, named ports)
   and 500 policies (250 NetworkPolicy, 150 GlobalNetworkPolicy in the default tier, 100
   in a second tier `security`; selectors with &&, in, has, !has; namespaceSelector;
   nets/notNets; ports, ranges, notPorts, named ports; Allow/Deny/Pass/Log; ICMP) plus a
   `kns.<ns>` Profile per namespace, read from an SQLite datastore as Felix reads them.
   Timed: datastore read + model, calc, render, script, and `nft -f` of the whole script
   into a fresh network namespace (the apply). The floor is `nft -f` of the same script
   from a file into other fresh namespaces (best of 3): what nft alone needs.
2. Incremental, end to end through Felix. A real Felix (`pycalico.felix.daemon.Felix`, in a
   thread inside a node namespace) on that datastore. 50 times a WEP's `role` label (used
   only by rule selectors) changes with ResourceClient.update, as `calicoctl label` does;
   the clock runs from the write's commit until `nft monitor` in the node namespace
   reports the end of the transaction (`# new generation`) that carries the set element
   changes. The monitor runs in its own process, which stamps each line with
   CLOCK_MONOTONIC as it reads it, so the bench's own threads cannot delay the stamp.
   Felix's functions are wrapped (in this process only) to split each apply cycle into
   watch wait, snapshot read, calc, render, diff and `nft -f` (the incremental floor).
   Percentiles are nearest-rank: with 50 changes the p99 is the slowest one. The memo
   caches of the policy code are emptied before part 1 and before Felix starts, as in a
   fresh process.
3. iperf3 pod -> pod across a 2-node lab, with no policy and with the 500 policies (made
   to select both pods, plus an allow for iperf3) applied through calicoctl, in
   alternating rounds.

4. Host protection, side by side with parts 1 and 2 in the same run: the same datastore
   plus a HostEndpoint on node1's eth0 and 100 GlobalNetworkPolicies selecting it (normal,
   applyOnForward, preDNAT and doNotTrack ones, some with rule selectors that also match
   pods). The cold full load is timed alternately without and with them
   (BENCH_POLICY_HEP_ROUNDS each, the same path as part 1, host endpoint rendering
   included; each goes first every other round). The overhead is judged on the CPU time
   of the load (this process's from read to script, plus nft's user and system time for
   the apply, the kernel's commit included), median of the rounds: the load is
   single-threaded and CPU-bound, so on an idle machine its wall time is its CPU time,
   while on a shared 2-core machine one full load's wall time varied by tens of percent
   between rounds of the same table. Beside it: the best round's CPU, the median of each
   round's ratio (its two loads ran back to back), and wall times (best and median).
   Part 2's label changes then run again on a Felix that has the host endpoint.
   Target: the host endpoint adds <= 5% to the full load and the label-change p99 stays
   <= 50 ms. The last line printed is that verdict.

Needs root. Run: make bench-policy. Environment: BENCH_POLICY_CHANGES (50),
BENCH_POLICY_ROUNDS (3 iperf rounds), BENCH_IPERF_SECONDS (5), BENCH_POLICY_LAB=0 skips
part 3, BENCH_POLICY_HEP_ROUNDS (11), BENCH_POLICY_HEP=0 skips part 4.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import os
import queue
import random
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml
from lab_runs import LAB, down, iperf

# The repository root, for the tests' shared helpers (tests.support).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pycalico.api.registry import resolve
from pycalico.api.resource import kind_of, normalize
from pycalico.datastore import resources as ds_resources
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.felix import daemon, driver
from pycalico.felix.calc import snapshot
from pycalico.felix.dataplane import nftables, rule_counters
from pycalico.felix.dataplane import routes as route_manager
from pycalico.felix.rules import host_endpoints
from pycalico.felix.rules import policy as nft
from pycalico.felix.rules.table import Ruleset
from pycalico.netns import in_netns
from pycalico.policy import calc, model
from pycalico.policy import inputs as policy_inputs
from pycalico.policy.identity_memo import IdentityMemo
from tests.support.node_namespace import bare_namespace, node_namespace

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What Felix's watch uses: SqliteBackend's default poll interval.
SQLITE_POLL = inspect.signature(SqliteBackend).parameters["poll_interval"].default
ENDPOINTS = 1000
NP_COUNT, GNP_COUNT, SEC_COUNT = 250, 150, 100  # 500 policies
NAMESPACES = ("ns0", "ns1", "ns2", "ns3", "ns4")
NS_LABELS = {
    "ns0": ("prod", "a"),
    "ns1": ("prod", "b"),
    "ns2": ("dev", "a"),
    "ns3": ("dev", "b"),
    "ns4": ("staging", "a"),
}
ROLES = 10
CHANGES = int(os.environ.get("BENCH_POLICY_CHANGES", "50"))
ROUNDS = int(os.environ.get("BENCH_POLICY_ROUNDS", "3"))
SECONDS = int(os.environ.get("BENCH_IPERF_SECONDS", "5"))
RUN_LAB = os.environ.get("BENCH_POLICY_LAB", "1") != "0"
RUN_HEP = os.environ.get("BENCH_POLICY_HEP", "1") != "0"
HEP_ROUNDS = int(os.environ.get("BENCH_POLICY_HEP_ROUNDS", "11"))
HEP_POLICIES = 100
TARGET_HEP_OVERHEAD = 0.05
NODE = "node1"
NODE_ADDRESS = "192.0.2.11/24"
TARGET_FULL_S = 2.0
TARGET_INCR_P99_MS = 50.0
TARGET_IPERF_RATIO = 0.9
API = "projectcalico.org/v3"


def now() -> float:
    return time.monotonic()  # CLOCK_MONOTONIC: comparable with the monitor process's stamps


def sh(*cmd: str, stdin: str | None = None, check: bool = True) -> str:
    out = subprocess.run(cmd, input=stdin, capture_output=True, text=True, check=False)
    if check and out.returncode != 0:
        raise RuntimeError(f"`{' '.join(cmd[:6])}...` failed: {out.stderr.strip()[:500]}")
    return out.stdout


# --- the synthetic cluster ------------------------------------------------------------------


def wep_labels(i: int, role: int | None = None) -> dict[str, str]:
    j = i // len(NAMESPACES)
    labels = {
        "app": f"app{j % 25}",
        "tier": ("frontend", "backend", "db")[(i // 7) % 3],
        "version": f"v{(i // 11) % 3}",
        "role": f"r{(i // 3) % ROLES if role is None else role}",
    }
    if i % 13 == 0:
        labels["canary"] = "true"
    return labels


def wep_doc(i: int, labels: dict[str, str] | None = None) -> dict[str, Any]:
    ns = NAMESPACES[i % len(NAMESPACES)]
    pod = f"pod{i}"
    ports = [{"name": "http", "protocol": "TCP", "port": 8080}]
    if i % 2 == 0:
        ports.append({"name": "metrics", "protocol": "TCP", "port": 9090})
    if i % 10 == 0:
        ports.append({"name": "dns", "protocol": "UDP", "port": 53})
    return {
        "apiVersion": API,
        "kind": "WorkloadEndpoint",
        "metadata": {
            "name": f"{NODE}-k8s-{pod}-eth0",
            "namespace": ns,
            "labels": {
                **(labels or wep_labels(i)),
                "projectcalico.org/namespace": ns,
                "projectcalico.org/orchestrator": "k8s",
            },
        },
        "spec": {
            "node": NODE,
            "orchestrator": "k8s",
            "pod": pod,
            "endpoint": "eth0",
            "containerID": hashlib.sha256(pod.encode()).hexdigest()[:64],
            # Calico's name; the interfaces need not exist, the dispatch maps only name them.
            "interfaceName": "cali" + hashlib.sha1(f"{ns}.{pod}".encode()).hexdigest()[:11],
            "ipNetworks": [f"10.65.{i // 250}.{i % 250 + 1}/32"],
            "profiles": [f"kns.{ns}"],
            "ports": ports,
        },
    }


def profile_doc(ns: str) -> dict[str, Any]:
    env, team = NS_LABELS.get(ns, ("none", "none"))
    return {
        "apiVersion": API,
        "kind": "Profile",
        "metadata": {"name": f"kns.{ns}"},
        "spec": {
            "ingress": [{"action": "Allow"}],
            "egress": [{"action": "Allow"}],
            "labelsToApply": {
                "pcns.projectcalico.org/name": ns,
                "pcns.env": env,
                "pcns.team": team,
            },
        },
    }


def _np(k: int, namespaces: tuple[str, ...]) -> dict[str, Any]:
    ns = namespaces[k % len(namespaces)]
    j = k // len(namespaces)
    app, other = f"app{j % 25}", f"app{(j + 1) % 25}"
    selector = (
        f"app == '{app}'",
        f"app == '{app}' && tier != 'db'",
        f"app in {{'{app}', '{other}'}}",
        f"app == '{app}' && has(version)",
    )[j % 4]
    ingress: list[dict[str, Any]] = []
    if j % 10 == 0:
        ingress.append(
            {"action": "Log", "protocol": "TCP", "source": {"nets": ["198.51.100.0/24"]}}
        )
    ingress += [
        {"action": "Deny", "source": {"nets": [f"100.64.{j % 256}.0/24"]}},
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"selector": f"role == 'r{j % ROLES}'"},
            "destination": {"ports": [80, 443, "http"]},
        },
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"namespaceSelector": "env == 'prod'", "selector": f"app == '{other}'"},
            "destination": {"ports": ["8000:8100"]},
        },
    ]
    if j % 5 == 2:
        ingress.append(
            {
                "action": "Allow",
                "protocol": "UDP",
                "source": {"nets": ["10.65.0.0/16"], "notNets": [f"10.65.{j % 4}.0/24"]},
                "destination": {"ports": [53, "dns"]},
            }
        )
    spec: dict[str, Any] = {
        "order": 100 + k,
        "selector": selector,
        "ingress": ingress,
        "types": ["Ingress"],
    }
    if j % 3 == 0:
        spec["types"] = ["Ingress", "Egress"]
        spec["egress"] = [
            {
                "action": "Allow",
                "protocol": "TCP",
                "destination": {
                    "selector": f"app == 'app{(j + 3) % 25}'",
                    "ports": ["metrics", 9090],
                },
            },
            {"action": "Allow", "protocol": "UDP", "destination": {"nets": ["10.96.0.10/32"]}},
            {"action": "Deny", "destination": {"notNets": ["10.0.0.0/8", "192.168.0.0/16"]}},
            {"action": "Allow", "destination": {"selector": f"role == 'r{(j + 5) % ROLES}'"}},
        ]
    return {
        "apiVersion": API,
        "kind": "NetworkPolicy",
        "metadata": {"name": f"np-{k}", "namespace": ns},
        "spec": spec,
    }


def _gnp(k: int) -> dict[str, Any]:
    app = f"app{k % 25}"
    spec: dict[str, Any] = {
        "selector": (
            f"app == '{app}' && tier == 'backend'",
            f"version == 'v{k % 3}' && app in {{'{app}', 'app{(k + 7) % 25}'}}",
            f"tier == 'db' && app == '{app}'",
            f"app == '{app}'",
            f"app == '{app}' && !has(canary)",
        )[k % 5],
        "ingress": [
            {
                "action": "Deny",
                "protocol": "TCP",
                "source": {"nets": ["100.64.0.0/10"], "notNets": ["100.64.1.0/24"]},
                "destination": {"notPorts": [22]},
            },
            {
                "action": "Allow",
                "protocol": "TCP",
                "source": {
                    "selector": f"role == 'r{k % ROLES}' && version != 'v2'",
                    "namespaceSelector": "team == 'a'",
                },
                "destination": {"ports": [8443, "9000:9100"]},
            },
        ],
        "types": ["Ingress"],
    }
    if k % 5 == 3:
        spec["namespaceSelector"] = "env == 'dev'"
    if k % 7:
        spec["order"] = 500 + k
    if k % 4 == 1:
        spec["ingress"].append(
            {"action": "Pass", "source": {"notSelector": f"role == 'r{(k + 1) % ROLES}'"}}
        )
    if k % 6 == 0:
        spec["ingress"].append({"action": "Allow", "protocol": "ICMP", "icmp": {"type": 8}})
    if k % 2 == 0:
        spec["types"] = ["Ingress", "Egress"]
        spec["egress"] = [
            {
                "action": "Allow",
                "protocol": "TCP",
                "destination": {
                    "selector": f"role == 'r{(k + 2) % ROLES}'",
                    "namespaceSelector": "all()",
                    "ports": ["http"],
                },
            },
            {"action": "Allow", "destination": {"nets": ["172.16.0.0/12"]}},
        ]
    return {
        "apiVersion": API,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"gnp-{k}"},
        "spec": spec,
    }


def _security(k: int) -> dict[str, Any]:
    if k == 0:
        selector = "all()"
    elif k == 1:
        selector = "has(app)"
    else:
        selector = f"app == 'app{k % 25}' && version == 'v{k % 3}'"
    ingress: list[dict[str, Any]] = []
    if k == 1:
        ingress.append({"action": "Log", "source": {"nets": ["198.18.0.0/15"]}})
    ingress += [
        {"action": "Deny", "source": {"nets": [f"198.18.{k}.0/24", "198.19.0.0/16"]}},
        {"action": "Pass", "source": {"selector": f"role == 'r{k % ROLES}'"}},
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"selector": "tier == 'frontend'"},
            "destination": {"ports": ["http"]},
        },
        {"action": "Pass"},
    ]
    spec: dict[str, Any] = {
        "tier": "security",
        "order": k,
        "selector": selector,
        "ingress": ingress,
        "types": ["Ingress"],
    }
    if k % 2 == 0:
        spec["types"] = ["Ingress", "Egress"]
        spec["egress"] = [
            {"action": "Deny", "destination": {"nets": ["198.18.0.0/15"]}},
            {"action": "Pass"},
        ]
    return {
        "apiVersion": API,
        "kind": "GlobalNetworkPolicy",
        "metadata": {"name": f"security.sec-{k}"},
        "spec": spec,
    }


def tier_doc() -> dict[str, Any]:
    return {
        "apiVersion": API,
        "kind": "Tier",
        "metadata": {"name": "security"},
        "spec": {"order": 100},
    }


def host_docs() -> list[dict[str, Any]]:
    """Part 4: node1's eth0 as a HostEndpoint and 100 GlobalNetworkPolicies selecting it
    (60 normal, 20 applyOnForward, 10 preDNAT, 10 doNotTrack). Their rule selectors are
    ones the pods' policies already use (`role == 'rN'`), so the figure is what the host
    endpoint adds, not what new label selectors would cost wherever they were used."""
    hep = {
        "apiVersion": API,
        "kind": "HostEndpoint",
        "metadata": {"name": f"{NODE}-eth0", "labels": {"host-endpoint": "ingress"}},
        "spec": {
            "node": NODE,
            "interfaceName": "eth0",
            "expectedIPs": [NODE_ADDRESS.split("/")[0]],
            "ports": [{"name": "kubelet", "protocol": "TCP", "port": 10250}],
        },
    }
    docs = [hep]
    for k in range(HEP_POLICIES):
        spec: dict[str, Any] = {"selector": "host-endpoint == 'ingress'", "order": 10 + k}
        if k < 60:
            spec["ingress"] = [
                {"action": "Deny", "source": {"nets": [f"198.51.{k}.0/24"]}},
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"selector": f"role == 'r{k % ROLES}'"},
                    "destination": {"ports": [10250, "kubelet", 30000 + k]},
                },
            ]
            if k % 3 == 0:
                spec["egress"] = [
                    {"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}},
                    {"action": "Allow", "destination": {"nets": [f"10.{k}.0.0/16"]}},
                ]
        elif k < 80:
            spec["applyOnForward"] = True
            spec["types"] = ["Ingress", "Egress"]
            spec["ingress"] = [{"action": "Deny", "source": {"nets": [f"203.0.113.{k}/32"]}}]
            spec["egress"] = [
                {"action": "Pass", "destination": {"selector": f"role == 'r{k % ROLES}'"}}
            ]
        elif k < 90:
            spec.update(preDNAT=True, applyOnForward=True)
            spec["ingress"] = [
                {
                    "action": "Deny",
                    "protocol": "TCP",
                    "source": {"notNets": ["10.0.0.0/8"]},
                    "destination": {
                        "ports": [f"{30000 + 200 * (k - 80)}:{30199 + 200 * (k - 80)}"]
                    },
                }
            ]
        else:
            spec.update(doNotTrack=True, applyOnForward=True)
            spec["ingress"] = [
                {"action": "Allow", "protocol": "TCP", "destination": {"ports": [7000 + k]}}
            ]
            spec["egress"] = [
                {"action": "Allow", "protocol": "TCP", "source": {"ports": [7000 + k]}}
            ]
        docs.append(
            {
                "apiVersion": API,
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": f"host-{k}"},
                "spec": spec,
            }
        )
    return docs


def policy_docs(
    namespaces: tuple[str, ...] = NAMESPACES,
    counts: tuple[int, int, int] = (NP_COUNT, GNP_COUNT, SEC_COUNT),
) -> list[dict[str, Any]]:
    """The 500 policies (the Tier they need is not among them); `counts` of NetworkPolicy,
    GlobalNetworkPolicy and tier `security` ones for another mix (bench/scale.py)."""
    np_count, gnp_count, sec_count = counts
    return (
        [_np(k, namespaces) for k in range(np_count)]
        + [_gnp(k) for k in range(gnp_count)]
        + [_security(k) for k in range(sec_count)]
    )


def apply_docs(client: ResourceClient, docs: list[dict[str, Any]]) -> float:
    started = now()
    for doc in docs:
        resource = normalize(doc)
        client.apply(kind_of(resource), resource)
    return now() - started


def cluster_docs(
    endpoints: int = ENDPOINTS, counts: tuple[int, int, int] = (NP_COUNT, GNP_COUNT, SEC_COUNT)
) -> list[dict[str, Any]]:
    """The synthetic cluster: a pool, the node, a profile per namespace, the endpoints, the
    tier and the policies (bench-scale's single node takes other counts)."""
    return [
        {
            "apiVersion": API,
            "kind": "IPPool",
            "metadata": {"name": "pods"},
            "spec": {"cidr": "10.65.0.0/16", "ipipMode": "Never", "vxlanMode": "Never"},
        },
        {
            "apiVersion": API,
            "kind": "Node",
            "metadata": {"name": NODE},
            "spec": {"bgp": {"ipv4Address": NODE_ADDRESS}},
        },
        *(profile_doc(ns) for ns in NAMESPACES),
        *(wep_doc(i) for i in range(endpoints)),
        tier_doc(),
        *policy_docs(counts=counts),
    ]


def load_datastore(client: ResourceClient) -> float:
    """Everything as `calicoctl apply` writes it: one ResourceClient.apply per resource."""
    return apply_docs(client, cluster_docs())


def clear_caches() -> None:
    """What a fresh calico-node starts with: no memoised selectors or models (rendering's
    memos belong to each renderer, and a new Felix makes a new one)."""
    from pycalico.selector import selector

    for module in (selector, model, calc):
        for value in list(vars(module).values()):
            if callable(getattr(value, "cache_clear", None)):
                value.cache_clear()
            if isinstance(value, IdentityMemo):
                value.clear()


# --- namespaces ------------------------------------------------------------------------------


def nft_load(ns: str, script: str) -> float:
    """`nft -f -` of `script` inside `ns`, as NftablesManager sends it; seconds."""

    def run() -> float:
        started = now()
        out = subprocess.run(
            ["nft", "-f", "-"], input=script, capture_output=True, text=True, check=False
        )
        elapsed = now() - started
        if out.returncode != 0:
            raise RuntimeError(f"nft rejected the script: {out.stderr.strip()[:500]}")
        return elapsed

    return in_netns(f"/run/netns/{ns}", run)


def nft_file(ns: str, path: str) -> float:
    """`nft -f FILE` inside `ns`: the floor (nothing but nft's parse, netlink and commit)."""

    def run() -> float:
        started = now()
        out = subprocess.run(["nft", "-f", path], capture_output=True, text=True, check=False)
        elapsed = now() - started
        if out.returncode != 0:
            raise RuntimeError(f"nft rejected the script: {out.stderr.strip()[:500]}")
        return elapsed

    return in_netns(f"/run/netns/{ns}", run)


# --- part 1: cold full -----------------------------------------------------------------------


@dataclass
class Cold:
    read: float = 0.0
    calc: float = 0.0
    render: float = 0.0
    script: float = 0.0
    apply: float = 0.0
    floor: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    selected: tuple[float, float] = (0.0, 0.0)  # policies per endpoint, ingress/egress
    # CPU seconds of the whole load: this process's (read to script) and nft's (the apply,
    # user + system, which includes the kernel's commit done in nft's system calls).
    cpu: float = 0.0
    # With per-rule counters: one reading of them (a scrape's), and how many rules it gave.
    counter_reads: list[float] = field(default_factory=list)
    counted_rules: int = 0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def ruleset_sizes(rules: Ruleset, script: str) -> dict[str, int]:
    return {
        "chains": len(rules.chains),
        "rules": sum(len(r) for r in rules.chains.values()),
        "sets": len(rules.sets),
        "set elements": sum(len(s.elements) for s in rules.sets.values()),
        "maps": len(rules.maps),
        "map elements": sum(len(m.elements) for m in rules.maps.values()),
        "script lines": script.count("\n"),
        "script kB": len(script.encode()) // 1024,
    }


# node1's links as Felix reads them: what the host endpoint on eth0 is matched against.
INTERFACES = {"lo": frozenset({"127.0.0.1"}), "eth0": frozenset({NODE_ADDRESS.split("/")[0]})}


def cold_full(
    store: str, tmp: str, floors: int = 3, counters: bool = True, flow_logs: bool = False
) -> Cold:
    """`counters`: Felix's per-rule counters on policy and profile rules (as calico-node
    renders them), or the same table without them. `flow_logs`: with flow logs' NFLOG
    rules (bench/flows.py compares the two)."""
    cold = Cold()
    clear_caches()
    cpu_started = time.process_time()
    backend = SqliteBackend(store, create=True)
    try:
        started = now()
        client = ResourceClient(backend)
        listed = {kind: client.list(resolve(kind))[0] for kind in policy_inputs.KINDS}
        weps = client.list(resolve("WorkloadEndpoint"))[0]
        inputs = policy_inputs.Reader().read(listed, weps)
        cold.read = now() - started
    finally:
        backend.close()
    started = now()
    state = calc.calculate(NODE, inputs, INTERFACES)
    cold.calc = now() - started
    started = now()
    renderer = nft.PolicyRenderer(counters=counters)
    rules = renderer.render(state, flow_logs=flow_logs)
    host_endpoints.add_to(rules, state, renderer.chain_lines, host_endpoints.HostConfig())
    cold.render = now() - started
    started = now()
    script = nftables.full_script(rules)
    cold.script = now() - started
    cold.cpu = time.process_time() - cpu_started
    cold.sizes = ruleset_sizes(rules, script)
    plans = list(state.endpoints.values())
    cold.selected = (
        statistics.mean(sum(len(t.policies) for t in p.ingress) for p in plans),
        statistics.mean(sum(len(t.policies) for t in p.egress) for p in plans),
    )
    with bare_namespace("pbc") as ns:
        children = _children_cpu()
        cold.apply = nft_load(ns, script)
        cold.cpu += _children_cpu() - children
        if counters:  # as a scrape reads them: the policy and profile chains, one dump each
            chains = [c for c in rules.chains if rule_counters.counted_chain(c)]
            for _ in range(5):
                started = now()
                found = in_netns(f"/run/netns/{ns}", lambda: rule_counters.read(chains))
                cold.counter_reads.append(now() - started)
            cold.counted_rules = len(found)
    path = os.path.join(tmp, "full.nft" if counters else "full-plain.nft")
    with open(path, "w", encoding="utf-8") as f:
        f.write(script)
    for _ in range(floors):
        with bare_namespace("pbf") as ns:
            cold.floor.append(nft_file(ns, path))
    return cold


def cold_total(cold: Cold) -> float:
    return cold.read + cold.calc + cold.render + cold.script + cold.apply


@dataclass
class Hosts:
    """Part 4: full loads without and with the host endpoint, alternately, and the label
    changes again with it."""

    reference: list[float] = field(default_factory=list)  # wall seconds
    with_hep: list[float] = field(default_factory=list)
    reference_cpu: list[float] = field(default_factory=list)  # CPU seconds
    with_hep_cpu: list[float] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=dict)
    loads: list[float] = field(default_factory=list)  # the 1-minute load average per round
    inc: Incremental | None = None


def hosts(store: str, tmp: str) -> Hosts:
    """`store` is copied and the host endpoint and its policies added to the copy."""
    import shutil

    result = Hosts()
    hep_store = os.path.join(tmp, "store-hep.db")
    shutil.copyfile(store, hep_store)
    backend = SqliteBackend(hep_store, create=True)
    try:
        load = apply_docs(ResourceClient(backend), host_docs())
    finally:
        backend.close()
    for i in range(HEP_ROUNDS):
        # Each goes first every other round: a drift of the machine over the rounds (its
        # load, its caches) then weighs on both alike.
        for with_hep in (False, True) if i % 2 == 0 else (True, False):
            cold = cold_full(hep_store if with_hep else store, tmp, floors=0)
            if with_hep:
                result.with_hep.append(cold_total(cold))
                result.with_hep_cpu.append(cold.cpu)
                result.sizes = cold.sizes
            else:
                result.reference.append(cold_total(cold))
                result.reference_cpu.append(cold.cpu)
        result.loads.append(os.getloadavg()[0])
    result.inc = incremental(hep_store, tmp, load)
    return result


# --- part 2: incremental through Felix -------------------------------------------------------


@dataclass
class Cycle:
    started: float  # snapshot read begins
    phases: dict[str, float] = field(default_factory=dict)
    nft_done: float = 0.0
    script: str = ""  # the nft -f diff, when the change went that way
    element_changes: list[Any] | None = None  # the netlink batch, when it went that way
    sent: bool = False
    ok: bool | None = None
    elapsed: float = 0.0  # as daemon measures it


class Recorder:
    """Felix's functions wrapped so each apply cycle is split into its phases."""

    def __init__(self) -> None:
        self.felix_thread: int | None = None
        self.current: Cycle | None = None
        self.done: queue.Queue[Cycle] = queue.Queue()
        self.active: set[str] = set()  # phases running now in Felix's thread
        self._undo: list[Callable[[], None]] = []

    def _mine(self) -> bool:
        return threading.get_ident() == self.felix_thread and self.current is not None

    def add(self, phase: str, seconds: float) -> None:
        if self._mine():
            assert self.current is not None
            self.current.phases[phase] = self.current.phases.get(phase, 0.0) + seconds

    def wrap(self, owner: Any, name: str, phase: str, begins: bool = False) -> None:
        original = getattr(owner, name, None)
        if original is None:
            return  # not in this version of Felix: its phase shows as 0
        recorder = self

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            started = now()
            mine = threading.get_ident() == recorder.felix_thread
            if begins and mine:
                recorder.current = Cycle(started)
            nested = mine and phase not in recorder.active
            if nested:
                recorder.active.add(phase)
            try:
                result = original(*args, **kwargs)
            finally:
                elapsed = now() - started
                if nested:
                    recorder.active.discard(phase)
                recorder.add(phase, elapsed)
                if phase == "datastore list" and "policy inputs" in recorder.active:
                    recorder.add("policy inputs list", elapsed)
            if phase in ("diff", "script") and recorder._mine() and isinstance(result, str):
                assert recorder.current is not None
                recorder.current.script = result
            if phase == "elements" and recorder._mine() and result is not None:
                assert recorder.current is not None
                recorder.current.element_changes = result
            if phase == "policy apply" and recorder._mine():
                assert recorder.current is not None
                recorder.current.nft_done = now()
                recorder.current.sent = bool(result)
            return result

        setattr(owner, name, wrapped)
        self._undo.append(lambda: setattr(owner, name, original))

    def observe(self, ok: bool | None, seconds: float) -> None:
        if ok is None or self.current is None:
            return
        self.current.ok, self.current.elapsed = ok, seconds
        self.done.put(self.current)
        self.current = None

    def install(self) -> None:
        self.wrap(snapshot.SnapshotReader, "read", "snapshot", begins=True)
        self.wrap(ds_resources.ResourceClient, "list", "datastore list")
        self.wrap(policy_inputs.Reader, "read", "policy inputs")
        self.wrap(driver.Driver, "apply", "driver")
        self.wrap(route_manager.RouteManager, "apply", "routes")
        self.wrap(calc.Calculator, "calculate", "calc")
        self.wrap(nft.PolicyRenderer, "render", "render")
        self.wrap(nftables, "full_script", "script")
        self.wrap(nftables, "diff_script", "diff")
        self.wrap(nftables, "element_changes", "elements")
        self.wrap(nftables.NftablesManager, "write", "policy apply")

    def uninstall(self) -> None:
        while self._undo:
            self._undo.pop()()


PROBE = "inet pbprobe s"  # a set in a table of the bench's own, in the node namespace
MONITOR = r"""
import subprocess, sys, time
p = subprocess.Popen(["nft", "monitor"], stdout=subprocess.PIPE, text=True, bufsize=1)
sys.stdout.write(f"ready {p.pid}\n"); sys.stdout.flush()
for line in p.stdout:
    sys.stdout.write(f"{time.monotonic():.6f} {line}"); sys.stdout.flush()
"""


def settled(pid: int, seconds: float = 60) -> None:
    """Wait until process `pid` sleeps and uses no CPU for 0.6 s.

    nft monitor first dumps the whole ruleset (~1 s of CPU on this table); a transaction
    committed during that dump interrupts it and nft starts it again, so probing it too
    early, at intervals shorter than the dump, keeps it dumping forever.
    """
    deadline, last, quiet = now() + seconds, None, 0
    while now() < deadline and quiet < 3:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        ticks = (fields[0], int(fields[11]) + int(fields[12]))  # state, utime + stime
        quiet = quiet + 1 if ticks == last and ticks[0] == "S" else 0
        last = ticks
        time.sleep(0.2)


@contextlib.contextmanager
def nft_monitor(ns: str) -> Iterator[queue.Queue[tuple[float, str]]]:
    """(CLOCK_MONOTONIC stamp, line) for every `nft monitor` line in `ns`."""
    sh(
        "ip",
        "netns",
        "exec",
        ns,
        "nft",
        f"add table inet pbprobe; add set {PROBE} {{ type ipv4_addr; }}",
    )
    proc = subprocess.Popen(
        ["ip", "netns", "exec", ns, sys.executable, "-u", "-c", MONITOR],
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own group: the helper and its nft go together
    )
    lines: queue.Queue[tuple[float, str]] = queue.Queue()

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            stamp, _, text = line.rstrip("\n").partition(" ")
            with contextlib.suppress(ValueError):
                lines.put((float(stamp), text))

    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().split()
        if ready[:1] != ["ready"]:
            raise RuntimeError("nft monitor did not start")
        settled(int(ready[1]))
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        # Live once it reports a transaction: an element in and out of the probe set.
        probe = f"add element {PROBE} {{ 192.0.2.99 }}; delete element {PROBE} {{ 192.0.2.99 }}"
        deadline = now() + 60
        while now() < deadline:
            sh("ip", "netns", "exec", ns, "nft", probe)
            with contextlib.suppress(queue.Empty):
                while not lines.get(timeout=3)[1].startswith("# new generation"):
                    pass
                break
        else:
            raise RuntimeError("nft monitor reports nothing")
        yield lines
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Change:
    write: float  # seconds the datastore write took
    e2e: float  # commit -> nft monitor's end of transaction
    e2e_nft_return: float  # commit -> Felix's kernel write returned
    wait: float  # commit -> Felix's snapshot read begins (the watch's wake-up)
    cycle: Cycle
    elements: int  # element lines in the nft diff, or messages in the netlink batch
    other_lines: int  # any other lines in the nft diff (chain rewrites ...)


@dataclass
class Incremental:
    first: Cycle | None = None
    changes: list[Change] = field(default_factory=list)
    load_seconds: float = 0.0
    # `nft` adding and removing one element: into one of Felix's sets, and into the only
    # set of an otherwise empty table (median of 5 each).
    one_element: tuple[float, float] = (0.0, 0.0)


def one_element(ns: str, set_ref: str) -> float:
    """Median time of `nft` putting an element into `set_ref` and out again (one transaction,
    so the set is as before)."""
    command = f"add element {set_ref} {{ 192.0.2.98 }}; delete element {set_ref} {{ 192.0.2.98 }}"
    times = []
    for _ in range(5):
        started = now()
        sh("ip", "netns", "exec", ns, "nft", command)
        times.append(now() - started)
    return statistics.median(times)


def one_element_small() -> float:
    with bare_namespace("pbs") as ns:
        sh(
            "ip",
            "netns",
            "exec",
            ns,
            "nft",
            "add table inet t; add set inet t s { type ipv4_addr; flags interval; }",
        )
        return one_element(ns, "inet t s")


def incremental(store: str, tmp: str, load_seconds: float) -> Incremental:
    from pyroute2 import IPRoute

    result = Incremental(load_seconds=load_seconds)
    recorder = Recorder()
    stop = threading.Event()
    failure: list[BaseException] = []
    writer = SqliteBackend(store, create=True)
    client = ResourceClient(writer)
    kind = resolve("WorkloadEndpoint")
    with node_namespace("pbn", NODE_ADDRESS) as node:
        ns = node.ns
        thread: threading.Thread | None = None
        clear_caches()  # part 1 warmed them: Felix starts as a fresh process would
        recorder.install()
        try:

            def serve() -> None:
                recorder.felix_thread = threading.get_ident()

                def inside() -> None:
                    with IPRoute() as ipr:
                        felix = driver.Driver(NODE, ipr, mtu_file=os.path.join(tmp, "mtu"))
                        daemon.Felix(
                            felix, {"FELIX_ROUTEREFRESHINTERVAL": "3600"}, observe=recorder.observe
                        ).run(SqliteBackend(store, create=True), stop)

                try:
                    in_netns(f"/run/netns/{ns}", inside)
                except BaseException as exc:  # reported by the main thread
                    failure.append(exc)

            thread = threading.Thread(target=serve, name="felix", daemon=True)
            thread.start()
            result.first = recorder.done.get(timeout=120)
            if not result.first.ok:
                raise RuntimeError("Felix's first apply failed (see its log)")
            # The bench's endpoints have no interfaces in this namespace, so Felix retries
            # their routes on every apply for its grace period; on a real node the pod's
            # veth exists before its endpoint. The changes start once that is over.
            time.sleep(route_manager.WORKLOAD_ROUTE_GRACE)
            rng = random.Random(7)
            with nft_monitor(ns) as lines:
                for _ in range(CHANGES):
                    result.changes.append(one_change(client, kind, rng, recorder, lines))
                    time.sleep(rng.uniform(0.15, 0.3))  # changes stay apart: one per cycle
            set_name = next(
                change.set_name
                for c in result.changes
                for change in c.cycle.element_changes or []
                if change.set_name.startswith("cali40s-")
            )
            result.one_element = (one_element(ns, f"inet calico {set_name}"), one_element_small())
            if failure:
                raise failure[0]
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=30)
            recorder.uninstall()
            writer.close()
    return result


def one_change(
    client: ResourceClient,
    kind: Any,
    rng: random.Random,
    recorder: Recorder,
    lines: queue.Queue[tuple[float, str]],
) -> Change:
    i = rng.randrange(ENDPOINTS)
    ns = NAMESPACES[i % len(NAMESPACES)]
    current = client.get(kind, f"{NODE}-k8s-pod{i}-eth0", ns)
    assert current is not None
    old_role = int(current["metadata"]["labels"]["role"][1:])
    new_role = rng.choice([r for r in range(ROLES) if r != old_role])
    current["metadata"]["labels"]["role"] = f"r{new_role}"
    while not lines.empty():
        lines.get_nowait()
    started = now()
    client.update(kind, current)  # what `calicoctl label` does: read, change, update
    committed = now()
    cycle = recorder.done.get(timeout=30)
    while not cycle.sent:  # a cycle that sent nothing (a write's echo): the next one
        cycle = recorder.done.get(timeout=30)
    generation = None
    deadline = now() + 10
    while generation is None and now() < deadline:
        stamp, text = lines.get(timeout=max(0.01, deadline - now()))
        if stamp > committed and text.startswith("# new generation"):
            generation = stamp
    if generation is None:
        raise RuntimeError("no nft transaction seen after the label change")
    script_lines = [line for line in cycle.script.splitlines() if line]
    script_elements = sum(" element " in line for line in script_lines)
    return Change(
        write=committed - started,
        e2e=generation - committed,
        e2e_nft_return=cycle.nft_done - committed,
        wait=cycle.started - committed,
        cycle=cycle,
        elements=script_elements + len(cycle.element_changes or []),
        other_lines=len(script_lines) - script_elements,
    )


# --- part 3: iperf3 in a lab -----------------------------------------------------------------


@dataclass
class Wire:
    none: list[float] = field(default_factory=list)
    with_policy: list[float] = field(default_factory=list)
    apply_seconds: list[float] = field(default_factory=list)  # calicoctl apply returns
    programmed_seconds: list[float] = field(default_factory=list)  # apply start -> both kernels
    server_ingress: int = 0  # policies on the path
    client_egress: int = 0
    chains: int = 0


def lab_policies() -> list[dict[str, Any]]:
    """The 500 policies (namespaced ones partly in `default`, where the pods are) and last,
    an allow for iperf3 between the two pods."""
    docs = policy_docs(("default", "ns1", "ns2", "ns3", "ns4"))
    docs.append(
        {
            "apiVersion": API,
            "kind": "NetworkPolicy",
            "metadata": {"name": "bench-iperf", "namespace": "default"},
            "spec": {
                "order": 5000,
                "selector": "bench == 'iperf'",
                "types": ["Ingress", "Egress"],
                "ingress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "source": {"selector": "bench == 'iperf'"},
                        "destination": {"ports": [5201]},
                    }
                ],
                "egress": [
                    {
                        "action": "Allow",
                        "protocol": "TCP",
                        "destination": {"selector": "bench == 'iperf'", "ports": [5201]},
                    }
                ],
            },
        }
    )
    return docs


def calico_chains(ns: str) -> str:
    """Every chain name in the inet family of `ns` (cheap: no rules are listed)."""
    return sh("ip", "netns", "exec", ns, "nft", "list", "chains", "inet", check=False)


def wait_for(check: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = now() + seconds
    while now() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")


def endpoint_jumps(ns: str, ip: str, direction: str) -> int:
    route = json.loads(sh("ip", "netns", "exec", ns, "ip", "-j", "route", "show", f"{ip}/32"))
    chain = nft.endpoint_chain(route[0]["dev"], direction)
    text = sh("ip", "netns", "exec", ns, "nft", "list", "chain", "inet", "calico", chain)
    marker = "jump filter-cali-pi-" if direction == "ingress" else "jump filter-cali-po-"
    return text.count(marker)


def wire() -> Wire:
    from pycalico.lab.state import LabState

    result = Wire()
    name = f"pb{uuid.uuid4().hex[:5]}"
    node1, node2 = f"{name}-node1", f"{name}-node2"
    docs = lab_policies()
    text = yaml.safe_dump_all([tier_doc(), *docs], sort_keys=False)
    remove = yaml.safe_dump_all(docs, sort_keys=False)  # the Tier stays: empty, it does nothing
    labels = "app=app0,tier=backend,version=v0,bench=iperf"
    try:
        sh(LAB, "up", "--name", name, "--nodes", "2")
        sh(
            LAB,
            "pod",
            "add",
            "server",
            "--node",
            "node2",
            "--labels",
            labels + ",role=r0",
            "--name",
            name,
        )
        sh(
            LAB,
            "pod",
            "add",
            "client",
            "--node",
            "node1",
            "--labels",
            labels + ",role=r1",
            "--name",
            name,
        )
        pods = LabState.load(name).pods
        server, client = pods["default/server"], pods["default/client"]

        def programmed() -> bool:
            return all("bench-iperf" in calico_chains(ns) for ns in (node1, node2))

        for round_ in range(ROUNDS):
            result.none.append(iperf(server.netns, client.netns, server.ip, SECONDS))
            started = now()
            sh(
                LAB,
                "exec",
                "node1",
                "--name",
                name,
                "--",
                "calicoctl",
                "apply",
                "-f",
                "-",
                stdin=text,
            )
            result.apply_seconds.append(now() - started)
            wait_for(programmed, 180, "the policies in both nodes' kernels")
            result.programmed_seconds.append(now() - started)
            if round_ == 0:
                result.server_ingress = endpoint_jumps(node2, server.ip, "ingress")
                result.client_egress = endpoint_jumps(node1, client.ip, "egress")
                result.chains = calico_chains(node1).count("chain ")
            result.with_policy.append(iperf(server.netns, client.netns, server.ip, SECONDS))
            sh(
                LAB,
                "exec",
                "node1",
                "--name",
                name,
                "--",
                "calicoctl",
                "delete",
                "-f",
                "-",
                stdin=remove,
            )
            wait_for(
                lambda: not any("bench-iperf" in calico_chains(ns) for ns in (node1, node2)),
                180,
                "the policies to leave the kernels",
            )
    finally:
        down(name)
    return result


# --- report ----------------------------------------------------------------------------------


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def table(rows: list[tuple[str, str, str]]) -> None:
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    for label, value, target in rows:
        print(f"  {label.ljust(w0)}  {value.rjust(w1)}  {target}".rstrip())


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def kernel_write(c: Cycle) -> float:
    """The policy apply less its diffing: the netlink batch, or `nft -f` of the script."""
    computed = sum(c.phases.get(k, 0.0) for k in ("diff", "script", "elements"))
    return c.phases.get("policy apply", 0.0) - computed


def phase_rows(cycles: list[Cycle], wait: list[float] | None) -> list[tuple[str, str, str]]:
    def med(key: str) -> float:
        return statistics.median(c.phases.get(key, 0.0) for c in cycles)

    snap, lists, pinputs = med("snapshot"), med("datastore list"), med("policy inputs")
    plists = med("policy inputs list")
    drv, routes = med("driver"), med("routes")
    calc_, render, script, diff = med("calc"), med("render"), med("script"), med("diff")
    elements, papply = med("elements"), med("policy apply")
    kernel = statistics.median(kernel_write(c) for c in cycles)
    total = statistics.median(c.elapsed for c in cycles)
    rows = []
    if wait is not None:
        rows.append(
            (
                f"watch wake-up (inotify; polls at most every {SQLITE_POLL * 1000:.0f} ms)",
                ms(statistics.median(wait)),
                "before the cycle",
            )
        )
    rows += [
        ("snapshot read (from Felix's datastore mirror)", ms(snap), ""),
        ("  of which listing + decoding (memoised per version)", ms(lists), ""),
        ("  of which policy model (policy_inputs.read less its lists)", ms(pinputs - plists), ""),
        (
            "rest of Driver.apply (devices and routes when their inputs changed, files)",
            ms(drv - calc_ - render - papply),
            "",
        ),
        ("  of which RouteManager.apply", ms(routes), ""),
        ("calc (calc.calculate)", ms(calc_), ""),
        ("render (nft.render)", ms(render), ""),
        (
            "diff (element_changes, else diff_script) / full_script",
            ms(elements + diff + script),
            "",
        ),
        ("kernel write: netlink batch, or nft -f of the script (the floor)", ms(kernel), ""),
        ("whole cycle (daemon's measure)", ms(total), ""),
    ]
    return rows


def hep_verdict(hosts_: Hosts, inc: Incremental) -> str:
    """The issue's sentence, with the figures and whether both targets are met."""
    assert hosts_.inc is not None
    ref, hep = statistics.median(hosts_.reference_cpu), statistics.median(hosts_.with_hep_cpu)
    overhead = (hep - ref) / ref
    p99 = pct([c.e2e for c in hosts_.inc.changes], 0.99) * 1000
    p99_ref = pct([c.e2e for c in inc.changes], 0.99) * 1000
    ok = overhead <= TARGET_HEP_OVERHEAD and p99 <= TARGET_INCR_P99_MS
    return (
        f"a host endpoint with {HEP_POLICIES} policies adds {overhead * 100:+.1f}% to "
        f"bench-policy's full load (CPU, median of {len(hosts_.reference)}: {hep:.2f} s vs "
        f"{ref:.2f} s) "
        f"and keeps the label-change p99 "
        f"at {p99:.0f} ms ({p99_ref:.0f} ms without) (targets <= 5%, <= 50 ms: {verdict(ok)})"
    )


def report_hosts(hosts_: Hosts, inc: Incremental) -> None:
    assert hosts_.inc is not None
    s = hosts_.sizes
    print()
    print(f"== 4. host protection: a HostEndpoint on eth0 and {HEP_POLICIES} policies on it ==")
    print(
        f"  ruleset with it: {s['chains']} chains, {s['rules']} rules, {s['sets']} sets with "
        f"{s['set elements']} elements"
    )
    changes, ref_changes = hosts_.inc.changes, inc.changes
    med_ref, med_hep = statistics.median(hosts_.reference), statistics.median(hosts_.with_hep)
    cpu_ref = statistics.median(hosts_.reference_cpu)
    cpu_hep = statistics.median(hosts_.with_hep_cpu)
    e2e, ref_e2e = [c.e2e for c in changes], [c.e2e for c in ref_changes]
    # Each round's two loads ran back to back: their ratio leaves out the machine's load
    # changing between rounds.
    paired = [h / r for r, h in zip(hosts_.reference_cpu, hosts_.with_hep_cpu, strict=True)]
    table(
        [
            (
                "full load wall, per round",
                " ".join(f"{v:.2f}" for v in hosts_.reference)
                + "  /  "
                + " ".join(f"{v:.2f}" for v in hosts_.with_hep)
                + " s",
                "",
            ),
            (
                "full load CPU, per round",
                " ".join(f"{v:.2f}" for v in hosts_.reference_cpu)
                + "  /  "
                + " ".join(f"{v:.2f}" for v in hosts_.with_hep_cpu)
                + " s",
                "",
            ),
            (
                "load average (1 min) after each round",
                " ".join(f"{v:.1f}" for v in hosts_.loads),
                "",
            ),
            (
                "full load CPU, median without / with",
                f"{cpu_ref:.2f} / {cpu_hep:.2f} s",
                f"{(cpu_hep / cpu_ref - 1) * 100:+.1f}%, "
                f"target <= {TARGET_HEP_OVERHEAD * 100:.0f}%",
            ),
            (
                "full load CPU, best round without / with",
                f"{min(hosts_.reference_cpu):.2f} / {min(hosts_.with_hep_cpu):.2f} s",
                f"{(min(hosts_.with_hep_cpu) / min(hosts_.reference_cpu) - 1) * 100:+.1f}%",
            ),
            (
                "full load CPU, median of each round's with / without",
                f"{statistics.median(paired):.3f}",
                f"{(statistics.median(paired) - 1) * 100:+.1f}%",
            ),
            (
                "full load wall, best round without / with",
                f"{min(hosts_.reference):.2f} / {min(hosts_.with_hep):.2f} s",
                f"{(min(hosts_.with_hep) / min(hosts_.reference) - 1) * 100:+.1f}%",
            ),
            (
                "full load wall, median without / with",
                f"{med_ref:.2f} / {med_hep:.2f} s",
                f"{(med_hep / med_ref - 1) * 100:+.1f}%",
            ),
            (
                "label change p50/p99/max without it (part 2)",
                f"{pct(ref_e2e, 0.5) * 1000:.0f}/{pct(ref_e2e, 0.99) * 1000:.0f}/"
                f"{max(ref_e2e) * 1000:.0f} ms",
                "",
            ),
            (
                "label change p50/p99/max with it",
                f"{pct(e2e, 0.5) * 1000:.0f}/{pct(e2e, 0.99) * 1000:.0f}/{max(e2e) * 1000:.0f} ms",
                f"target p99 <= {TARGET_INCR_P99_MS:.0f} ms",
            ),
        ]
    )
    if hosts_.inc.first is not None:
        print(f"  Felix's first apply from cold with it: {ms(hosts_.inc.first.elapsed)}")
    by_netlink = sum(c.cycle.element_changes is not None for c in changes)
    print(
        f"  label changes with it: {by_netlink} of {len(changes)} as a netlink element batch; "
        "where the time goes (median over the changes):"
    )
    table(phase_rows([c.cycle for c in changes], [c.wait for c in changes]))


def report_counters(
    counted: Cold, plain: Cold, counted_floor: list[float], plain_floor: list[float]
) -> None:
    """Part 1's full load with the per-rule counters calico-node renders, and without; the
    floors measured in turns."""
    print()
    print("== 1b. per-rule counters (Calico #6998): part 1's full load with and without ==")

    def total(cold: Cold) -> float:
        return cold.read + cold.calc + cold.render + cold.script + cold.apply

    rows = []
    for label, cold, floor in (
        ("with counters", counted, counted_floor),
        ("without", plain, plain_floor),
    ):
        rows += [
            (f"{label}: total (read + calc + render + script + apply)", ms(total(cold)), ""),
            (
                f"{label}: nft -f from a file, in turns (floor: best / median of 5)",
                f"{ms(min(floor))} / {ms(statistics.median(floor))}",
                "",
            ),
            (f"{label}: script", f"{cold.sizes['script kB']} kB", ""),
        ]
    reads = sorted(counted.counter_reads)
    rows.append(
        (
            f"one scrape's reading of the counters ({counted.counted_rules} rules, a "
            "netlink dump per policy and profile chain), median of 5",
            ms(reads[len(reads) // 2]),
            "",
        )
    )
    table(rows)


def report(cold: Cold, inc: Incremental, wire_: Wire | None) -> None:
    readme: list[str] = []
    print()
    print("== 1. cold full: 1000 endpoints x 500 policies on one node ==")
    s = cold.sizes
    print(
        f"  ruleset: {s['chains']} chains, {s['rules']} rules, {s['sets']} sets with "
        f"{s['set elements']} elements, {s['maps']} maps with {s['map elements']} elements; "
        f"script {s['script lines']} lines, {s['script kB']} kB"
    )
    print(
        f"  policies applying per endpoint (mean): {cold.selected[0]:.1f} ingress, "
        f"{cold.selected[1]:.1f} egress"
    )
    compute = cold.calc + cold.render + cold.script
    full = cold.read + compute + cold.apply
    floor = min(cold.floor)
    table(
        [
            ("datastore read + model (policy_inputs.read)", ms(cold.read), ""),
            ("calc", ms(cold.calc), ""),
            ("render", ms(cold.render), ""),
            ("script (full_script)", ms(cold.script), ""),
            ("nft -f of the script, fresh netns (apply)", ms(cold.apply), ""),
            (
                "total: read + calc + render + script + apply",
                ms(full),
                f"target <= {TARGET_FULL_S:.0f} s: {verdict(full <= TARGET_FULL_S)}",
            ),
            (
                "nft -f of the same script from a file (floor, best of 3)",
                ms(floor),
                "pure nft time",
            ),
        ]
    )
    print()
    print(f"  datastore load as calicoctl apply would write it: {inc.load_seconds:.1f} s")
    if inc.first is not None:
        print(f"  Felix's first apply from cold (same store, node netns): {ms(inc.first.elapsed)}")
        table(phase_rows([inc.first], None))
    print()
    changes = inc.changes
    e2e = [c.e2e for c in changes]
    p50, p99, mx = pct(e2e, 0.5), pct(e2e, 0.99), max(e2e)
    back = [c.e2e_nft_return for c in changes]
    nft_floor = [kernel_write(c.cycle) for c in changes]
    by_netlink = sum(c.cycle.element_changes is not None for c in changes)
    print(f"== 2. incremental through Felix: {len(changes)} pod label changes ==")
    print(
        "  a WEP's `role` label (only rule selectors use it) changes with "
        "ResourceClient.update; clock from the commit to `nft monitor` reporting the "
        "transaction's end in the node netns"
    )
    print(
        f"  changes sent: {by_netlink} of {len(changes)} as a netlink element batch, the rest "
        f"by nft -f; {statistics.median(c.elements for c in changes):.0f} element messages or "
        f"lines (median), other nft lines: {sum(c.other_lines for c in changes)} in all"
    )
    table(
        [
            ("datastore write (update)", ms(statistics.median(c.write for c in changes)), "p50"),
            (
                "label change -> nft change in kernel, p50/p99/max",
                f"{p50 * 1000:.0f}/{p99 * 1000:.0f}/{mx * 1000:.0f} ms",
                f"target p99 <= {TARGET_INCR_P99_MS:.0f} ms: "
                f"{verdict(p99 * 1000 <= TARGET_INCR_P99_MS)}",
            ),
            (
                "same, to Felix's kernel write returning, p50/p99",
                f"{pct(back, 0.5) * 1000:.0f}/{pct(back, 0.99) * 1000:.0f} ms",
                "cross-check",
            ),
            (
                "kernel write of the diff alone (floor), p50/p99",
                f"{pct(nft_floor, 0.5) * 1000:.1f}/{pct(nft_floor, 0.99) * 1000:.1f} ms",
                "netlink batch",
            ),
            (
                "nft: one element in and out, this table / a one-set table",
                f"{ms(inc.one_element[0])} / {ms(inc.one_element[1])}",
                "median of 5, via ip netns exec",
            ),
        ]
    )
    print("  where the time goes (median over the changes):")
    table(phase_rows([c.cycle for c in changes], [c.wait for c in changes]))
    readme += [
        f"cold full, 1000 endpoints x 500 policies ({s['chains']} chains, {s['rules']} rules, "
        f"{s['sets']} sets / {s['set elements']} elements): read {ms(cold.read)} + calc "
        f"{ms(cold.calc)} + render {ms(cold.render)} + script {ms(cold.script)} + nft -f "
        f"{ms(cold.apply)} = {full:.2f} s (target <= 2 s: {verdict(full <= TARGET_FULL_S)}); "
        f"nft -f alone (floor) {ms(floor)}; Felix's first apply from cold "
        f"{inc.first.elapsed if inc.first else 0.0:.2f} s",
        f"pod label change -> nft set elements in the kernel through Felix, p50/p99/max of "
        f"{len(changes)}: {p50 * 1000:.0f}/{p99 * 1000:.0f}/{mx * 1000:.0f} ms (target p99 "
        f"<= 50 ms: {verdict(p99 * 1000 <= TARGET_INCR_P99_MS)}); kernel write of the diff alone "
        f"(floor, netlink) p50 {pct(nft_floor, 0.5) * 1000:.1f} ms; nft -f of one element in "
        f"and out of this table {ms(inc.one_element[0])}",
    ]
    if wire_ is not None:
        none, pol = statistics.median(wire_.none), statistics.median(wire_.with_policy)
        ratio = pol / none
        print()
        print("== 3. iperf3 pod -> pod across 2 lab nodes (VXLAN, one TCP stream) ==")
        print(
            f"  policies on the path: {wire_.server_ingress} on the server's ingress, "
            f"{wire_.client_egress} on the client's egress; node1 table {wire_.chains} chains"
        )
        table(
            [
                ("no policy, per round", " ".join(f"{v:.2f}" for v in wire_.none) + " Gbit/s", ""),
                (
                    "500 policies, per round",
                    " ".join(f"{v:.2f}" for v in wire_.with_policy) + " Gbit/s",
                    "",
                ),
                (
                    "ratio of medians",
                    f"{ratio:.2f}",
                    f"target >= {TARGET_IPERF_RATIO}: {verdict(ratio >= TARGET_IPERF_RATIO)}",
                ),
                (
                    "calicoctl apply -f (500 policies) returns, per round",
                    " ".join(f"{v:.1f}" for v in wire_.apply_seconds) + " s",
                    "",
                ),
                (
                    "apply start -> policies in both nodes' kernels",
                    " ".join(f"{v:.1f}" for v in wire_.programmed_seconds) + " s",
                    "",
                ),
            ]
        )
        readme.append(
            f"iperf3 pod -> pod (VXLAN), 500 policies ({wire_.server_ingress} on the server's "
            f"ingress path) vs none: {pol:.2f} / {none:.2f} Gbit/s = {ratio:.2f} (target "
            f">= 0.9: {verdict(ratio >= TARGET_IPERF_RATIO)})"
        )
    print()
    print("README rows:")
    print("```")
    for row in readme:
        print(row)
    print("```")


def main() -> int:
    if os.geteuid() != 0:
        sys.stderr.write("bench-policy needs root (it creates network namespaces)\n")
        return 1
    # A TERM cleans up as Ctrl-C does: through every finally block.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(
        f"bench/policy: {ENDPOINTS} endpoints, {NP_COUNT + GNP_COUNT + SEC_COUNT} policies "
        f"({NP_COUNT} NetworkPolicy, {GNP_COUNT} GlobalNetworkPolicy, {SEC_COUNT} in tier "
        f"security), {len(NAMESPACES)} namespaces, {CHANGES} label changes; pycalico "
        f"{version()}; {nft_version()}; load average {os.getloadavg()[0]:.2f} on "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="bench-policy-") as tmp:
        store = os.path.join(tmp, "store.db")
        backend = SqliteBackend(store, create=True)
        try:
            load_seconds = load_datastore(ResourceClient(backend))
        finally:
            backend.close()
        print("part 1: cold full ...", flush=True)
        cold = cold_full(store, tmp)
        print("part 1b: cold full without per-rule counters ...", flush=True)
        plain = cold_full(store, tmp, floors=0, counters=False)
        # The floors side by side, in turns, so that the machine's load weighs on both alike.
        floors: dict[str, list[float]] = {"full.nft": [], "full-plain.nft": []}
        for _ in range(5):
            for name, times in floors.items():
                with bare_namespace("pbf") as ns:
                    times.append(nft_file(ns, os.path.join(tmp, name)))
        counted_floor, plain_floor = floors["full.nft"], floors["full-plain.nft"]
        print("part 2: Felix, incremental ...", flush=True)
        inc = incremental(store, tmp, load_seconds)
        hosts_ = None
        if RUN_HEP:
            print("part 4: host protection, side by side ...", flush=True)
            hosts_ = hosts(store, tmp)
    wire_ = None
    if RUN_LAB:
        print("part 3: iperf3 in a lab ...", flush=True)
        wire_ = wire()
    report(cold, inc, wire_)
    report_counters(cold, plain, counted_floor, plain_floor)
    if hosts_ is not None:
        report_hosts(hosts_, inc)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")
    if hosts_ is not None:
        print(hep_verdict(hosts_, inc))
    return 0


def version() -> str:
    """The commit measured, and whether pycalico had uncommitted changes."""
    head = sh("git", "-C", REPO, "rev-parse", "--short", "HEAD", check=False).strip()
    dirty = sh("git", "-C", REPO, "status", "--porcelain", "--", "pycalico", check=False)
    return f"{head or 'unknown'}{' + uncommitted changes' if dirty.strip() else ''}"


def nft_version() -> str:
    return sh("nft", "--version", check=False).split("(")[0].strip()


if __name__ == "__main__":
    sys.exit(main())
