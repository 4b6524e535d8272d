"""The JSON type of each network-configuration field the plugin reads (Calico's NetConf).

Checked once, when the configuration is decoded, so that a field of the wrong type is an
error naming the field and the type, as Go's decoder makes it in Calico's plugin, for every
command, and never reaches the code that reads it as a Python exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_JSON_TYPES: dict[type, str] = {
    str: "a string",
    bool: "true or false",
    int: "an integer",
    dict: "an object",
    list: "a list",
}

TOP_LEVEL: dict[str, type] = {
    "nodename": str,
    "nodename_file": str,
    "nodename_file_optional": bool,
    "hostname": str,
    "datastore_type": str,
    "sqlite_path": str,
    "etcd_endpoints": str,
    "etcd_key_file": str,
    "etcd_cert_file": str,
    "etcd_ca_cert_file": str,
    "ipam_lock_file": str,
    "log_level": str,
    "log_file_path": str,
    "log_file_max_size": int,
    "log_file_max_age": int,
    "log_file_max_count": int,
    "mtu": int,
    "ipam": dict,
    "policy": dict,
    "container_settings": dict,
    "args": dict,
}

IPAM: dict[str, type] = {
    "type": str,
    "assign_ipv4": str,
    "assign_ipv6": str,
    "ipv4_pools": list,
    "ipv6_pools": list,
}


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _fits(value: Any, expected: type) -> bool:
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, expected)


def _check(fields: Mapping[str, Any], types: Mapping[str, type], prefix: str) -> str | None:
    for name, expected in types.items():
        if name in fields and fields[name] is not None and not _fits(fields[name], expected):
            return f"{prefix}{name} must be {_JSON_TYPES[expected]}, not {_json_kind(fields[name])}"
    return None


def wrong_type(config: Mapping[str, Any]) -> str | None:
    """The first field of `config` whose JSON type is not the one Calico reads it as."""
    problem = _check(config, TOP_LEVEL, "")
    if problem is None and isinstance(config.get("ipam"), dict):
        problem = _check(config["ipam"], IPAM, "ipam.")
    return problem
