"""Workload identity: orchestrator, WorkloadEndpoint name, host-side interface name."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_PREFIX = "cali"


@dataclass(frozen=True)
class Workload:
    node: str
    orchestrator: str  # "k8s" or "cni"
    namespace: str
    pod: str  # empty for the cni orchestrator
    container_id: str
    endpoint: str  # CNI_IFNAME
    interface_prefix: str = DEFAULT_PREFIX

    @property
    def wep_name(self) -> str:
        workload = self.pod if self.orchestrator == "k8s" else self.container_id
        return "-".join(
            s.replace("-", "--") for s in (self.node, self.orchestrator, workload, self.endpoint)
        )

    @property
    def host_ifname(self) -> str:
        if self.orchestrator == "k8s":
            digest = hashlib.sha1(f"{self.namespace}.{self.pod}".encode()).hexdigest()
            return self.interface_prefix + digest[:11]
        return self.interface_prefix + self.container_id[:11]


def workload(
    node: str, container_id: str, ifname: str, args: Mapping[str, str], env: Mapping[str, str]
) -> Workload:
    """Calico's orchestrator detection: both K8S_POD_* args mean Kubernetes.

    The host-side name prefix is the first of FELIX_INTERFACEPREFIX, as Felix sees it.
    """
    prefix = (env.get("FELIX_INTERFACEPREFIX") or DEFAULT_PREFIX).split(",")[0]
    if args.get("K8S_POD_NAMESPACE") and args.get("K8S_POD_NAME"):
        return Workload(
            node,
            "k8s",
            args["K8S_POD_NAMESPACE"],
            args["K8S_POD_NAME"],
            container_id,
            ifname,
            prefix,
        )
    return Workload(node, "cni", "default", "", container_id, ifname, prefix)
