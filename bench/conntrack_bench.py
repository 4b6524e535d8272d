"""Conntrack cleanup speed: the flows of one deleted pod address, IPv4 next to IPv6.

In a network namespace made for the run (removed again whatever happens), the conntrack
table is filled with BENCH_CONNTRACK_ENTRIES (20000) IPv4 entries and as many IPv6 ones:
200 other addresses' flows, plus FLOWS flows the pod address opened and FLOWS it answered.
Then, BENCH_ROUNDS (5) times, in an order rotated each round, one address's flows are
removed by:
  * ipv4: `conntrack.remove()` for the IPv4 address (the kernel filters the dump);
  * ipv6: `conntrack.remove()` for the IPv6 address (the tuple-only reader);
  * ipv6 full decode: the previous IPv6 path, as the reference: every entry decoded by
    pyroute2 and matched in Python, each match deleted through pyroute2;
  * conntrack -D: Debian's `conntrack -D -f ipv6 --orig-src` then `--reply-src`, as
    Calico's Felix runs it (skipped when the tool is not installed).
Each removal must delete exactly the 2 * FLOWS flows; they are put back before the next.
Medians and ranges are printed in milliseconds; the last line reads
`conntrack ipv6 removal vs ipv4 at 20000 entries: <ratio>`, the median IPv6 time over the
median IPv4 time (1.0 is the goal: IPv6 costs what IPv4 costs).
Needs root. Run: make bench-conntrack
"""

from __future__ import annotations

import errno
import ipaddress
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

# The repository root, for pycalico and the tests' shared helpers (tests.support).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pyroute2 import Conntrack, NetlinkError

from pycalico.felix.dataplane import conntrack
from pycalico.netns import in_netns
from tests.support.conntrack_entries import add_tcp_entry
from tests.support.node_namespace import bare_namespace

ENTRIES = int(os.environ.get("BENCH_CONNTRACK_ENTRIES", "20000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
FLOWS = 10  # flows the pod opened, and as many it answered
OTHERS = 200  # other addresses sharing the table
POD = {socket.AF_INET: "10.244.1.5", socket.AF_INET6: "fd00:244::5"}
PEER = {socket.AF_INET: "10.245.{}.{}", socket.AF_INET6: "fd00:245::{}:{}"}


def peer(family: int, n: int) -> str:
    return PEER[family].format(n // 250, n % 250 + 1)


def add(ct: Conntrack, family: int, src: str, dst: str, port: int) -> None:
    add_tcp_entry(ct, family, src, dst, port, timeout=600)


def add_pod_flows(family: int) -> None:
    with Conntrack(nfgen_family=family) as ct:
        for i in range(FLOWS):
            add(ct, family, POD[family], peer(family, i), 30000 + i)  # the pod opened it
            add(ct, family, peer(family, i), POD[family], 31000 + i)  # the pod answered it


def fill(family: int) -> None:
    with Conntrack(nfgen_family=family) as ct:
        for i in range(ENTRIES - 2 * FLOWS):
            add(ct, family, peer(family, i % OTHERS), peer(family, OTHERS + i % 7), 1024 + i)
    add_pod_flows(family)


def count(family: int) -> int:
    with Conntrack(nfgen_family=family) as ct:
        return sum(1 for _ in ct.dump_entries())


def full_decode_ipv6(address: str) -> int:
    """The previous IPv6 path: the whole table decoded by pyroute2, matched in Python."""
    removed = 0
    with Conntrack(nfgen_family=socket.AF_INET6) as ct:
        doomed = [
            entry
            for entry in ct.dump_entries()
            if address
            in (
                str(ipaddress.ip_address(entry.tuple_orig.saddr)),
                str(ipaddress.ip_address(entry.tuple_reply.saddr)),
            )
        ]
        for entry in doomed:
            try:
                ct.delete(entry)
                removed += 1
            except NetlinkError as exc:
                if exc.code != errno.ENOENT:
                    raise
    return removed


def conntrack_tool_ipv6(address: str) -> int:
    removed = 0
    for option in ("--orig-src", "--reply-src"):
        done = subprocess.run(
            ["conntrack", "-D", "-f", "ipv6", option, address],
            capture_output=True,
            text=True,
            check=False,
        )
        # "conntrack v1.4.7 (conntrack-tools): 10 flow entries have been deleted."
        removed += int(done.stderr.rsplit(":", 1)[1].split()[0])
    return removed


def main() -> None:
    paths: dict[str, tuple[int, Callable[[], int]]] = {
        "ipv4": (socket.AF_INET, lambda: conntrack.remove([POD[socket.AF_INET]])),
        "ipv6": (socket.AF_INET6, lambda: conntrack.remove([POD[socket.AF_INET6]])),
        "ipv6 full decode": (socket.AF_INET6, lambda: full_decode_ipv6(POD[socket.AF_INET6])),
    }
    if shutil.which("conntrack"):
        paths["conntrack -D"] = (socket.AF_INET6, lambda: conntrack_tool_ipv6(POD[socket.AF_INET6]))
    else:
        print("conntrack -D: skipped (Debian's conntrack is not installed)")
    times: dict[str, list[float]] = {name: [] for name in paths}
    with bare_namespace("ctbench") as ns:

        def run() -> None:
            started = time.monotonic()
            for family in (socket.AF_INET, socket.AF_INET6):
                fill(family)
            print(f"filled {2 * ENTRIES} entries in {time.monotonic() - started:.1f} s")
            names = list(paths)
            for round_ in range(ROUNDS):
                for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                    family, path = paths[name]
                    started = time.perf_counter()
                    removed = path()
                    times[name].append((time.perf_counter() - started) * 1000)
                    left = count(family)
                    if removed != 2 * FLOWS or left != ENTRIES - 2 * FLOWS:
                        raise SystemExit(f"{name}: removed {removed}, {left} entries left")
                    add_pod_flows(family)

        in_netns(f"/run/netns/{ns}", run)
    for name, ms in times.items():
        print(
            f"{name:>17}: median {statistics.median(ms):8.1f} ms"
            f"  (range {min(ms):.1f}-{max(ms):.1f}, {ROUNDS} rounds, {2 * FLOWS} flows deleted)"
        )
    ratio = statistics.median(times["ipv6"]) / statistics.median(times["ipv4"])
    print(f"conntrack ipv6 removal vs ipv4 at {ENTRIES} entries: {ratio:.2f}")


if __name__ == "__main__":
    main()
