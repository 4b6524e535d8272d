"""Felix's settings, resolved once per apply in Calico's order (pure).

Each setting comes from the first source that sets it: the environment variable
`FELIX_<NAME>` (upper case), FelixConfiguration `node.<nodename>`, FelixConfiguration
`default`, then Felix's built-in default. Values are typed by the field's type in
FelixConfiguration's schema (api/felixconfig.py): the datastore holds them typed already
(durations as Go durations), the environment as text, read as Felix reads it (booleans as
true/false/1/0/yes/no, durations as seconds). An environment value that cannot be read is
passed over, with a warning naming it, as Felix passes over a bad config parameter.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pycalico.api.duration import parse_go_duration
from pycalico.api.felixconfig import FELIX_SPEC, Choice
from pycalico.api.schema import Bool, Custom, FieldError, Int, Type
from pycalico.felix.calc.mtu import DEFAULT_IFACE_PATTERN
from pycalico.felix.rules import failsafes
from pycalico.felix.rules.failsafes import DEFAULT_INBOUND, DEFAULT_OUTBOUND, ProtoPort

_TRUE = ("true", "1", "yes", "y", "t")
_FALSE = ("false", "0", "no", "n", "f")


def _setting(key: str, default: Any) -> Any:
    return dataclasses.field(default=default, metadata={"key": key})


@dataclass(frozen=True)
class Settings:
    """The settings Felix acts on, by their FelixConfiguration names."""

    default_endpoint_to_host_action: str = _setting("defaultEndpointToHostAction", "Drop")
    mtu_iface_pattern: str = _setting("mtuIfacePattern", DEFAULT_IFACE_PATTERN)
    vxlan_port: int = _setting("vxlanPort", 4789)
    vxlan_vni: int = _setting("vxlanVNI", 4096)
    vxlan_mtu: int = _setting("vxlanMTU", 0)  # 0: the host MTU less VXLAN's overhead
    ipip_mtu: int = _setting("ipipMTU", 0)
    ip_forwarding: str = _setting("ipForwarding", "Enabled")
    ipv6_support: bool = _setting("ipv6Support", True)
    # Seconds between full resyncs; 0 turns them off, as in Calico.
    route_refresh_interval: float = _setting("routeRefreshInterval", 90.0)
    log_severity_screen: str = _setting("logSeverityScreen", "Info")
    health_host: str = _setting("healthHost", "127.0.0.1")
    health_port: int = _setting("healthPort", 9099)
    prometheus_metrics_host: str = _setting("prometheusMetricsHost", "")  # "": health_host
    prometheus_metrics_port: int = _setting("prometheusMetricsPort", 9091)
    failsafe_inbound_host_ports: tuple[ProtoPort, ...] = _setting(
        "failsafeInboundHostPorts", DEFAULT_INBOUND
    )
    failsafe_outbound_host_ports: tuple[ProtoPort, ...] = _setting(
        "failsafeOutboundHostPorts", DEFAULT_OUTBOUND
    )
    # Flow logs (reference flows.md §4): collection, and its NFLOG rules, exist only with a
    # Goldmane server or the local reporter.
    flow_logs_flush_interval: float = _setting("flowLogsFlushInterval", 300.0)
    flow_logs_goldmane_server: str = _setting("flowLogsGoldmaneServer", "")
    flow_logs_policy_evaluation_mode: str = _setting("flowLogsPolicyEvaluationMode", "Continuous")
    flow_logs_local_reporter: str = _setting("flowLogsLocalReporter", "Disabled")
    flow_logs_collector_debug_trace: bool = _setting("flowLogsCollectorDebugTrace", False)
    # What could not be read, one line each (not a setting: never compared).
    warnings: tuple[str, ...] = dataclasses.field(default=(), compare=False)

    @property
    def resync_seconds(self) -> float:
        return self.route_refresh_interval or math.inf

    @property
    def flow_logs_enabled(self) -> bool:
        """Felix's FlowLogsEnabled(): a Goldmane server to send to, or the local reporter."""
        return bool(self.flow_logs_goldmane_server) or self.flow_logs_local_reporter == "Enabled"

    def value_of(self, key: str) -> Any:
        """A setting by its FelixConfiguration name."""
        return getattr(self, _ATTRIBUTES[key])


_ATTRIBUTES = {f.metadata["key"]: f.name for f in dataclasses.fields(Settings) if f.metadata}


def env_name(key: str) -> str:
    return "FELIX_" + key.upper()


_PORT_LISTS = ("failsafeInboundHostPorts", "failsafeOutboundHostPorts")


def _from_env(key: str, text: str) -> Any:
    """The environment's text as the field's typed value; ValueError if it cannot be."""
    if key in _PORT_LISTS:
        return failsafes.parse(text)
    field_type: Type = FELIX_SPEC.by_name[key].type
    value = text.strip()
    if isinstance(field_type, Bool):
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        raise ValueError("must be true or false")
    if isinstance(field_type, Int):
        try:
            number = int(value)
        except ValueError:
            raise ValueError("must be an integer") from None
        return _checked(field_type, key, number)
    if isinstance(field_type, Custom):  # a duration: seconds, as Felix's env reads it
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError("must be a number of seconds")
        return seconds
    if isinstance(field_type, Choice):
        for choice in field_type.values:
            if choice.lower() == value.lower():
                return choice
        raise ValueError("must be one of " + ", ".join(field_type.values))
    return _checked(field_type, key, value)


def _checked(field_type: Type, key: str, value: Any) -> Any:
    try:
        return field_type.normalize(value, key)
    except FieldError as exc:
        raise ValueError(exc.reason) from None


def _from_datastore(key: str, value: Any) -> Any:
    """A stored (already validated) value as the setting's type; None when unset."""
    if value is None or value == "":
        return None
    if key in _PORT_LISTS:
        return failsafes.from_datastore(value)  # [] is meaningful: no failsafes
    if isinstance(FELIX_SPEC.by_name[key].type, Custom):
        return parse_go_duration(value) / 1e9
    return value


def resolve(
    env: Mapping[str, str], global_spec: Mapping[str, Any], node_spec: Mapping[str, Any]
) -> Settings:
    """Every setting from its first source: env, node FelixConfiguration, global, default."""
    values: dict[str, Any] = {}
    warnings: list[str] = []
    for f in dataclasses.fields(Settings):
        key = f.metadata.get("key")
        if key is None:
            continue
        name = env_name(key)
        if name in env:
            try:
                values[f.name] = _from_env(key, env[name])
                continue
            except ValueError as exc:
                warnings.append(f"ignoring {name}={env[name]!r}: {exc}")
        for spec in (node_spec, global_spec):
            found = _from_datastore(key, spec.get(key))
            if found is not None:
                values[f.name] = found
                break
    return Settings(**values, warnings=tuple(warnings))
