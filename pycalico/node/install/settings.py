"""The settings `calico-node install` takes (pure): calico-node's own environment variables.

A Calico user already knows them from calico.env and calico-node's reference (NODENAME,
IP, CALICO_NETWORKING_BACKEND, CALICO_IPV4POOL_CIDR, DATASTORE_TYPE, ETCD_ENDPOINTS, ...),
so install takes them as `NAME=VALUE` and writes them, checked, into /etc/calico/calico.env.
`CNI_MTU` is install-cni's setting and goes into the conflist instead. Every value is checked
here, before anything on the host changes, with the rule calico-node itself would apply at
start, so that a node installed today does not fail to start tomorrow on a typo.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from pycalico.api import checks
from pycalico.datastore.config import DEFAULT_SQLITE_PATH, SUPPORTED_TYPES
from pycalico.node.aggregator_config import AggregatorConfigError, aggregator_config
from pycalico.node.default_pool import PoolEnvError, default_ipv4_pool, default_ipv6_pool
from pycalico.node.install.errors import InstallError
from pycalico.node.main import BACKENDS

# calico.env's variables, in the order they are written (identity, addresses, routing,
# pools, datastore, the rest); FELIX_* follow, sorted.
CALICO_ENV_ORDER = (
    "NODENAME",
    "IP",
    "IP6",
    "IP_AUTODETECTION_METHOD",
    "IP6_AUTODETECTION_METHOD",
    "AS",
    "CALICO_ROUTER_ID",
    "CALICO_NETWORKING_BACKEND",
    "NO_DEFAULT_POOLS",
    "CALICO_IPV4POOL_CIDR",
    "CALICO_IPV4POOL_BLOCK_SIZE",
    "CALICO_IPV4POOL_IPIP",
    "CALICO_IPV4POOL_VXLAN",
    "CALICO_IPV4POOL_NAT_OUTGOING",
    "CALICO_IPV4POOL_NODE_SELECTOR",
    "CALICO_IPV4POOL_DISABLE_BGP_EXPORT",
    "CALICO_IPV6POOL_CIDR",
    "CALICO_IPV6POOL_BLOCK_SIZE",
    "CALICO_IPV6POOL_VXLAN",
    "CALICO_IPV6POOL_NAT_OUTGOING",
    "CALICO_IPV6POOL_NODE_SELECTOR",
    "DATASTORE_TYPE",
    "SQLITE_PATH",
    "ETCD_ENDPOINTS",
    "ETCD_CA_CERT_FILE",
    "ETCD_CERT_FILE",
    "ETCD_KEY_FILE",
    "CLUSTER_TYPE",
    "CALICO_STARTUP_LOGLEVEL",
    "CALICO_GOLDMANE_COLLECTOR",
    "CALICO_GOLDMANE_API",
)
FELIX_PREFIX = "FELIX_"
CNI_MTU = "CNI_MTU"
# Calico's manifest feeds install-cni `veth_mtu: "0"`: the plugin then takes the MTU Felix
# writes to /var/lib/calico/mtu, right for whichever encapsulation the pools use.
DEFAULT_CNI_MTU = 0
ETCD_FILES = ("ETCD_CA_CERT_FILE", "ETCD_CERT_FILE", "ETCD_KEY_FILE")
_NAME_RE = re.compile(r"[A-Z][A-Z0-9_]*")
_AUTODETECT_KINDS = ("interface", "skip-interface", "cidr", "can-reach")
_TRUE_FALSE = ("true", "false")


@dataclass(frozen=True)
class Settings:
    """Checked settings: calico.env's lines in order, and the conflist's MTU."""

    env: tuple[tuple[str, str], ...]
    cni_mtu: int = DEFAULT_CNI_MTU

    def get(self, name: str) -> str:
        return dict(self.env).get(name, "")

    @property
    def nodename(self) -> str:
        return self.get("NODENAME")

    @property
    def datastore_type(self) -> str:
        return self.get("DATASTORE_TYPE")

    def cert_files(self) -> list[str]:
        """The etcd client files named, which must exist on the host."""
        return [self.get(name) for name in ETCD_FILES if self.get(name)]


def known(name: str) -> bool:
    return name in CALICO_ENV_ORDER or name == CNI_MTU or name.startswith(FELIX_PREFIX)


def resolve(given: Sequence[tuple[str, str]], hostname: str) -> Settings:
    """Check `given` (NAME, VALUE pairs, as typed) and fill in the defaults.

    NODENAME defaults to `hostname` lower-cased, as calico-node's own fallback; it is written
    out because the conflist names the node too. An empty value means "not set".
    """
    values: dict[str, str] = {}
    for name, value in given:
        if not _NAME_RE.fullmatch(name) or not known(name):
            raise InstallError(
                f"{name} is not a setting calico-node install takes "
                "(see calico-node install --help)"
            )
        if name in values:
            raise InstallError(f"{name} is given twice")
        values[name] = value
    for name, value in values.items():
        _check_quotable(name, value)
    values = {name: value for name, value in values.items() if value}
    cni_mtu = _cni_mtu(values.pop(CNI_MTU, str(DEFAULT_CNI_MTU)))
    if "NODENAME" not in values:
        values["NODENAME"] = hostname.strip().lower()
        problem = checks.node_name(values["NODENAME"])
        if problem:
            raise InstallError(f"{problem} (this host's name; give NODENAME=...)")
    values.setdefault("IP", "autodetect")
    values.setdefault("CALICO_NETWORKING_BACKEND", "bird")
    values.setdefault("DATASTORE_TYPE", "sqlite")
    # Calico's manifests set it: pods reach their own host (kubelet probes, node-local
    # DNS) even once a host endpoint makes the host default-deny.
    values.setdefault("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT")
    if values["DATASTORE_TYPE"] == "sqlite":
        values.setdefault("SQLITE_PATH", DEFAULT_SQLITE_PATH)
    _check(values)
    ordered = [(name, values[name]) for name in CALICO_ENV_ORDER if name in values]
    ordered += sorted((n, v) for n, v in values.items() if n.startswith(FELIX_PREFIX))
    return Settings(tuple(ordered), cni_mtu)


def _check_quotable(name: str, value: str) -> None:
    # calico.env is read by systemd and, by habit, by `. /etc/calico/calico.env` in a shell:
    # values are written in single quotes, which neither of them lets a value escape.
    if "'" in value or any(ord(c) < 0x20 or c == "\x7f" for c in value):
        raise InstallError(
            f"{name}: a value with a single quote or a control character cannot go into calico.env"
        )


def _cni_mtu(value: str) -> int:
    if not value.isdigit() or not 0 <= int(value) <= 65535:
        raise InstallError(
            f"CNI_MTU={value} is not an MTU: give a number 0-65535 (0: the MTU Felix works out)"
        )
    return int(value)


def _check(values: Mapping[str, str]) -> None:
    problem = checks.node_name(values["NODENAME"])
    if problem:
        raise InstallError(problem)
    _check_address(values, "IP", 4)
    if "IP6" in values:
        _check_address(values, "IP6", 6)
    for name in ("IP_AUTODETECTION_METHOD", "IP6_AUTODETECTION_METHOD"):
        if name in values:
            _check_autodetection(name, values[name])
    if "AS" in values:
        try:
            checks.as_number(values["AS"])
        except ValueError as exc:
            raise InstallError(f"AS={values['AS']}: {exc}") from None
    router_id = values.get("CALICO_ROUTER_ID", "hash")
    if router_id != "hash" and checks.ipv4_address(router_id):
        raise InstallError(f"CALICO_ROUTER_ID={router_id} is not an IPv4 address or hash")
    backend = values["CALICO_NETWORKING_BACKEND"]
    if backend not in BACKENDS:
        raise InstallError(
            f"CALICO_NETWORKING_BACKEND={backend} is not one of {', '.join(BACKENDS)}"
        )
    for name in ("NO_DEFAULT_POOLS", "CALICO_IPV4POOL_DISABLE_BGP_EXPORT"):
        if name in values and values[name].lower() not in _TRUE_FALSE:
            raise InstallError(f"{name}={values[name]} is not true or false")
    _check_pools(values)
    _check_datastore(values)
    try:
        aggregator_config(values)
    except AggregatorConfigError as exc:
        raise InstallError(str(exc)) from None


def _check_address(values: Mapping[str, str], name: str, version: int) -> None:
    value = values[name]
    if value in ("autodetect", "none"):
        return
    try:
        given = ipaddress.ip_interface(value)
    except ValueError:
        given = None
    if given is None or given.version != version:
        raise InstallError(
            f"{name}={value} is not autodetect, none, or an IPv{version} address "
            "(optionally with /prefix)"
        )


def _check_autodetection(name: str, method: str) -> None:
    kind, sep, arg = method.partition("=")
    if method == "first-found":
        return
    if kind not in _AUTODETECT_KINDS or not sep or not arg:
        raise InstallError(
            f"{name}={method} is not first-found, interface=REGEX, skip-interface=REGEX, "
            "cidr=CIDR[,CIDR] or can-reach=DESTINATION"
        )
    if kind in ("interface", "skip-interface"):
        for pattern in arg.split(","):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise InstallError(f"{name}: invalid regex {pattern!r}: {exc}") from None
    if kind == "cidr":
        for cidr in arg.split(","):
            if checks.cidr(cidr):
                raise InstallError(f"{name}: {cidr} is not a CIDR")


def _check_pools(values: Mapping[str, str]) -> None:
    # Built and checked as calico-node's startup builds and checks its default pools, so
    # that a value it would refuse at start is refused now.
    from pycalico.api.resource import normalize

    try:
        v4 = default_ipv4_pool(values, [ipaddress.IPv4Interface("127.0.0.1/8")])
        v6 = default_ipv6_pool(values)
    except PoolEnvError as exc:
        raise InstallError(str(exc)) from None
    for family, pool in ((4, v4), (6, v6)):
        if pool is None:
            continue
        prefix = f"CALICO_IPV{family}POOL_"
        cidr = pool["spec"]["cidr"]
        if checks.cidr(cidr) or ipaddress.ip_network(cidr, strict=False).version != family:
            raise InstallError(f"{prefix}CIDR={cidr} is not an IPv{family} CIDR")
        try:
            normalize(pool)
        except ValueError as exc:
            raise InstallError(f"invalid default pool from {prefix}*: {exc}") from None


def _check_datastore(values: Mapping[str, str]) -> None:
    kind = values["DATASTORE_TYPE"]
    if kind not in SUPPORTED_TYPES:
        raise InstallError(
            f"DATASTORE_TYPE={kind} is not one of {', '.join(SUPPORTED_TYPES)} "
            "(pycalico has no Kubernetes datastore)"
        )
    etcd_names = ("ETCD_ENDPOINTS", *ETCD_FILES)
    if kind == "sqlite":
        stray = [name for name in etcd_names if name in values]
        if stray:
            raise InstallError(f"{stray[0]} is for DATASTORE_TYPE=etcdv3, not sqlite")
        if not values["SQLITE_PATH"].startswith("/"):
            raise InstallError(f"SQLITE_PATH={values['SQLITE_PATH']} is not an absolute path")
        return
    if "SQLITE_PATH" in values:
        raise InstallError("SQLITE_PATH is for DATASTORE_TYPE=sqlite, not etcdv3")
    endpoints = values.get("ETCD_ENDPOINTS", "")
    if not endpoints:
        raise InstallError("DATASTORE_TYPE=etcdv3 needs ETCD_ENDPOINTS")
    for url in endpoints.split(","):
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InstallError(
                f"ETCD_ENDPOINTS: {url} is not an http:// or https:// URL with a host"
            )
    for name in ETCD_FILES:
        if name in values and not values[name].startswith("/"):
            raise InstallError(f"{name}={values[name]} is not an absolute path")
    if ("ETCD_CERT_FILE" in values) != ("ETCD_KEY_FILE" in values):
        raise InstallError("ETCD_CERT_FILE and ETCD_KEY_FILE go together (a client certificate)")
