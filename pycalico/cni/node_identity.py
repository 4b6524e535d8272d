"""Which node a CNI call runs on, and with what MTU (Calico's rules)."""

from __future__ import annotations

import socket
from collections.abc import Mapping
from typing import Any

from pycalico.api import checks
from pycalico.cni.protocol import INVALID_CONFIG, CniError

DEFAULT_NODENAME_FILE = "/var/lib/calico/nodename"
MTU_FILE = "/var/lib/calico/mtu"


def node_name(config: Mapping[str, Any]) -> str:
    """This node's name, refused unless it is a valid Node name: every call takes it here
    before touching the datastore, so a bad name never reaches IPAM keys."""
    name = _configured_node_name(config)
    problem = checks.node_name(name)
    if problem:
        raise CniError(INVALID_CONFIG, problem)
    return name


def _configured_node_name(config: Mapping[str, Any]) -> str:
    """netconf `nodename` → the nodename file calico-node writes → `hostname` → OS hostname."""
    if config.get("nodename"):
        return str(config["nodename"])
    path = str(config.get("nodename_file") or DEFAULT_NODENAME_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except FileNotFoundError:
        if not config.get("nodename_file_optional"):
            raise CniError(
                INVALID_CONFIG,
                f"stat {path}: no such file or directory: check that "
                "the calico/node container is running and has mounted "
                "/var/lib/calico/",
            ) from None
    except OSError as exc:
        raise CniError(INVALID_CONFIG, f"cannot read {path}: {exc.strerror}") from None
    if config.get("hostname"):
        return str(config["hostname"])
    return socket.gethostname().strip().lower()


def mtu(config: Mapping[str, Any]) -> int:
    value = config.get("mtu", 0)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
        raise CniError(INVALID_CONFIG, f"invalid mtu {value!r}: must be an integer 0-65535")
    if value:
        return value
    try:
        with open(MTU_FILE, encoding="utf-8") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def datastore_env(config: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, str]:
    """The datastore settings a netconf carries, as the environment calicoctl would read."""
    mapping = {
        "datastore_type": "DATASTORE_TYPE",
        "sqlite_path": "SQLITE_PATH",
        "etcd_endpoints": "ETCD_ENDPOINTS",
        "etcd_key_file": "ETCD_KEY_FILE",
        "etcd_cert_file": "ETCD_CERT_FILE",
        "etcd_ca_cert_file": "ETCD_CA_CERT_FILE",
    }
    chosen = {var: str(config[key]) for key, var in mapping.items() if config.get(key)}
    if chosen.get("DATASTORE_TYPE") == "kubernetes":
        raise CniError(
            INVALID_CONFIG,
            "datastore_type kubernetes is not supported by pycalico; use sqlite or etcdv3",
        )
    return {**{k: v for k, v in env.items() if k in mapping.values()}, **chosen}
