"""calico-node's command line (pure): what to do for the arguments it was given.

With no argument calico-node runs the whole node. `-h`/`--help` and `-v`/`--version` only
print and exit, as Calico's `-v` does; they must never start a node in whatever network
namespace they were typed in. Calico's calico-node is one binary with a flag per component
(`-felix`, `-startup`, ...), run one at a time by its container's init; pycalico's runs
them all in one process, so those flags are refused by name rather than taken for a
request to run everything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from pycalico import __version__

Action = Literal["run", "help", "version"]

HELP = ("-h", "-help", "--help")
VERSION = ("-v", "--version")
# Calico's flags for one component or check each (node/cmd/calico-node/main.go).
CALICO_ONLY = frozenset(
    {
        "felix",
        "bpf",
        "init",
        "best-effort",
        "startup",
        "shutdown",
        "monitor-addresses",
        "allocate-tunnel-addrs",
        "allocate-tunnel-addrs-run-once",
        "monitor-token",
        "node-services",
        "complete-startup",
        "felix-live",
        "bird-live",
        "bird6-live",
        "felix-ready",
        "bird-ready",
        "bird6-ready",
        "threshold-time",
        "status-reporter",
        "show-status",
        "flows",
        "confd",
        "confd-run-once",
        "confd-keep-stage-file",
        "confd-confdir",
        "hostpath-init",
    }
)

USAGE = """\
Usage: calico-node [-h | --help | -v | --version]

With no option, runs this node: startup (the Node and its address, ClusterInformation,
default pools), tunnel addresses, Felix, the CNI agent, /liveness and /readiness (port
9099), metrics (port 9091) and, with CALICO_NETWORKING_BACKEND=bird, confd and BIRD. Run it
in the node's network namespace. It is configured by environment, as Calico's calico-node:
NODENAME, IP, IP6, IP_AUTODETECTION_METHOD, AS, CALICO_NETWORKING_BACKEND (bird, vxlan or
none), NO_DEFAULT_POOLS, CALICO_IPV4POOL_*, CALICO_IPV6POOL_*, FELIX_*, DATASTORE_TYPE
(sqlite or etcdv3), SQLITE_PATH, ETCD_ENDPOINTS, CALICO_STATE_DIR, CALICO_RUN_DIR.

Options:
  -h, --help      print this help and exit
  -v, --version   print the version and exit
"""


class UsageError(ValueError):
    """Arguments calico-node does not take; the message is the one line to print."""


def parse(argv: Sequence[str]) -> Action:
    """`argv` without the program name."""
    if not argv:
        return "run"
    first = argv[0]
    if len(argv) > 1:
        raise UsageError(f"unexpected argument {argv[1]} after {first} (see calico-node --help)")
    if first in HELP:
        return "help"
    if first in VERSION:
        return "version"
    name = first.lstrip("-").split("=", 1)[0]
    if first.startswith("-") and name in CALICO_ONLY:
        raise UsageError(
            f"{first} is Calico's flag for one component; pycalico's calico-node runs every "
            "component in one process when given no option (see calico-node --help)"
        )
    if first.startswith("-"):
        raise UsageError(f"unknown option {first} (see calico-node --help)")
    raise UsageError(f"unexpected argument {first} (see calico-node --help)")


def version() -> str:
    return f"v{__version__}"
