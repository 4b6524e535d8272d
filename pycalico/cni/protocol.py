"""The CNI protocol: environment, network configuration, errors and versioned results.

Standard library only: this is on every pod's start-up path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
LATEST = "1.1.0"
COMMANDS = ("ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC")

# Error codes from the CNI specification.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
PLUGIN_NOT_AVAILABLE = 50
GENERIC = 999

# The largest network configuration accepted, on stdin or through the agent alike: far
# above any real one (prevResult and runtimeConfig included), far below what would hurt.
MAX_CONFIG = 16 << 20

_NETWORK_NAME = re.compile(r"[a-zA-Z0-9_.\-]+")
_CONTAINER_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, version: str) -> str:
        body = {"cniVersion": version, "code": self.code, "msg": self.msg}
        if self.details:
            body["details"] = self.details
        return json.dumps(body)


@dataclass
class Request:
    command: str
    container_id: str
    netns: str
    ifname: str
    args: dict[str, str]
    path: str
    config: dict[str, Any]
    version: str
    raw_config: bytes = field(repr=False, default=b"")
    # The caller's whole environment: delegated plugins and datastore settings read it.
    env: Mapping[str, str] = field(repr=False, default_factory=dict)
    # How CNI_NETNS becomes a descriptor (the caller of it closes it): None, the path is
    # opened here (netns.open_netns); the node agent sets the descriptor the shim opened
    # where the runtime is, since the path may name nothing, or another file, where it runs.
    netns_opener: Callable[[str], int] | None = field(repr=False, default=None)

    @property
    def network_name(self) -> str:
        return str(self.config["name"])

    def valid_attachments(self) -> set[str]:
        """GC: container IDs the runtime still uses (`cni.dev/valid-attachments`)."""
        entries = self.config.get("cni.dev/valid-attachments") or []
        if not isinstance(entries, list):
            raise CniError(INVALID_CONFIG, "cni.dev/valid-attachments must be a list")
        return {
            str(e["containerID"]) for e in entries if isinstance(e, dict) and e.get("containerID")
        }


def version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in version.split("."))


def parse_cni_args(text: str) -> dict[str, str]:
    """`K1=V1;K2=V2` (the runtime's CNI_ARGS)."""
    out: dict[str, str] = {}
    for part in text.split(";"):
        if not part:
            continue
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise CniError(INVALID_ENV, f"invalid CNI_ARGS pair {part!r}: expected KEY=VALUE")
        out[key] = value
    return out


def check_config_size(size: int) -> None:
    if size > MAX_CONFIG:
        raise CniError(
            INVALID_CONFIG,
            f"the network configuration is larger than {MAX_CONFIG >> 20} MiB "
            f"({MAX_CONFIG} bytes), the most accepted",
        )


def read_request(env: Mapping[str, str], stdin: bytes) -> Request:
    """Validate the environment and the network configuration for one call."""
    check_config_size(len(stdin))
    command = env.get("CNI_COMMAND", "")
    if command not in COMMANDS:
        raise CniError(
            INVALID_ENV,
            f"unknown or missing CNI_COMMAND {command!r}"
            if command
            else "required env variable CNI_COMMAND is missing",
        )
    if command == "VERSION":
        # Runtimes probe with whatever they have (podman sends a bare {"cniVersion": ...}):
        # only the version matters here.
        return Request(command, "", "", "", {}, "", {}, _probe_version(stdin), stdin, env)
    config = _decode_config(stdin)
    version = _config_version(config)
    required = {"STATUS": [], "GC": ["CNI_PATH"]}.get(
        command, ["CNI_CONTAINERID", "CNI_IFNAME", "CNI_PATH"]
    )
    if command in ("ADD", "CHECK"):
        required.insert(1, "CNI_NETNS")
    missing = [name for name in required if not env.get(name)]
    if missing:
        raise CniError(INVALID_ENV, f"required env variables [{','.join(missing)}] missing")
    container_id = env.get("CNI_CONTAINERID", "")
    if container_id and not _CONTAINER_ID.fullmatch(container_id):
        raise CniError(INVALID_ENV, f"invalid CNI_CONTAINERID {container_id!r}")
    ifname = env.get("CNI_IFNAME", "")
    if ifname and (
        len(ifname) > 15
        or "/" in ifname
        or ifname in (".", "..")
        or any(c.isspace() for c in ifname)
    ):
        raise CniError(
            INVALID_ENV,
            f"invalid CNI_IFNAME {ifname!r}: interface names are "
            "at most 15 characters, without '/' or whitespace",
        )
    return Request(
        command,
        container_id,
        env.get("CNI_NETNS", ""),
        ifname,
        parse_cni_args(env.get("CNI_ARGS", "")),
        env.get("CNI_PATH", ""),
        config,
        version,
        stdin,
        env,
    )


def _probe_version(stdin: bytes) -> str:
    try:
        config = json.loads(stdin) if stdin.strip() else {}
    except (ValueError, RecursionError):
        config = {}
    version = config.get("cniVersion") if isinstance(config, dict) else None
    return version if isinstance(version, str) and version in SUPPORTED_VERSIONS else LATEST


def _decode_config(stdin: bytes) -> dict[str, Any]:
    try:
        config = json.loads(stdin)
    except ValueError as exc:  # UnicodeDecodeError included
        raise CniError(DECODE_FAILURE, "error parsing network configuration", str(exc)) from None
    except RecursionError:
        raise CniError(
            DECODE_FAILURE,
            "error parsing network configuration",
            "nested too deeply (arrays and objects within one another)",
        ) from None
    if not isinstance(config, dict):
        raise CniError(DECODE_FAILURE, "network configuration must be a JSON object")
    name = config.get("name")
    if not isinstance(name, str) or not _NETWORK_NAME.fullmatch(name):
        raise CniError(
            INVALID_CONFIG,
            "invalid characters detected in the given network name. "
            "Only letters a-z, numbers 0-9, and symbols _.- are supported",
        )
    return config


def _config_version(config: Mapping[str, Any]) -> str:
    version = config.get("cniVersion") or "0.2.0"
    if not isinstance(version, str) or version not in SUPPORTED_VERSIONS:
        raise CniError(
            INCOMPATIBLE_VERSION,
            f"unsupported CNI version {version}",
            f"supported versions: {', '.join(SUPPORTED_VERSIONS)}",
        )
    return version


def version_result(version: str) -> str:
    return json.dumps(
        {
            "cniVersion": version if version_tuple(version) >= (0, 3, 0) else LATEST,
            "supportedVersions": list(SUPPORTED_VERSIONS),
        }
    )


@dataclass
class IpConfig:
    address: str  # "10.244.1.5/26"
    gateway: str | None = None
    interface: int | None = None


@dataclass
class Result:
    """A result in the current (1.x) shape; `to_json` converts to the requested version."""

    ips: list[IpConfig] = field(default_factory=list)
    interfaces: list[dict[str, Any]] = field(default_factory=list)
    routes: list[dict[str, str]] = field(default_factory=list)
    dns: dict[str, Any] = field(default_factory=dict)

    def to_dict(self, version: str) -> dict[str, Any]:
        v = version_tuple(version)
        if v < (0, 3, 0):
            return self._legacy(version)
        ips = []
        for ip in self.ips:
            entry: dict[str, Any] = {}
            if v < (1, 0, 0):
                entry["version"] = "6" if ":" in ip.address else "4"
            if ip.interface is not None:
                entry["interface"] = ip.interface
            entry["address"] = ip.address
            if ip.gateway:
                entry["gateway"] = ip.gateway
            ips.append(entry)
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [
                {k: val for k, val in i.items() if k != "mtu" or v >= (1, 1, 0)}
                for i in self.interfaces
            ]
        out["ips"] = ips
        if self.routes:
            out["routes"] = self.routes
        out["dns"] = self.dns
        return out

    def _legacy(self, version: str) -> dict[str, Any]:
        out: dict[str, Any] = {"cniVersion": version}
        for ip in self.ips:
            family = "ip6" if ":" in ip.address else "ip4"
            if family in out:
                continue  # 0.2.0 carries one address per family
            entry: dict[str, Any] = {"ip": ip.address}
            if ip.gateway:
                entry["gateway"] = ip.gateway
            routes = [r for r in self.routes if (":" in r["dst"]) == (family == "ip6")]
            if routes:
                entry["routes"] = routes
            out[family] = entry
        out["dns"] = self.dns
        return out

    def to_json(self, version: str) -> str:
        return json.dumps(self.to_dict(version))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Result:
        """Read a result of any version (an IPAM plugin's, or a prevResult)."""
        if "ips" in data:
            ips = [
                IpConfig(i["address"], i.get("gateway"), i.get("interface"))
                for i in data.get("ips") or []
            ]
            routes = list(data.get("routes") or [])
        else:
            ips, routes = [], []
            for family in ("ip4", "ip6"):
                if family in data:
                    ips.append(IpConfig(data[family]["ip"], data[family].get("gateway")))
                    routes += data[family].get("routes") or []
        return cls(ips, list(data.get("interfaces") or []), routes, dict(data.get("dns") or {}))
