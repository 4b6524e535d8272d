"""calico-node's command line (pure): what to do for the arguments it was given.

With no argument calico-node runs the whole node. `install` and `uninstall` put pycalico on
this host, or take it off, as Calico's install-cni and host docs lay Calico out (see
pycalico/node/install). `-h`/`--help` and `-v`/`--version` only
print and exit, as Calico's `-v` does; they must never start a node in whatever network
namespace they were typed in. Calico's calico-node is one binary with a flag per component
(`-felix`, `-startup`, ...), run one at a time by its container's init; pycalico's runs
them all in one process, so those flags are refused by name rather than taken for a
request to run everything.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pycalico import __version__
from pycalico.node.install.layout import DEFAULT_PREFIX

Action = Literal["run", "help", "version", "help-install", "help-uninstall"]
# The venv's path goes into the unit's ExecStart and the shims' interpreter line unquoted.
_PREFIX_RE = re.compile(r"/[A-Za-z0-9_.+/-]*")
_SETTING_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.DOTALL)


@dataclass(frozen=True)
class Install:
    """`calico-node install`: settings are the NAME=VALUE pairs as typed (checked by
    pycalico.node.install.settings, which fills in the defaults)."""

    wheelhouse: str
    root: str = "/"
    prefix: str = DEFAULT_PREFIX
    settings: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Uninstall:
    root: str = "/"


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
       calico-node install --wheelhouse DIR [--prefix DIR] [--root DIR] [NAME=VALUE ...]
       calico-node uninstall [--root DIR]

With no option, runs this node: startup (the Node and its address, ClusterInformation,
default pools), tunnel addresses, Felix, the CNI agent, /liveness and /readiness (port
9099), metrics (port 9091) and, with CALICO_NETWORKING_BACKEND=bird, confd and BIRD. Run it
in the node's network namespace. It is configured by environment, as Calico's calico-node:
NODENAME, IP, IP6, IP_AUTODETECTION_METHOD, AS, CALICO_NETWORKING_BACKEND (bird, vxlan or
none), NO_DEFAULT_POOLS, CALICO_IPV4POOL_*, CALICO_IPV6POOL_*, FELIX_*, DATASTORE_TYPE
(sqlite or etcdv3), SQLITE_PATH, ETCD_ENDPOINTS, CALICO_STATE_DIR, CALICO_RUN_DIR.

With CALICO_GOLDMANE_COLLECTOR=HOST:PORT it also runs the flow aggregator (calico-goldmane,
Goldmane's and whisker-backend's role) as its child, started again if it dies: Felix's
flowLogsGoldmaneServer names the collector address; CALICO_GOLDMANE_API=HOST:PORT is its
HTTP API (GET /flows; default 127.0.0.1:8080). HOST is an IP address (0.0.0.0: all).

`calico-node install --help` and `calico-node uninstall --help` describe those.

Options:
  -h, --help      print this help and exit
  -v, --version   print the version and exit
"""

INSTALL_USAGE = """\
Usage: calico-node install --wheelhouse DIR [--prefix DIR] [--root DIR] [NAME=VALUE ...]

Installs pycalico on this host as Calico's install-cni and host docs lay Calico out: a venv
(--prefix, default /opt/pycalico) with pycalico from the wheels in --wheelhouse (`make
wheelhouse` builds it; no network is used), calicoctl and calico-node linked into
/usr/local/bin, the CNI shim as /opt/cni/bin/calico and calico-ipam (with links to the
host's portmap, bandwidth, host-local and loopback from /usr/lib/cni where /opt/cni/bin
has none), /etc/cni/net.d/10-calico.conflist, /etc/calico/calicoctl.cfg,
/etc/calico/calico.env, /etc/systemd/system/calico-node.service and, where NetworkManager
is installed, /etc/NetworkManager/conf.d/calico.conf. What it wrote is recorded in
/etc/calico/.pycalico-install; running it again with the same settings changes nothing,
with other settings it updates. It does not start the node: systemctl enable --now
calico-node. Files it did not write are never overwritten.

Settings are calico-node's environment variables, written to calico.env:
  NODENAME                    node name (default: this host's name, lower-cased)
  IP, IP6                     autodetect, none, or an address[/prefix] (IP default autodetect)
  IP_AUTODETECTION_METHOD, IP6_AUTODETECTION_METHOD, AS, CALICO_ROUTER_ID
  CALICO_NETWORKING_BACKEND   bird (default), vxlan or none (policy only)
  NO_DEFAULT_POOLS, CALICO_IPV4POOL_{CIDR,BLOCK_SIZE,IPIP,VXLAN,NAT_OUTGOING,NODE_SELECTOR,
  DISABLE_BGP_EXPORT}, CALICO_IPV6POOL_{CIDR,BLOCK_SIZE,VXLAN,NAT_OUTGOING,NODE_SELECTOR}
  DATASTORE_TYPE              sqlite (default, SQLITE_PATH /var/lib/calico/pycalico.db) or
                              etcdv3 (ETCD_ENDPOINTS, ETCD_CA_CERT_FILE, ETCD_CERT_FILE,
                              ETCD_KEY_FILE)
  CLUSTER_TYPE, CALICO_STARTUP_LOGLEVEL, FELIX_*
  CALICO_GOLDMANE_COLLECTOR   HOST:PORT: run the flow aggregator there (see --help)
  CALICO_GOLDMANE_API         HOST:PORT: its HTTP API (default 127.0.0.1:8080)
and install-cni's CNI_MTU (the conflist's mtu; default 0: the MTU Felix works out).

Options:
  --wheelhouse DIR  the wheels to install: pycalico's, its dependencies' and pip's
  --prefix DIR      the venv (default /opt/pycalico)
  --root DIR        install under DIR instead of / (a throwaway root; systemctl is not used)
  -h, --help        print this help and exit
"""

