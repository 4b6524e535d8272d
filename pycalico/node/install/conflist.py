"""`/etc/cni/net.d/10-calico.conflist` (pure): Calico's default conflist, for pycalico.

As install-cni renders its template: network `k8s-pod-network`, cniVersion 1.0.0 (Calico's
current template), the `calico` plugin with `calico-ipam`, then `portmap` with SNAT. No
`bandwidth` plugin: Calico 3.30 dropped it from the chain (Felix does QoS). The datastore keys
are the ones install-cni fills in for etcd (`etcd_endpoints`, `etcd_*_file`), or pycalico's
`sqlite_path`; the Kubernetes keys (`kubernetes.kubeconfig`, `policy: k8s`) are left out,
since pycalico has no Kubernetes API to read pods from: workloads get the network's Profile,
as Calico's plugin gives any workload without Kubernetes policy. `log_level` (`info`) and
`log_file_path` (/var/log/calico/cni/cni.log) are Calico's: the plugin logs each ADD and DEL
there (pycalico.cni.call_log); the rotation keys are left out, since that file is not
rotated.

MTU: install-cni replaces `__CNI_MTU__` with `CNI_MTU` (1500 if unset); Calico's manifest
sets it from `veth_mtu: "0"`, which tells the plugin to use the MTU Felix writes to
/var/lib/calico/mtu. Install passes CNI_MTU the same way, 0 unless given.
"""

from __future__ import annotations

import json
from typing import Any

from pycalico.node.install.settings import Settings

NETWORK = "k8s-pod-network"
LOG_FILE = "/var/log/calico/cni/cni.log"
CNI_VERSION = "1.0.0"
# calico.env name -> the netconf key install-cni writes it to (etcd) or pycalico reads.
_DATASTORE_KEYS = (
    ("DATASTORE_TYPE", "datastore_type"),
    ("SQLITE_PATH", "sqlite_path"),
    ("ETCD_ENDPOINTS", "etcd_endpoints"),
    ("ETCD_KEY_FILE", "etcd_key_file"),
    ("ETCD_CERT_FILE", "etcd_cert_file"),
    ("ETCD_CA_CERT_FILE", "etcd_ca_cert_file"),
)


def document(settings: Settings) -> dict[str, Any]:
    calico: dict[str, Any] = {"type": "calico", "log_level": "info", "log_file_path": LOG_FILE}
    calico.update({key: settings.get(var) for var, key in _DATASTORE_KEYS if settings.get(var)})
    calico["nodename"] = settings.nodename
    calico["mtu"] = settings.cni_mtu
    ipam: dict[str, str] = {"type": "calico-ipam"}
    # Pods get IPv6 where the node makes an IPv6 pool; Calico's dual-stack docs edit the
    # template's ipam section the same way.
    if settings.get("CALICO_IPV6POOL_CIDR") not in ("", "none"):
        ipam.update({"assign_ipv4": "true", "assign_ipv6": "true"})
    calico["ipam"] = ipam
    return {
        "name": NETWORK,
        "cniVersion": CNI_VERSION,
        "plugins": [
            calico,
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
        ],
    }


def render(settings: Settings) -> str:
    return json.dumps(document(settings), indent=2) + "\n"
