"""Whether calico-node runs the flow aggregator, and where it listens (pure).

`CALICO_GOLDMANE_COLLECTOR=HOST:PORT` makes calico-node start calico-goldmane (Goldmane's
and whisker-backend's role, pycalico/flows) as its child, its collector on that address
(what every Felix's `flowLogsGoldmaneServer` then names); `CALICO_GOLDMANE_API=HOST:PORT`
moves its HTTP API off the default 127.0.0.1:8080. HOST is an IP address, since the
aggregator binds it: 0.0.0.0 or [::] for every address. Unset (or empty), no aggregator.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

COLLECTOR_VAR = "CALICO_GOLDMANE_COLLECTOR"
API_VAR = "CALICO_GOLDMANE_API"
DEFAULT_API = "127.0.0.1:8080"  # whisker-backend's port, on loopback: the API has no auth


class AggregatorConfigError(ValueError):
    """A value calico-node refuses; the message is the one line to print."""


@dataclass(frozen=True)
class AggregatorConfig:
    collector: str  # HOST:PORT as calico-goldmane's --collector takes it
    api: str

    def args(self) -> list[str]:
        return ["--collector", self.collector, "--listen", self.api]


def _address(name: str, value: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    host, colon, port = value.rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    try:
        ip = ipaddress.ip_address(host[1:-1] if bracketed else host)
    except ValueError:
        ip = None
    if (
        not colon
        or ip is None
        or (ip.version == 6) != bracketed
        or not port.isdigit()
        or not 1 <= int(port) <= 65535
    ):
        raise AggregatorConfigError(
            f"{name}={value} is not HOST:PORT (an IP address, [IPv6] in brackets, "
            "and a port 1-65535)"
        )
    return ip, int(port)


def aggregator_config(env: Mapping[str, str]) -> AggregatorConfig | None:
    """The aggregator calico-node runs, or None; AggregatorConfigError for a bad value."""
    collector = env.get(COLLECTOR_VAR, "")
    api = env.get(API_VAR, "")
    if not collector:
        if api:
            raise AggregatorConfigError(
                f"{API_VAR} is set but {COLLECTOR_VAR} is not: the aggregator runs only "
                f"where {COLLECTOR_VAR} says"
            )
        return None
    api = api or DEFAULT_API
    (c_ip, c_port), (a_ip, a_port) = _address(COLLECTOR_VAR, collector), _address(API_VAR, api)
    if c_port == a_port and (c_ip == a_ip or c_ip.is_unspecified or a_ip.is_unspecified):
        raise AggregatorConfigError(
            f"{COLLECTOR_VAR}={collector} and {API_VAR}={api} cannot both listen"
        )
    return AggregatorConfig(collector, api)
