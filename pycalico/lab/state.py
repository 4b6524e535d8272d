"""What a lab created, recorded under /run/calico-lab/<name>/ so `down` can remove all of it.

Everything is written to the record before (or as) it is created, so even a lab whose
`up` failed half-way can be taken down completely.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from pycalico.atomic_file import write_text

ROOT = os.environ.get("CALICO_LAB_ROOT", "/run/calico-lab")


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
    owner: str = ""  # NS/NAME of the Deployment that made it


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
    namespaces: list[str] = field(default_factory=list)  # in creation order
    pids: dict[str, int] = field(default_factory=dict)  # what -> pid
    node_ips: dict[str, str] = field(default_factory=dict)
    pods: dict[str, Pod] = field(default_factory=dict)
    deployments: dict[str, Deployment] = field(default_factory=dict)  # NS/NAME ->

    @property
    def dir(self) -> str:
        return os.path.join(ROOT, self.name)

    def path(self, *parts: str) -> str:
        return os.path.join(self.dir, *parts)

    def save(self) -> None:
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
        data["deployments"] = {k: Deployment(**v) for k, v in data.get("deployments", {}).items()}
        return cls(**data)


def existing_labs() -> list[str]:
    try:
        return sorted(
            d for d in os.listdir(ROOT) if os.path.exists(os.path.join(ROOT, d, "state.json"))
        )
    except FileNotFoundError:
        return []


def choose(name: str | None) -> str:
    """The lab a command means: --name, else $CALICO_LAB, else the only one that exists."""
    if name:
        return name
    if os.environ.get("CALICO_LAB"):
        return os.environ["CALICO_LAB"]
    labs = existing_labs()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is running (start one with `calico-lab up`)")
    raise LabError(f"several labs exist ({', '.join(labs)}): say which with --name or CALICO_LAB")
