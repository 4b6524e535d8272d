"""The datastore backends side by side: the same IPAM workload and calicoctl applies on SQLite
and on a real etcd, in one run.

  * IPAM: 2000 allocations from 4 concurrent "nodes" (4 processes, each with its own node
    name and its own client, each allocation one `Allocator.auto_assign` as a CNI ADD makes
    it), ops/s over the wall time and p50/p99 of the single allocations; then a check that
    every address was handed out once and the blocks and handles record exactly those.
  * calicoctl apply -f of 1000 IPPools and of 1000 GlobalNetworkSets (new, then replace).

etcd is one member on a loopback port with its data in the temp directory, started and
removed by tests/support/etcd_server.py (also if this script fails or is killed); SQLite is
a file in the same temp directory. Run: make bench-datastore
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pycalico.datastore.backend import Backend
from pycalico.datastore.config import DatastoreConfig, open_backend

# The repository root, for the tests' shared helpers (tests.support).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.support import etcd_server

VENV_BIN = os.path.dirname(sys.executable)
CALICOCTL = os.path.join(VENV_BIN, "calicoctl")
NODES = 4
ALLOCATIONS = 2000
RESOURCES = 1000
POOL = "10.128.0.0/16"  # 1024 blocks of 64: the 4 nodes need 8 each


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# --- IPAM -------------------------------------------------------------------------------


def _allocate(config: DatastoreConfig, node: str, count: int, start: Any, results: Any) -> None:
    """One node: `count` allocations in a row, each timed; (latencies, addresses) reported."""
    from pycalico.ipam.allocator import Allocator

    try:
        with open_backend(config) as backend:
            allocator = Allocator(backend)
            latencies: list[float] = []
            addresses: list[str] = []
            start.wait()
            for i in range(count):
                began = time.perf_counter()
                [got] = allocator.auto_assign(1, 4, f"bench.{node}.{i}", {"node": node}, node)
                latencies.append(time.perf_counter() - began)
                addresses.append(str(got.ip))
        results.put((node, latencies, addresses))
    except BaseException as exc:
        # Reported rather than lost with the process, so the run stops with the reason.
        results.put((node, None, f"{type(exc).__name__}: {exc}"))
        raise


def _apply_pool(backend: Backend) -> None:
    from pycalico.api.registry import resolve
    from pycalico.api.resource import normalize
    from pycalico.datastore.resources import ResourceClient

    pool = normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "IPPool",
            "metadata": {"name": "bench"},
            "spec": {"cidr": POOL},
        }
    )
    ResourceClient(backend).apply(resolve("IPPool"), pool)


def ipam_workload(config: DatastoreConfig) -> tuple[float, list[float], list[str]]:
    """(wall seconds, every allocation's latency, every address handed out)."""
    with open_backend(config, create=True) as backend:
        _apply_pool(backend)
    context = multiprocessing.get_context("fork")
    start = context.Event()
    results = context.Queue()
    workers = [
        context.Process(
            target=_allocate,
            args=(config, f"node{n}", ALLOCATIONS // NODES, start, results),
            daemon=True,
        )
        for n in range(NODES)
    ]
    try:
        for worker in workers:
            worker.start()
        began = time.perf_counter()
        start.set()
        reports = [results.get(timeout=600) for _ in workers]
        wall = time.perf_counter() - began
        for node, lat, detail in reports:
            if lat is None:
                raise RuntimeError(f"allocating on {node} failed: {detail}")
        for worker in workers:
            worker.join(30)
            if worker.exitcode != 0:
                raise RuntimeError(f"an allocating process failed (exit {worker.exitcode})")
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.kill()
                worker.join()
    latencies = [seconds for _, lat, _ in reports for seconds in lat]
    addresses = [address for _, _, got in reports for address in got]
    return wall, latencies, addresses


def check_ipam(config: DatastoreConfig, addresses: list[str]) -> str:
    """That every address was handed out once and IPAM records exactly those."""
    from pycalico.ipam import keys
    from pycalico.ipam.allocator import Allocator

    if len(set(addresses)) != len(addresses):
        raise AssertionError(f"{len(addresses) - len(set(addresses))} addresses handed out twice")
    with open_backend(config) as backend:
        recorded: dict[str, str] = {}
        for block in Allocator(backend).blocks():
            for ordinal in range(len(block.allocations)):
                attr = block.attributes_of(ordinal)
                if attr is not None:
                    recorded[str(block.address(ordinal))] = attr.handle_id or ""
        handles = backend.list(keys.HANDLE_PREFIX)[0]
    if sorted(recorded) != sorted(addresses):
        raise AssertionError("the blocks do not record exactly the addresses handed out")
    if len(set(recorded.values())) != len(addresses) or len(handles) != len(addresses):
        raise AssertionError("handles do not match the allocations one to one")
    pool = ipaddress.ip_network(POOL)
    if not all(ipaddress.ip_address(a) in pool for a in addresses):
        raise AssertionError("an address outside the pool was handed out")
    return f"{len(addresses)} distinct, all recorded in blocks, {len(handles)} handles"


# --- calicoctl --------------------------------------------------------------------------


def _pools_yaml(count: int) -> str:
    return "---\n".join(
        "apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        f"metadata:\n  name: pool-{i}\n"
        f"spec:\n  cidr: 10.{i // 256}.{i % 256}.0/24\n  natOutgoing: true\n"
        for i in range(count)
    )


def _netsets_yaml(count: int) -> str:
    return "---\n".join(
        "apiVersion: projectcalico.org/v3\nkind: GlobalNetworkSet\n"
        f"metadata:\n  name: set-{i}\n  labels:\n    role: r{i % 7}\n"
        f"spec:\n  nets:\n  - 198.51.100.{i % 256}/32\n  - 203.0.113.0/24\n"
        for i in range(count)
    )


def calicoctl_env(config: DatastoreConfig) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ETCD_", "DATASTORE_", "CALICO_", "SQLITE_"))
    }
    if config.datastore_type == "sqlite":
        return {**env, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": config.sqlite_path}
    return {**env, "DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": config.etcd_endpoints}


def timed_apply(path: str, env: dict[str, str]) -> float:
    began = time.perf_counter()
    subprocess.run(
        [CALICOCTL, "apply", "-f", path], env=env, check=True, capture_output=True, text=True
    )
    return time.perf_counter() - began


# --- the run ----------------------------------------------------------------------------


@contextmanager
def backends(tmp: str) -> Iterator[list[tuple[str, Callable[[str], DatastoreConfig]]]]:
    """(label, store name -> a fresh store's config) per backend; etcd runs meanwhile."""
    with etcd_server.etcd_server(base=tmp) as member:

        def sqlite(store: str) -> DatastoreConfig:
            return DatastoreConfig(sqlite_path=os.path.join(tmp, f"{store}.db"))

        def etcd(store: str) -> DatastoreConfig:
            # One etcd serves every store: a fresh one is the same etcd with every key deleted.
            everything = {"key": "AA==", "range_end": "AA=="}  # "\0" to "\0"
            etcd_server.gateway(member.client_url, "kv/deleterange", everything)
            return DatastoreConfig("etcdv3", etcd_endpoints=member.client_url)

        yield [("sqlite", sqlite), ("etcd (1 member)", etcd)]


def main() -> int:
    if os.path.exists("/etc/calico/calicoctl.cfg"):
        sys.stderr.write("/etc/calico/calicoctl.cfg would override the benchmark's datastores\n")
        return 1
    with tempfile.TemporaryDirectory(prefix="pycalico-dsbench-") as tmp, backends(tmp) as stores:
        ipam_rows = []
        for label, fresh in stores:
            config = fresh("ipam")
            wall, latencies, addresses = ipam_workload(config)
            consistent = check_ipam(config, addresses)
            ipam_rows.append(
                (
                    label,
                    f"{len(latencies) / wall:.0f}",
                    f"{pct(latencies, 0.50):.1f}",
                    f"{pct(latencies, 0.99):.1f}",
                    f"{wall:.2f}",
                    consistent,
                )
            )
        apply_rows: dict[str, list[str]] = {}
        inputs = (
            ("IPPool", _pools_yaml(RESOURCES)),
            ("GlobalNetworkSet", _netsets_yaml(RESOURCES)),
        )
        for _, fresh in stores:
            env = calicoctl_env(fresh("apply"))
            for kind, text in inputs:
                path = os.path.join(tmp, f"{kind}.yaml")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                for phase in ("new", "replace"):
                    row = f"calicoctl apply -f, {RESOURCES} {kind} ({phase})"
                    apply_rows.setdefault(row, []).append(f"{timed_apply(path, env):.2f} s")
    labels = [label for label, _ in stores]
    print(f"IPAM: {ALLOCATIONS} allocations from {NODES} concurrent nodes (processes)")
    header = ("backend", "ops/s", "p50 ms", "p99 ms", "wall s", "consistency check")
    table = [header, *ipam_rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(header) - 1)]
    for row in table:
        print("  ".join(c.ljust(w) for c, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1])
    print()
    first = max(len(r) for r in apply_rows)
    width = max(len(label) for label in labels)
    print(f"{'wall time'.ljust(first)}  " + "  ".join(label.ljust(width) for label in labels))
    for row, values in apply_rows.items():
        print(f"{row.ljust(first)}  " + "  ".join(v.ljust(width) for v in values).rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
