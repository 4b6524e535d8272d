"""What a lab created, recorded under /run/calico-lab/<name>/ so `down` can remove all of it.

Everything is written to the record before (or as) it is created, so even a lab whose
`up` failed half-way can be taken down completely.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from typing import Any

from pycalico.atomic_file import write_text

ROOT = os.environ.get("CALICO_LAB_ROOT", "/run/calico-lab")
DEFAULT_NAME = "lab"
NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyz0123456789-"
# The kernel's limit on a unix socket path (sun_path: 108 bytes with the closing NUL).
SOCKET_PATH_MAX = 107
# The rule as --help states it: for labs of up to 99 nodes, whose last node's name is no
# longer than node20's; a lab of 100 or more has one character less for its name.
RULE_NODES = 20
# One lock for every record in this process: pods added from several threads at once (as
# kubelets start a DaemonSet's pods) change `pods` and save the record.
STATE_LOCK = threading.RLock()


def max_name_length(root: str = ROOT, nodes: int = RULE_NODES) -> int:
    """How long the name of a lab of `nodes` nodes may be: its nodes' unix sockets live
    under `<root>/<name>/`."""
    return SOCKET_PATH_MAX - len(longest_socket(root, "x", nodes)) + 1


def longest_socket(root: str, name: str, nodes: int = RULE_NODES) -> str:
    """The longest unix socket a lab makes: the CNI agent's, of its last node."""
    last = f"node{max(nodes, RULE_NODES)}"
    return os.path.join(root, name, "nodes", last, "run", "cni-agent.sock")


def name_rule(root: str = ROOT, nodes: int = RULE_NODES) -> str:
    """The naming rule, as --help and errors state it."""
    longest = longest_socket(root, "NAME", nodes)
    fewer = "" if nodes >= 100 else "; one fewer for a lab of 100 nodes or more"
    return (
        f"1-{max_name_length(root, nodes)} characters of a-z, 0-9 and '-', not starting "
        f"with '-' (the longest unix socket of a lab, {longest}, must fit the kernel's "
        f"{SOCKET_PATH_MAX + 1}-byte socket path{fewer})"
    )


def check_name(name: str, root: str = ROOT, nodes: int = RULE_NODES) -> str:
    """`name` if a lab of `nodes` nodes may be called so, else a LabError saying the rule."""
    if (
        not name
        or name.startswith("-")
        or any(c not in NAME_CHARACTERS for c in name)
        or len(name) > max_name_length(root, nodes)
    ):
        raise LabError(f"bad lab name {name!r}: use {name_rule(root, nodes)}")
    return name


def name_for_up(
    given: str | None, env: dict[str, str] | None = None, nodes: int = RULE_NODES
) -> str:
    """The name `up` builds: --name, else $CALICO_LAB, else `lab`."""
    env = dict(os.environ) if env is None else env
    return check_name(given or env.get("CALICO_LAB") or DEFAULT_NAME, nodes=nodes)


class LabError(RuntimeError):
    pass


@dataclass
class Pod:
    name: str  # NS/POD
    node: str
    netns: str
    container_id: str
    ip: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    server_pid: int = 0
    ip6: str = ""  # dual-stack labs only
    serve: str = ""  # what its echo server answers (`80,53/udp`)
    ports: list[dict[str, Any]] = field(default_factory=list)  # its endpoint's named ports
    service_account: str = ""
    owner: str = ""  # NS/NAME of the Deployment or DaemonSet that made it
    created: float = 0.0  # time.time() when it was made (kubectl's AGE)


@dataclass
class Deployment:
    template_hash: str  # the pods' pod-template-hash: a new template means new pods
    replicas: int


@dataclass
class LabState:
    name: str
    nodes: list[str] = field(default_factory=list)
    topology: str = "flat"
    encap: str = "vxlan"
    cross_subnet: bool = False
    pool: str = ""
    datastore: str = "sqlite"
    ipv6: bool = False  # dual stack: node and pod IPv6 addresses, v6 routes by BGP
    route_reflectors: int = 0  # the last this many nodes reflect routes for the others
    namespaces: list[str] = field(default_factory=list)  # in creation order
    pids: dict[str, int] = field(default_factory=dict)  # what -> pid
    node_ips: dict[str, str] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)  # NS/NAME ->
    daemonsets: dict[str, Deployment] = field(default_factory=dict)  # NS/NAME ->
    created: float = 0.0  # time.time() when `up` began (the nodes' AGE)

    @property
    def dir(self) -> str:
        return os.path.join(ROOT, self.name)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def save(self) -> None:
        with STATE_LOCK:
            write_text(self.path("state.json"), json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, name: str) -> LabState:
        try:
            with open(os.path.join(ROOT, name, "state.json"), encoding="utf-8") as f:
                data: dict[str, Any] = json.load(f)
        except FileNotFoundError:
            raise LabError(f"no lab named {name!r} (see `calico-lab status`)") from None
        except (OSError, ValueError) as exc:
            raise LabError(f"cannot read the record of lab {name!r}: {exc}") from None
        data["pods"] = {k: Pod(**v) for k, v in data.get("pods", {}).items()}
        for kind in ("deployments", "daemonsets"):
            data[kind] = {k: Deployment(**v) for k, v in data.get(kind, {}).items()}
        return cls(**data)


def existing_labs() -> list[str]:
    try:
        return sorted(
            d for d in os.listdir(ROOT) if os.path.exists(os.path.join(ROOT, d, "state.json"))
        )
    except FileNotFoundError:
        return []


def choose(
    name: str | None, env: dict[str, str] | None = None, labs: list[str] | None = None
) -> str:
    """The lab a command means: --name, else $CALICO_LAB, else the only one that exists."""
    env = dict(os.environ) if env is None else env
    if name:
        return name
    if env.get("CALICO_LAB"):
        return env["CALICO_LAB"]
    labs = existing_labs() if labs is None else labs
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is running (start one with `calico-lab up`)")
    raise LabError(f"several labs exist ({', '.join(labs)}): say which with --name or CALICO_LAB")