UNINSTALL_USAGE = """\
Usage: calico-node uninstall [--root DIR]

Stops calico-node (systemctl disable --now, when systemd runs this host; then any
calico-node or BIRD its pid files in /var/run/calico name), removes what calico-node left in
the kernel of the current network namespace (cali* links, vxlan.calico, vxlan-v6.calico,
wireguard.cali, wg-v6.cali, tunl0's address, routes of protocol 80 or bird or through those
devices, the nftables table inet calico), then exactly the files and directories calico-node
install recorded, and the venv. The datastore is left alone: `calicoctl delete node NAME`,
run afterwards on another node, releases the node's addresses and blocks.

Options:
  --root DIR   the root install used (its files; the kernel cleaned is still this one's)
  -h, --help   print this help and exit
"""


class UsageError(ValueError):
    """Arguments calico-node does not take; the message is the one line to print."""


def parse(argv: Sequence[str]) -> Action | Install | Uninstall:
    """`argv` without the program name."""
    if not argv:
        return "run"
    if argv[0] == "install":
        return _install(argv[1:])
    if argv[0] == "uninstall":
        return _uninstall(argv[1:])
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


def _options(
    command: str, argv: Sequence[str], names: tuple[str, ...]
) -> tuple[dict[str, str], list[str]] | None:
    """`--name DIR` / `--name=DIR` options, and the other arguments; None for --help."""
    options: dict[str, str] = {}
    rest: list[str] = []
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in HELP:
            return None
        if not arg.startswith("-"):
            rest.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name not in names:
            raise UsageError(f"unknown option {arg} (see calico-node {command} --help)")
        if not eq:
            if not args:
                raise UsageError(f"{name} needs a value (see calico-node {command} --help)")
            value = args.pop(0)
        if name in options:
            raise UsageError(f"{name} is given twice")
        if not value:
            raise UsageError(f"{name} needs a value (see calico-node {command} --help)")
        options[name] = value
    return options, rest


def _install(argv: Sequence[str]) -> Install | Action:
    parsed = _options("install", argv, ("--wheelhouse", "--prefix", "--root"))
    if parsed is None:
        return "help-install"
    options, rest = parsed
    settings = []
    for arg in rest:
        match = _SETTING_RE.fullmatch(arg)
        if match is None:
            raise UsageError(
                f"unexpected argument {arg}: settings are NAME=VALUE "
                "(see calico-node install --help)"
            )
        settings.append((match[1], match[2]))
    if "--wheelhouse" not in options:
        raise UsageError(
            "install needs --wheelhouse DIR (make wheelhouse builds one in build/wheelhouse)"
        )
    prefix = options.get("--prefix", DEFAULT_PREFIX)
    if not _PREFIX_RE.fullmatch(prefix) or os.path.normpath(prefix) != prefix or prefix == "/":
        raise UsageError(
            f"--prefix {prefix} is not an absolute, normalised path of letters, digits and "
            "_.+-/ (other than /)"
        )
    return Install(
        wheelhouse=options["--wheelhouse"],
        root=options.get("--root", "/"),
        prefix=prefix,
        settings=tuple(settings),
    )


def _uninstall(argv: Sequence[str]) -> Uninstall | Action:
    parsed = _options("uninstall", argv, ("--root",))
    if parsed is None:
        return "help-uninstall"
    options, rest = parsed
    if rest:
        raise UsageError(f"unexpected argument {rest[0]} (see calico-node uninstall --help)")
    return Uninstall(root=options.get("--root", "/"))
