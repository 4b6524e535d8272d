"""FelixConfiguration: Felix's settings, cluster-wide (`default`) or for one node (`node.<name>`).

FELIX_SPEC transcribes FelixConfigurationSpec from projectcalico/calico
api/pkg/apis/projectcalico/v3/felixconfig.go (v3.30 line) field by field, in Go struct
order, with the checks of libcalico-go's validator (validate tags, validateFelixConfigSpec and
the struct validators of the nested types). Felix applies its own defaults at runtime, so
nearly every field is a Go pointer that stays unset; only the values libcalico-go's client
fills on write (clientv3/felixconfig.go setDefaults) are defaulted here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from pycalico.api import checks
from pycalico.api.duration import go_duration
from pycalico.api.kind import Kind, singleton_name
from pycalico.api.schema import (
    Bool,
    Check,
    Custom,
    Enum,
    Field,
    FieldError,
    GoTag,
    Int,
    ListOf,
    MapOf,
    Str,
    Struct,
    Type,
    ValidationErrors,
    WholeList,
    go_struct,
    go_tag,
    type_name,
)

# --- Reusable pieces (also used by kubecontrollers.py) ------------------------------------


@dataclass(frozen=True)
class Choice(Enum):
    """A string enum validated `omitempty,oneof=...` in Go: "" means unset, not invalid.

    `ignore_case` is for fields libcalico-go leaves unchecked and Felix parses
    case-insensitively (only the CRD's `(?i)` pattern constrains them); the value is kept as
    written, as Calico stores it.
    """

    ignore_case: bool = False

    def normalize(self, value: Any, path: str) -> Any:
        if value == "" or (
            self.ignore_case
            and isinstance(value, str)
            and value.lower() in (v.lower() for v in self.values)
        ):
            return value
        return super().normalize(value, path)


def unless_empty(check: Check) -> Check:
    """Go's `validate:"omitempty,..."`: an empty string is unset, so it skips the check."""

    def checked(value: Any) -> str | None:
        return None if value == "" else check(value)

    return checked


def _ptr(name: str, type_: Type, default: Any = None) -> Field:
    # A Go pointer: present means set, so false, 0, "" and [] are stored, not dropped.
    return Field(name, type_, default=default, omitempty=False)


# --- Field checks ---------------------------------------------------------------------------


def _host_chars(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and all(
        c.isascii() and (c.isalnum() or c in ":._+-") for c in value
    )


def _prometheus_host(value: str) -> str | None:
    return None if _host_chars(value, 64) else GoTag("prometheusHost")


def _iface_filter(value: str) -> str | None:
    if _host_chars(value, 15):
        return None
    return "interface filter must be 1-15 characters of [a-zA-Z0-9:._+-]"


def _iface_filters(values: list[str]) -> str | None:
    # Calico's tag checks the list as one value.
    return GoTag("ifaceFilterSlice") if any(_iface_filter(v) for v in values) else None


def _bpf_log_filters(filters: dict[str, str]) -> str | None:
    bad = any(checks.interface_name(k) for k in filters)
    return GoTag("bpfLogFilters") if bad else None


def _interface(value: str) -> str | None:
    return None if value == "*" or checks.interface_name(value) is None else GoTag("interface")


def _is_word(char: str) -> bool:
    return char.isascii() and (char.isalnum() or char == "_")


def _key_value_list(value: str) -> str | None:
    """libcalico-go's keyValueList: comma-separated `key=value`, keys of word characters."""
    if not value.strip():
        return None
    for item in value.split(","):
        if not item:
            continue
        key, eq, rest = item.lstrip(" \t\n\f\r").partition("=")
        if not eq or not key or not all(_is_word(c) for c in key) or "\n" in rest:
            return GoTag("keyValueList")
    return None


def _openstack_region(value: str) -> str | None:
    # The region becomes part of a namespace name, `openstack-region-<region>`.
    if len(value) > 63 - len("openstack-region-"):
        return "is too long"
    if checks.dns1123_label(value):
        return "must be a valid DNS label"
    return None


def _ipv4(value: str) -> str | None:
    return None if checks.ipv4_address(value) is None else "is not a valid IPv4 address"


def _ipv6(value: str) -> str | None:
    return None if checks.ipv6_address(value) is None else "is not a valid IPv6 address"


# validateFelixConfigSpec names the field by its Go name and shows the one bad entry.
_EXTERNAL_NODES = "ExternalNodesCIDRList"


def _external_node_cidr(value: Any) -> str:
    if not isinstance(value, str) or checks.ip_or_cidr(value):
        raise FieldError("", value, "has invalid CIDR(s)", _EXTERNAL_NODES)
    if ipaddress.ip_interface(value).version != 4:
        raise FieldError("", value, "has invalid IPv6 CIDR", _EXTERNAL_NODES)
    return value


def _external_nodes(value: Any) -> list[str]:
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not a {type_name(value)}")
    errors = []
    for i, cidr in enumerate(value):
        try:
            _external_node_cidr(cidr)
        except FieldError as exc:
            exc.path = f"spec.externalNodesList[{i}]"
            errors.append(exc)
    if errors:
        raise ValidationErrors(errors)
    return value


def _failsafe_protocol(value: str) -> str | None:
    # Felix reads the protocol case-insensitively; an unset protocol means tcp.
    if value.lower() in ("tcp", "udp", "sctp"):
        return None
    return "protocol must be 'TCP' or 'UDP' or 'SCTP'."


def _health_override_name_ok(value: Any) -> bool:
    return bool(value) and all(c.isascii() and (c.isalnum() or c in "_ -") for c in value)


def _check_health_override(value: dict[str, Any], path: str) -> list[FieldError]:
    """validateHealthTimeoutOverride: both errors show the whole override, as Go prints it
    (a missing name is Go's empty string, which the pattern refuses)."""
    name = value.get("name", "")
    shown = go_struct(name, value["timeout"])
    errors = []
    if not _health_override_name_ok(name):
        errors.append(
            FieldError(
                f"{path}.name",
                shown,
                "name should match regex ^[a-zA-Z0-9_ -]+$",
                "HealthTimeoutOverride.Name",
            )
        )
    if value["timeout"].startswith("-"):
        errors.append(
            FieldError(
                f"{path}.timeout",
                shown,
                "Timeout should not be negative",
                "HealthTimeoutOverride.Timeout",
            )
        )
    return errors


def _conntrack_timeout(value: str) -> str | None:
    if value == "Auto" or checks.duration(value) is None:
        return None
    return "must be a duration (e.g. 30s) or Auto"


# numorstring.Port's struct validator (validatePort) names every port error `Port`.
_PORT_FIELD = "Port"
_PORT_NUMBER_RANGE = "port range invalid, port number must be between 1 and 65535"


def _starts_at_zero(value: Any) -> bool:
    """0, "0" or "0:N": what Calico decodes and then refuses as a port (not as a range)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value == 0
    low, _, high = value.partition(":") if isinstance(value, str) else ("", "", "")
    return low.isdigit() and int(low) == 0 and (not high or (high.isdigit() and int(high) <= 65535))


def _port_range(value: Any) -> int | str:
    """numorstring.Port without names, stored as Go marshals it: `N`, or `min:max`."""
    if _starts_at_zero(value):
        raise FieldError("", 0, _PORT_NUMBER_RANGE, _PORT_FIELD)
    port = checks.port_range_or_number(value)
    low, _, high = str(port).partition(":")
    first, last = int(low), int(high or low)
    return first if first == last else f"{first}:{last}"


_NODE_PORTS = "KubeNodePortRanges"


def _is_port_name(item: Any) -> bool:
    return isinstance(item, str) and item != "" and ":" not in item and not item.isdigit()


def _node_port_ranges(value: Any) -> list[Any]:
    """kubeNodePortRanges in Calico's order: each port's own check (validatePort), then
    validateFelixConfigSpec's, whose errors show the whole list. iptables' multiport match
    takes 15 ports and a range uses two of them, hence at most 7."""
    if not isinstance(value, list):
        raise ValueError(f"must be a list, not a {type_name(value)}")
    errors, ports = [], []
    for i, item in enumerate(value):
        if _is_port_name(item):
            continue
        try:
            ports.append(_port_range(item))
        except FieldError as exc:
            exc.path = f"spec.kubeNodePortRanges[{i}]"
            errors.append(exc)
        except ValueError as exc:
            errors.append(FieldError(f"spec.kubeNodePortRanges[{i}]", item, str(exc)))
    if len(value) > 7:
        errors.append(
            FieldError(
                "spec.kubeNodePortRanges",
                value,
                "node port ranges list is too long (max 7)",
                _NODE_PORTS,
            )
        )
    errors.extend(
        FieldError(
            f"spec.kubeNodePortRanges[{i}]",
            value,
            "node port ranges should not contain named ports",
            _NODE_PORTS,
        )
        for i, item in enumerate(value)
        if _is_port_name(item)
    )
    if errors:
        raise ValidationErrors(errors)
    return ports


def _table_range(value: dict[str, int]) -> str:
    return go_struct(value["min"], value["max"])


def _too_many_tables(ranges: list[dict[str, int]]) -> bool:
    return sum(r["max"] - r["min"] + 1 for r in ranges) > 0xFFFF


def _check_table_id_range(value: dict[str, int], path: str) -> list[FieldError]:
    # Calico's RouteTableIDRange validator names its field as the older RouteTableRange's.
    shown, field = _table_range(value), "RouteTableRange"
    errors = []
    if value["min"] > value["max"]:
        errors.append(FieldError(path, shown, "min value cannot be greater than max value", field))
    if value["min"] <= 0:
        errors.append(FieldError(path, shown, "cannot target indices < 1", field))
    if value["max"] > 0xFFFFFFFF:
        errors.append(FieldError(path, shown, "max index too high", field))
    return errors


def _check_table_range(value: dict[str, int], path: str) -> list[FieldError]:
    if 1 <= value["min"] <= value["max"] <= 250:
        return []
    return [
        FieldError(
            path,
            _table_range(value),
            "must be a range of route table indices within 1..250",
            "RouteTableRange",
        )
    ]


def _check_spec(spec: dict[str, Any], path: str) -> list[FieldError]:
    errors = []
    if "routeTableRange" in spec and "routeTableRanges" in spec:
        errors.append(
            FieldError(
                f"{path}.routeTableRange",
                # Both are pointers in Go, and %v prints a pointer to a struct or a slice
                # as `&` and the value.
                "&" + _table_range(spec["routeTableRange"]),
                "cannot be set when `RouteTableRanges` is also set",
            )
        )
    ranges = spec.get("routeTableRanges")
    if ranges is not None and _too_many_tables(ranges):
        errors.append(
            FieldError(
                f"{path}.routeTableRanges",
                "&[" + " ".join(_table_range(r) for r in ranges) + "]",
                "targets too many tables",
            )
        )
    return errors


# --- Types ----------------------------------------------------------------------------------

_BOOL = Bool()
_INT = Int()
_PORT = Int(0, 65535)
_MTU = Int(0, 65535)
_UINT32 = Int(0, 0xFFFFFFFF)
_GO_RUNTIME = Int(minimum=-1, min_tag="gte")  # -1: leave the Go runtime's own setting.
_WIREGUARD_PORT = Int(1, 65535, "gt", "lte")
_DURATION = Custom(go_duration)
_TEXT = Str()
_PATTERN = Str()  # A Go regexp; Python's syntax differs, so only the type is checked.
# Pycalico's own checks on fields Calico leaves to its CRD schema keep pycalico's reasons;
# where libcalico-go checks a field with a struct tag, the tag is given so that the error
# reads as Calico's.
_ENABLED_DISABLED = Choice(("Enabled", "Disabled"))
_ONEOF_ENABLED_DISABLED = Choice(("Enabled", "Disabled"), tag="oneof")
_ACCEPT_RETURN = Choice(("Accept", "Return"), tag="acceptReturn")
_DROP_REJECT = Choice(("Drop", "Reject"), tag="dropReject")
_LOG_LEVEL = Choice(("Trace", "Debug", "Info", "Warning", "Error", "Fatal"), tag="logLevel")
_PORT_RANGE = Custom(_port_range)


def _cidrs(values: list[str]) -> str | None:
    # Calico's `cidrs` tag checks the list as one value.
    return GoTag("cidrs") if any(checks.ip_or_cidr(v) for v in values) else None


_CIDRS = ListOf(Str(), (_cidrs,))


def _checked(*rules: Check) -> Str:
    return Str(tuple(unless_empty(rule) for rule in rules))


def _proto_port_protocol(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not a {type_name(value)}")
    reason = _failsafe_protocol(value) if value else None
    if reason:
        raise FieldError("", value, reason, "ProtoPort.Protocol")
    return value


_PROTO_PORT = Struct(
    (
        Field("protocol", Custom(_proto_port_protocol)),
        Field("port", _PORT, required=True, omitempty=False, zero=0),
        Field("net", _checked(checks.ip_or_cidr)),
    )
)

_HEALTH_TIMEOUT_OVERRIDE = Struct(
    (
        Field("name", Str()),
        Field("timeout", _DURATION, required=True, zero="0s"),
    ),
    checks=(_check_health_override,),
)

# An unset bound is Go's 0, which the range checks then refuse in Calico's words.
_ROUTE_TABLE_ID_RANGE = Struct(
    (
        Field("min", _INT, default=0, omitempty=False),
        Field("max", _INT, default=0, omitempty=False),
    ),
    checks=(_check_table_id_range,),
)

_ROUTE_TABLE_RANGE = Struct(
    (
        Field("min", _INT, default=0, omitempty=False),
        Field("max", _INT, default=0, omitempty=False),
    ),
    checks=(_check_table_range,),
)

_CONNTRACK_TIMEOUT = _checked(_conntrack_timeout)
_BPF_CONNTRACK_TIMEOUTS = Struct(
    tuple(
        _ptr(name, _CONNTRACK_TIMEOUT)
        for name in (
            "creationGracePeriod",
            "tcpSynSent",
            "tcpEstablished",
            "tcpFinsSeen",
            "tcpResetSeen",
            "udpTimeout",
            "genericTimeout",
            "icmpTimeout",
        )
    )
)


@dataclass(frozen=True)
class _FelixSpec(Struct):
    """FelixConfigurationSpec plus the client's rewrite of the deprecated CTLB switch."""

    def normalize(self, value: Any, path: str) -> Any:
        spec = super().normalize(value, path)
        # setDefaults: the old boolean, once set, decides both newer CTLB fields, even ones
        # the user set explicitly. Both keys exist already (defaulted), so order is kept.
        enabled = spec.get("bpfConnectTimeLoadBalancingEnabled")
        if enabled is not None:
            spec["bpfHostNetworkedNATWithoutCTLB"] = "Disabled"
            spec["bpfConnectTimeLoadBalancing"] = "Enabled" if enabled else "Disabled"
        return spec


FELIX_SPEC = _FelixSpec(
    (
        _ptr("useInternalDataplaneDriver", _BOOL),
        Field("dataplaneDriver", _TEXT),
        _ptr("dataplaneWatchdogTimeout", _DURATION),
        _ptr("ipv6Support", _BOOL),
        _ptr("routeRefreshInterval", _DURATION),
        _ptr("interfaceRefreshInterval", _DURATION),
        _ptr("iptablesRefreshInterval", _DURATION),
        _ptr("iptablesPostWriteCheckInterval", _DURATION),
        Field("iptablesLockFilePath", _TEXT),
        _ptr("iptablesLockTimeout", _DURATION),
        _ptr("iptablesLockProbeInterval", _DURATION),
        Field("featureDetectOverride", _checked(_key_value_list)),
        Field("featureGates", _checked(_key_value_list)),
        _ptr("ipsetsRefreshInterval", _DURATION),
        _ptr("maxIpsetSize", _INT),
        Field("iptablesBackend", Choice(("Legacy", "NFT", "Auto"), tag="iptablesBackend")),
        _ptr("xdpRefreshInterval", _DURATION),
        _ptr("netlinkTimeout", _DURATION),
        Field("metadataAddr", _TEXT),
        _ptr("metadataPort", _PORT),
        Field("openstackRegion", _checked(_openstack_region)),
        Field("interfacePrefix", _TEXT),
        Field("interfaceExclude", _TEXT),
        Field("chainInsertMode", Choice(("Insert", "Append"), ignore_case=True)),
        Field(
            "defaultEndpointToHostAction",
            Choice(("Drop", "Accept", "Return"), tag="dropAcceptReturn"),
        ),
        Field("iptablesFilterAllowAction", _ACCEPT_RETURN),
        Field("iptablesMangleAllowAction", _ACCEPT_RETURN),
        Field("iptablesFilterDenyAction", _DROP_REJECT),
        Field("logPrefix", _TEXT),
        Field("logFilePath", _TEXT),
        Field("logSeverityFile", _LOG_LEVEL),
        Field("logSeverityScreen", _LOG_LEVEL),
        Field("logSeveritySys", _LOG_LEVEL),
        Field("logDebugFilenameRegex", _PATTERN),
        _ptr("ipipEnabled", _BOOL),
        _ptr("ipipMTU", _MTU),
        _ptr("vxlanEnabled", _BOOL),
        _ptr("vxlanMTU", _MTU),
        _ptr("vxlanMTUV6", _MTU),
        _ptr("vxlanPort", _PORT),
        _ptr("vxlanVNI", Int(0, 0xFFFFFF)),
        _ptr("allowVXLANPacketsFromWorkloads", _BOOL),
        _ptr("allowIPIPPacketsFromWorkloads", _BOOL),
        _ptr("reportingInterval", _DURATION),
        _ptr("reportingTTL", _DURATION),
        _ptr("endpointReportingEnabled", _BOOL),
        _ptr("endpointReportingDelay", _DURATION),
        Field("endpointStatusPathPrefix", _TEXT),
        _ptr("iptablesMarkMask", _UINT32),
        _ptr("disableConntrackInvalidCheck", _BOOL),
        _ptr("healthEnabled", _BOOL),
        _ptr("healthHost", _TEXT),
        _ptr("healthPort", _PORT),
        Field("healthTimeoutOverrides", ListOf(_HEALTH_TIMEOUT_OVERRIDE)),
        _ptr("prometheusMetricsEnabled", _BOOL),
        Field("prometheusMetricsHost", _checked(_prometheus_host)),
        _ptr("prometheusMetricsPort", _PORT),
        _ptr("prometheusGoMetricsEnabled", _BOOL),
        _ptr("prometheusProcessMetricsEnabled", _BOOL),
        _ptr("prometheusWireGuardMetricsEnabled", _BOOL),
        # `[]` is meaningful here: it turns the failsafe rules off.
        _ptr("failsafeInboundHostPorts", ListOf(_PROTO_PORT)),
        _ptr("failsafeOutboundHostPorts", ListOf(_PROTO_PORT)),
        _ptr("kubeNodePortRanges", WholeList(_node_port_ranges)),
        Field("policySyncPathPrefix", _TEXT),
        _ptr("usageReportingEnabled", _BOOL),
        _ptr("usageReportingInitialDelay", _DURATION),
        _ptr("usageReportingInterval", _DURATION),
        _ptr("natPortRange", _PORT_RANGE),
        Field("natOutgoingAddress", _checked(_ipv4)),
        Field("natOutgoingExclusions", Choice(("IPPoolsOnly", "IPPoolsAndHostIPs"))),
        Field("deviceRouteSourceAddress", _checked(_ipv4)),
        Field("deviceRouteSourceAddressIPv6", _checked(_ipv6)),
        _ptr("deviceRouteProtocol", Int(0, 255)),
        _ptr("removeExternalRoutes", _BOOL),
        Field("programClusterRoutes", _ENABLED_DISABLED),
        Field("ipForwarding", _ENABLED_DISABLED),
        _ptr("externalNodesList", WholeList(_external_nodes)),
        Field("debugMemoryProfilePath", _TEXT),
        _ptr("debugDisableLogDropping", _BOOL),
        _ptr("debugSimulateCalcGraphHangAfter", _DURATION),
        _ptr("debugSimulateDataplaneHangAfter", _DURATION),
        _ptr("debugSimulateDataplaneApplyDelay", _DURATION),
        _ptr("debugHost", _TEXT),
        _ptr("debugPort", Int(0, 65535, "gte", "lte")),
        Field(
            "iptablesNATOutgoingInterfaceFilter",
            _checked(go_tag("ifaceFilter", _iface_filter)),
        ),
        _ptr("sidecarAccelerationEnabled", _BOOL),
        _ptr("xdpEnabled", _BOOL),
        _ptr("genericXDPEnabled", _BOOL),
        Field("nftablesMode", Choice(("Disabled", "Enabled", "Auto"))),
        _ptr("nftablesRefreshInterval", _DURATION),
        Field("nftablesFilterAllowAction", _ACCEPT_RETURN),
        Field("nftablesMangleAllowAction", _ACCEPT_RETURN),
        Field("nftablesFilterDenyAction", _DROP_REJECT),
        _ptr("nftablesMarkMask", _UINT32),
        _ptr("bpfEnabled", _BOOL),
        _ptr("bpfDisableUnprivileged", _BOOL),
        # The Go tag has no omitempty, so Calico always stores this key, usually as "".
        _ptr("bpfLogLevel", Choice(("Debug", "Info", "Off"), tag="bpfLogLevel"), default=""),
        Field("bpfConntrackLogLevel", Choice(("Off", "Debug"), tag="oneof")),
        Field("bpfConntrackMode", Choice(("Auto", "Userspace", "BPFProgram"), tag="oneof")),
        _ptr("bpfConntrackTimeouts", _BPF_CONNTRACK_TIMEOUTS),
        _ptr("bpfLogFilters", MapOf(_TEXT, checks=(_bpf_log_filters,))),
        Field("bpfCTLBLogFilter", _TEXT),
        Field("bpfDataIfacePattern", _PATTERN),
        Field("bpfL3IfacePattern", _PATTERN),
        _ptr("bpfConnectTimeLoadBalancingEnabled", _BOOL),
        Field(
            "bpfConnectTimeLoadBalancing",
            Choice(("TCP", "Enabled", "Disabled"), tag="oneof"),
            default="TCP",
        ),
        Field("bpfHostNetworkedNATWithoutCTLB", _ONEOF_ENABLED_DISABLED, default="Enabled"),
        Field("bpfExternalServiceMode", Choice(("Tunnel", "DSR"), tag="bpfServiceMode")),
        _ptr("bpfDSROptoutCIDRs", _CIDRS),
        _ptr("bpfExtToServiceConnmark", Int(0, 0xFFFFFFFF, "gte", "lte")),
        _ptr("bpfKubeProxyIptablesCleanupEnabled", _BOOL),
        _ptr("bpfKubeProxyMinSyncPeriod", _DURATION),
        _ptr("bpfKubeProxyEndpointSlicesEnabled", _BOOL),
        _ptr("bpfPSNATPorts", _PORT_RANGE),
        _ptr("bpfMapSizeNATFrontend", _INT),
        _ptr("bpfMapSizeNATBackend", _INT),
        _ptr("bpfMapSizeNATAffinity", _INT),
        _ptr("bpfMapSizeRoute", _INT),
        _ptr("bpfMapSizeConntrack", _INT),
        _ptr("bpfMapSizePerCpuConntrack", _INT),
        Field("bpfMapSizeConntrackScaling", Choice(("Disabled", "DoubleIfFull"), ignore_case=True)),
        _ptr("bpfMapSizeConntrackCleanupQueue", Int(minimum=1, min_tag="gte")),
        _ptr("bpfMapSizeIPSets", _INT),
        _ptr("bpfMapSizeIfState", _INT),
        _ptr("bpfHostConntrackBypass", _BOOL),
        Field("bpfEnforceRPF", Choice(("Disabled", "Strict", "Loose"), ignore_case=True)),
        _ptr("bpfPolicyDebugEnabled", _BOOL),
        _ptr("bpfForceTrackPacketsFromIfaces", ListOf(Str(), (_iface_filters,))),
        Field("bpfDisableGROForIfaces", _PATTERN),
        _ptr("bpfExcludeCIDRsFromNAT", _CIDRS),
        _ptr("bpfExportBufferSizeMB", _INT),
        Field("flowLogsPolicyEvaluationMode", Choice(("None", "Continuous"))),
        Field("bpfRedirectToPeer", Choice(("Enabled", "Disabled", "L2Only"))),
        _ptr("flowLogsFlushInterval", _DURATION),
        _ptr("flowLogsCollectorDebugTrace", _BOOL),
        _ptr("flowLogsGoldmaneServer", _TEXT),
        Field("flowLogsLocalReporter", Choice(("Disabled", "Enabled"))),
        Field("bpfProfiling", _ENABLED_DISABLED),
        # Calico's `routeSource` tag passes any regular expression: the choice is pycalico's.
        Field("routeSource", Choice(("WorkloadIPs", "CalicoIPAM"))),
        _ptr("routeTableRanges", ListOf(_ROUTE_TABLE_ID_RANGE)),
        _ptr("routeTableRange", _ROUTE_TABLE_RANGE),
        _ptr("routeSyncDisabled", _BOOL),
        _ptr("wireguardEnabled", _BOOL),
        _ptr("wireguardEnabledV6", _BOOL),
        _ptr("wireguardThreadingEnabled", _BOOL),
        _ptr("wireguardListeningPort", _WIREGUARD_PORT),
        _ptr("wireguardListeningPortV6", _WIREGUARD_PORT),
        _ptr("wireguardRoutingRulePriority", Int(1, 32765, "gt", "lt")),
        Field("wireguardInterfaceName", _checked(_interface)),
        Field("wireguardInterfaceNameV6", _checked(_interface)),
        _ptr("wireguardMTU", _MTU),
        _ptr("wireguardMTUV6", _MTU),
        _ptr("wireguardHostEncryptionEnabled", _BOOL),
        _ptr("wireguardKeepAlive", _DURATION),
        Field("awsSrcDstCheck", Choice(("DoNothing", "Enable", "Disable"), tag="oneof")),
        Field("serviceLoopPrevention", Choice(("Drop", "Reject", "Disabled"), tag="oneof")),
        Field("workloadSourceSpoofing", Choice(("Disabled", "Any"), tag="oneof")),
        Field("mtuIfacePattern", _PATTERN),
        Field("floatingIPs", _ENABLED_DISABLED, default="Disabled"),
        Field("windowsManageFirewallRules", _ONEOF_ENABLED_DISABLED),
        _ptr("goGCThreshold", _GO_RUNTIME),
        _ptr("goMemoryLimitMB", _GO_RUNTIME),
        _ptr("goMaxProcs", _GO_RUNTIME),
        _ptr("requireMTUFile", _BOOL),
    ),
    checks=(_check_spec,),
)

FELIXCONFIGURATION = Kind(
    "FelixConfiguration",
    "felixconfigurations",
    namespaced=False,
    spec=FELIX_SPEC,
    name_check=singleton_name("default", node_prefix=True),
)
