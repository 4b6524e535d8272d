"""FelixConfiguration and KubeControllersConfiguration schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from pycalico.api import resource
from pycalico.api.felixconfig import FELIX_SPEC, FELIXCONFIGURATION, go_duration
from pycalico.api.kubecontrollers import (
    KUBE_CONTROLLERS_DEFAULTS,
    KUBE_CONTROLLERS_SPEC,
    KUBE_CONTROLLERS_STATUS,
    KUBECONTROLLERSCONFIGURATION,
)
from pycalico.api.schema import Struct, ValidationErrors

GO_ORDER = [f.name for f in FELIX_SPEC.fields]

# What a long-running cluster's `default` FelixConfiguration looks like: calico-node's
# settings plus typical operator edits, given in alphabetical order as `calicoctl get -o yaml`
# of a CRD would print them.
REALISTIC = {
    "bpfLogLevel": "",
    "defaultEndpointToHostAction": "Return",
    "failsafeInboundHostPorts": [
        {"protocol": "tcp", "port": 22},
        {"protocol": "udp", "port": 68},
        {"protocol": "TCP", "port": 6443, "net": "10.0.0.0/8"},
    ],
    "failsafeOutboundHostPorts": [{"protocol": "udp", "port": 53}],
    "featureDetectOverride": "SNATFullyRandom=true,MASQFullyRandom=false",
    "floatingIPs": "Disabled",
    "healthPort": 9099,
    "healthTimeoutOverrides": [{"name": "InternalDataplaneMainLoop", "timeout": "90s"}],
    "ipipEnabled": True,
    "ipipMTU": 1440,
    "iptablesBackend": "Auto",
    "iptablesMarkMask": 0xFFFF0000,
    "kubeNodePortRanges": ["30000:32767"],
    "logSeverityScreen": "Info",
    "nftablesMode": "Disabled",
    "prometheusMetricsEnabled": True,
    "reportingInterval": "0s",
    "routeRefreshInterval": "90s",
    "routeTableRanges": [{"min": 1, "max": 250}],
    "vxlanPort": 4789,
    "vxlanVNI": 4096,
    "wireguardKeepAlive": "0s",
}


def felix(spec: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = FELIX_SPEC.normalize(spec, "spec")
    return result


def errors_of(struct: Struct, spec: Any) -> dict[str, str]:
    with pytest.raises(ValidationErrors) as info:
        struct.normalize(spec, "spec")
    return {e.path: e.reason for e in info.value.errors}


def message_of(struct: Struct, spec: Any) -> str:
    """The refusal as Calico's ErrorValidation prints it."""
    with pytest.raises(ValidationErrors) as info:
        struct.normalize(spec, "spec")
    return str(info.value)


def tag_failure(field: str, value: str, tag: str) -> str:
    """libcalico-go's line for a field that failed a `validate:` struct tag."""
    return (
        f"error with field {field} = '{value}' "
        f"(Reason: failed to validate Field: {field} because of Tag: {tag} )"
    )


def assert_go_order(spec: dict[str, Any]) -> None:
    assert list(spec) == [name for name in GO_ORDER if name in spec]


# --- FelixConfiguration ----------------------------------------------------------------------


def test_spec_lists_all_164_fields_of_the_go_struct_once_in_go_order() -> None:
    assert len(GO_ORDER) == 164
    assert len(set(GO_ORDER)) == 164
    assert GO_ORDER[:4] == [
        "useInternalDataplaneDriver",
        "dataplaneDriver",
        "dataplaneWatchdogTimeout",
        "ipv6Support",
    ]
    assert GO_ORDER[-4:] == ["goGCThreshold", "goMemoryLimitMB", "goMaxProcs", "requireMTUFile"]
    # Go field ExternalNodesCIDRList is spelled externalNodesList in JSON.
    assert "externalNodesList" in GO_ORDER
    assert GO_ORDER.index("bpfConnectTimeLoadBalancingEnabled") + 1 == GO_ORDER.index(
        "bpfConnectTimeLoadBalancing"
    )


def test_calico_node_default_gets_only_the_go_client_defaults() -> None:
    spec = felix({"reportingInterval": "0s", "logSeverityScreen": "Info"})
    assert spec == {
        "logSeverityScreen": "Info",
        "reportingInterval": "0s",
        "bpfLogLevel": "",
        "bpfConnectTimeLoadBalancing": "TCP",
        "bpfHostNetworkedNATWithoutCTLB": "Enabled",
        "floatingIPs": "Disabled",
    }
    assert_go_order(spec)


def test_realistic_spec_normalizes_to_a_fixed_point_in_go_order() -> None:
    once = felix(copy.deepcopy(REALISTIC))
    twice = felix(copy.deepcopy(once))
    assert twice == once
    assert list(twice) == list(once)
    assert_go_order(once)
    assert once["routeRefreshInterval"] == "1m30s"
    assert once["healthTimeoutOverrides"] == [
        {"name": "InternalDataplaneMainLoop", "timeout": "1m30s"}
    ]
    assert once["failsafeInboundHostPorts"][2] == {
        "protocol": "TCP",
        "port": 6443,
        "net": "10.0.0.0/8",
    }
    assert set(once) == set(REALISTIC) | {
        "bpfConnectTimeLoadBalancing",
        "bpfHostNetworkedNATWithoutCTLB",
    }


def test_explicit_false_zero_and_empty_pointer_list_are_kept() -> None:
    spec = felix(
        {
            "ipipEnabled": False,
            "bpfEnabled": False,
            "vxlanMTU": 0,
            "goGCThreshold": -1,
            "healthHost": "",
            "failsafeInboundHostPorts": [],
            "healthTimeoutOverrides": [],
            "interfacePrefix": "",
        }
    )
    assert spec["ipipEnabled"] is False
    assert spec["bpfEnabled"] is False
    assert spec["vxlanMTU"] == 0
    assert spec["goGCThreshold"] == -1
    assert spec["healthHost"] == ""
    # `[]` disables the failsafe rules, so Go keeps it; the non-pointer list is omitted.
    assert spec["failsafeInboundHostPorts"] == []
    assert "healthTimeoutOverrides" not in spec
    assert "interfacePrefix" not in spec


def test_unknown_field_is_rejected_with_its_path() -> None:
    assert errors_of(FELIX_SPEC, {"ipipEnabled": True, "ipInIpEnabled": True}) == {
        "spec.ipInIpEnabled": "unknown field"
    }
    assert "spec.failsafeInboundHostPorts[0].cidr" in errors_of(
        FELIX_SPEC, {"failsafeInboundHostPorts": [{"port": 22, "cidr": "10.0.0.0/8"}]}
    )


@pytest.mark.parametrize("value", ["90 seconds", "1d", "00", 90, ""])
def test_bad_duration_is_rejected(value: Any) -> None:
    assert "spec.routeRefreshInterval" in errors_of(FELIX_SPEC, {"routeRefreshInterval": value})


@pytest.mark.parametrize(
    ("given", "stored"),
    [
        ("0", "0s"),
        ("0s", "0s"),
        ("90s", "1m30s"),
        ("10m", "10m0s"),
        ("1h", "1h0m0s"),
        ("1.5h", "1h30m0s"),
        ("300ms", "300ms"),
        ("1500ns", "1.5µs"),
        ("2us", "2µs"),
        (".5s", "500ms"),
        ("1.001s", "1.001s"),
        ("-5s", "-5s"),
        ("2562047h47m16.854775807s", "2562047h47m16.854775807s"),
    ],
)
def test_durations_are_stored_as_go_prints_them(given: str, stored: str) -> None:
    assert go_duration(given) == stored
    assert go_duration(stored) == stored


def test_duration_beyond_go_range_is_rejected() -> None:
    with pytest.raises(ValueError):
        go_duration("2562047h47m16.854775808s")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("iptablesBackend", "nft"),
        ("defaultEndpointToHostAction", "ACCEPT"),
        ("logSeverityScreen", "Verbose"),
        ("logSeveritySys", "None"),
        ("bpfLogLevel", "debug"),
        ("nftablesMode", "On"),
        ("routeSource", "BGP"),
        ("chainInsertMode", "prepend"),
        ("floatingIPs", True),
    ],
)
def test_bad_enum_is_rejected(field: str, value: Any) -> None:
    assert f"spec.{field}" in errors_of(FELIX_SPEC, {field: value})


def test_case_insensitive_only_where_calico_has_no_validator() -> None:
    spec = felix({"chainInsertMode": "append", "bpfEnforceRPF": "strict"})
    assert spec["chainInsertMode"] == "append"
    assert spec["bpfEnforceRPF"] == "strict"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("vxlanPort", 70000),
        ("healthPort", -1),
        ("debugPort", 65536),
        ("wireguardListeningPort", 0),
        ("wireguardRoutingRulePriority", 32766),
        ("vxlanVNI", 1 << 24),
        ("iptablesMarkMask", 1 << 32),
        ("goMaxProcs", -2),
    ],
)
def test_out_of_range_number_is_rejected(field: str, value: int) -> None:
    assert f"spec.{field}" in errors_of(FELIX_SPEC, {field: value})


@pytest.mark.parametrize(
    ("entry", "bad"),
    [
        ({"protocol": "tcp", "port": 65536}, "port"),
        ({"protocol": "icmp", "port": 1}, "protocol"),
        ({"protocol": "udp"}, "port"),
        ({"port": 22, "net": "not-a-cidr"}, "net"),
    ],
)
def test_bad_failsafe_port_entry_is_rejected(entry: dict[str, Any], bad: str) -> None:
    spec = {"failsafeOutboundHostPorts": [{"port": 53, "protocol": "udp"}, entry]}
    assert f"spec.failsafeOutboundHostPorts[1].{bad}" in errors_of(FELIX_SPEC, spec)


def test_failsafe_port_without_protocol_is_stored_without_one() -> None:
    # Felix reads a missing protocol as tcp; Calico stores it as missing.
    assert felix({"failsafeInboundHostPorts": [{"port": 22}]})["failsafeInboundHostPorts"] == [
        {"port": 22}
    ]


def test_deprecated_ctlb_switch_overrides_the_newer_fields_as_the_client_does() -> None:
    off = felix({"bpfConnectTimeLoadBalancingEnabled": False, "bpfConnectTimeLoadBalancing": "TCP"})
    assert off["bpfConnectTimeLoadBalancing"] == "Disabled"
    assert off["bpfHostNetworkedNATWithoutCTLB"] == "Disabled"
    on = felix({"bpfConnectTimeLoadBalancingEnabled": True})
    assert on["bpfConnectTimeLoadBalancing"] == "Enabled"
    assert on["bpfHostNetworkedNATWithoutCTLB"] == "Disabled"
    assert felix(copy.deepcopy(on)) == on
    assert_go_order(on)


def test_route_table_ranges_are_refused_in_calicos_words() -> None:
    """validateFelixConfigSpec, validateRouteTableRange and validateRouteTableIDRange: the
    ranges shown as Go prints the structs (the spec's fields are pointers: `&`), and the
    ID range's errors named `RouteTableRange` as Calico names them."""
    assert message_of(
        FELIX_SPEC,
        {"routeTableRange": {"min": 1, "max": 250}, "routeTableRanges": [{"min": 1, "max": 2}]},
    ) == (
        "error with field RouteTableRange = '&{1 250}' "
        "(cannot be set when `RouteTableRanges` is also set)"
    )
    assert message_of(FELIX_SPEC, {"routeTableRange": {"min": 1, "max": 251}}) == (
        "error with field RouteTableRange = '{1 251}' "
        "(must be a range of route table indices within 1..250)"
    )
    assert message_of(FELIX_SPEC, {"routeTableRanges": [{"min": 10, "max": 2}]}) == (
        "error with field RouteTableRange = '{10 2}' (min value cannot be greater than max value)"
    )
    assert message_of(FELIX_SPEC, {"routeTableRanges": [{"min": 1, "max": 70000}]}) == (
        "error with field RouteTableRanges = '&[{1 70000}]' (targets too many tables)"
    )
    # A missing bound is Go's 0, which the range check then refuses.
    assert message_of(FELIX_SPEC, {"routeTableRanges": [{"min": 1}]}) == (
        "error with field RouteTableRange = '{1 0}' (min value cannot be greater than max value)"
    )
    assert felix({"routeTableRanges": [{"min": 1, "max": 250}, {"min": 1000, "max": 2000}]})[
        "routeTableRanges"
    ] == [{"min": 1, "max": 250}, {"min": 1000, "max": 2000}]


def test_port_ranges_are_stored_as_numorstring_prints_them() -> None:
    spec = felix(
        {
            "kubeNodePortRanges": ["30000:32767", "8080", 9000, "80:80"],
            "natPortRange": "32768:65535",
            "bpfPSNATPorts": "20000:29999",
        }
    )
    assert spec["kubeNodePortRanges"] == ["30000:32767", 8080, 9000, 80]
    assert spec["natPortRange"] == "32768:65535"


def test_port_range_errors_are_calicos() -> None:
    """validatePort names every port `Port`; validateFelixConfigSpec shows the whole list."""
    assert message_of(FELIX_SPEC, {"kubeNodePortRanges": ["http", "30000:32767"]}) == (
        "error with field KubeNodePortRanges = '[http 30000:32767]' "
        "(node port ranges should not contain named ports)"
    )
    assert message_of(FELIX_SPEC, {"kubeNodePortRanges": list(range(1, 9))}) == (
        "error with field KubeNodePortRanges = '[1 2 3 4 5 6 7 8]' "
        "(node port ranges list is too long (max 7))"
    )
    assert message_of(FELIX_SPEC, {"natPortRange": 0}) == (
        "error with field Port = '0' (port range invalid, port number must be between 1 and 65535)"
    )
    assert message_of(FELIX_SPEC, {"bpfPSNATPorts": "0:100"}) == (
        "error with field Port = '0' (port range invalid, port number must be between 1 and 65535)"
    )


def test_addresses_and_cidrs_are_checked() -> None:
    message = message_of(
        FELIX_SPEC,
        {
            "natOutgoingAddress": "fd00::1",
            "deviceRouteSourceAddress": "10.0.0.300",
            "deviceRouteSourceAddressIPv6": "10.0.0.1",
            "externalNodesList": ["10.0.0.0/8", "fd00::/64"],
            "bpfExcludeCIDRsFromNAT": ["169.254.20.10", "junk"],
        },
    )
    cidrs = tag_failure("BPFExcludeCIDRsFromNAT", "[169.254.20.10 junk]", "cidrs")
    assert message == (
        "error with the following fields:\n"
        "-  NATOutgoingAddress = 'fd00::1' (is not a valid IPv4 address)\n"
        "-  DeviceRouteSourceAddress = '10.0.0.300' (is not a valid IPv4 address)\n"
        "-  DeviceRouteSourceAddressIPv6 = '10.0.0.1' (is not a valid IPv6 address)\n"
        "-  ExternalNodesCIDRList = 'fd00::/64' (has invalid IPv6 CIDR)\n"
        f"-  {cidrs.removeprefix('error with field ')}\n"
    )
    spec = felix({"natOutgoingAddress": "192.0.2.1", "deviceRouteSourceAddressIPv6": "fd00::1"})
    assert spec["natOutgoingAddress"] == "192.0.2.1"


def test_string_formats_from_libcalico_validators() -> None:
    assert felix({"featureGates": "BPFConnectTimeLoadBalancingWorkaround=enabled,"})
    assert message_of(FELIX_SPEC, {"featureDetectOverride": "x"}) == tag_failure(
        "FeatureDetectOverride", "x", "keyValueList"
    )
    assert message_of(FELIX_SPEC, {"openstackRegion": "Region_One"}) == (
        "error with field OpenstackRegion = 'Region_One' (must be a valid DNS label)"
    )
    assert message_of(
        FELIX_SPEC, {"iptablesNATOutgoingInterfaceFilter": "much-too-long-iface+"}
    ) == tag_failure("IptablesNATOutgoingInterfaceFilter", "much-too-long-iface+", "ifaceFilter")
    assert message_of(FELIX_SPEC, {"bpfLogFilters": {"bad key!": "tcp"}}) == tag_failure(
        "BPFLogFilters", "map[bad key!:tcp]", "bpfLogFilters"
    )
    assert message_of(
        FELIX_SPEC, {"healthTimeoutOverrides": [{"name": "a/b", "timeout": "1s"}]}
    ) == (
        "error with field HealthTimeoutOverride.Name = '{a/b 1s}' "
        "(name should match regex ^[a-zA-Z0-9_ -]+$)"
    )
    assert message_of(
        FELIX_SPEC, {"healthTimeoutOverrides": [{"name": "ok", "timeout": "-1s"}]}
    ) == (
        "error with field HealthTimeoutOverride.Timeout = '{ok -1s}' "
        "(Timeout should not be negative)"
    )
    spec = felix(
        {
            "wireguardInterfaceName": "wireguard.cali",
            "bpfForceTrackPacketsFromIfaces": ["docker+"],
            "bpfConntrackTimeouts": {"tcpFinsSeen": "Auto", "udpTimeout": "60s"},
        }
    )
    assert spec["bpfConntrackTimeouts"] == {"tcpFinsSeen": "Auto", "udpTimeout": "60s"}


@pytest.mark.parametrize("name", ["default", "node.node-1", "node.worker.example.com"])
def test_felix_names_default_and_per_node_are_accepted(name: str) -> None:
    assert FELIXCONFIGURATION.name_check(name) is None


@pytest.mark.parametrize("name", ["foo", "node.", "node.Bad_Name", "defaults"])
def test_other_felix_names_are_rejected(name: str) -> None:
    assert FELIXCONFIGURATION.name_check(name)


def test_whole_document_goes_through_the_registry() -> None:
    doc = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "FelixConfiguration",
        "metadata": {"name": "node.node-1"},
        "spec": {"defaultEndpointToHostAction": "Return"},
    }
    result = resource.normalize(doc)
    assert result["spec"]["defaultEndpointToHostAction"] == "Return"
    assert result["spec"]["floatingIPs"] == "Disabled"
    with pytest.raises(ValidationErrors, match=r"Metadata\.Name = 'foo'"):
        resource.normalize({**doc, "metadata": {"name": "foo"}})


# --- KubeControllersConfiguration ------------------------------------------------------------

FULL_KCC = {
    "logSeverityScreen": "Warning",
    "healthChecks": "Disabled",
    "etcdV3CompactionPeriod": "0",
    "prometheusMetricsPort": 0,
    "controllers": {
        "node": {
            "reconcilerPeriod": "30s",
            "syncLabels": "Disabled",
            "hostEndpoint": {
                "autoCreate": "Enabled",
                "createDefaultHostEndpoint": "Disabled",
                "templates": [
                    {
                        "generateName": "internal",
                        "interfaceCIDRs": ["10.0.0.0/8"],
                        "interfacePattern": "^eth[0-9]+$",
                        "labels": {"network": "internal"},
                        "nodeSelector": "has(role)",
                    }
                ],
            },
            "leakGracePeriod": "20m",
        },
        "policy": {"reconcilerPeriod": "1m"},
        "workloadEndpoint": {"reconcilerPeriod": "1m"},
        "serviceAccount": {"reconcilerPeriod": "1m"},
        "namespace": {"reconcilerPeriod": "1m"},
        "loadBalancer": {"assignIPs": "RequestedServicesOnly"},
    },
    "debugProfilePort": 6060,
}


def test_kube_controllers_nested_fields_round_trip() -> None:
    once = KUBE_CONTROLLERS_SPEC.normalize(copy.deepcopy(FULL_KCC), "spec")
    assert KUBE_CONTROLLERS_SPEC.normalize(copy.deepcopy(once), "spec") == once
    node = once["controllers"]["node"]
    assert node["reconcilerPeriod"] == "30s"
    assert node["leakGracePeriod"] == "20m0s"
    assert node["hostEndpoint"]["templates"][0]["labels"] == {"network": "internal"}
    assert once["etcdV3CompactionPeriod"] == "0s"
    assert once["prometheusMetricsPort"] == 0
    assert list(once) == list(FULL_KCC)
    assert list(once["controllers"]) == list(FULL_KCC["controllers"])


def test_kube_controllers_client_fills_only_what_libcalico_fills() -> None:
    spec = KUBE_CONTROLLERS_SPEC.normalize(
        {"controllers": {"node": {"syncLabels": "Enabled"}, "loadBalancer": {}}}, "spec"
    )
    assert spec == {
        "prometheusMetricsPort": 9094,
        "controllers": {
            "node": {"syncLabels": "Enabled", "leakGracePeriod": "15m0s"},
            "loadBalancer": {"assignIPs": "AllServices"},
        },
    }
    assert KUBE_CONTROLLERS_SPEC.normalize(None, "spec") == {
        "prometheusMetricsPort": 9094,
        "controllers": {},
    }


def test_kube_controllers_defaults_constant_is_already_canonical() -> None:
    spec = KUBE_CONTROLLERS_SPEC.normalize(copy.deepcopy(KUBE_CONTROLLERS_DEFAULTS), "spec")
    assert spec == KUBE_CONTROLLERS_DEFAULTS
    assert list(spec) == list(KUBE_CONTROLLERS_DEFAULTS)
    assert list(spec["controllers"]["node"]) == list(
        KUBE_CONTROLLERS_DEFAULTS["controllers"]["node"]
    )


def test_kube_controllers_unknown_nested_field_reports_full_path() -> None:
    assert errors_of(KUBE_CONTROLLERS_SPEC, {"controllers": {"node": {"bogus": 1}}}) == {
        "spec.controllers.node.bogus": "unknown field"
    }
    assert "spec.controllers.node.hostEndpoint.templates[0].cidrs" in errors_of(
        KUBE_CONTROLLERS_SPEC,
        {
            "controllers": {
                "node": {
                    "hostEndpoint": {
                        "templates": [
                            {"generateName": "a", "interfaceCIDRs": ["10.0.0.0/8"], "cidrs": []}
                        ]
                    }
                }
            }
        },
    )


def test_kube_controllers_bad_values_are_rejected() -> None:
    errors = errors_of(
        KUBE_CONTROLLERS_SPEC,
        {
            "logSeverityScreen": "Trace",
            "healthChecks": "enabled",
            "prometheusMetricsPort": 70000,
            "etcdV3CompactionPeriod": "10 minutes",
            "controllers": {"policy": {"reconcilerPeriod": 300}},
        },
    )
    assert set(errors) == {
        "spec.logSeverityScreen",
        "spec.healthChecks",
        "spec.prometheusMetricsPort",
        "spec.etcdV3CompactionPeriod",
        "spec.controllers.policy.reconcilerPeriod",
    }


def test_host_endpoint_templates_follow_the_client_rules() -> None:
    """validateAndFillDefaults' rules in its words: its field names, no value shown, and
    only the first broken rule (the client returns at it)."""

    def templates(*items: dict[str, Any]) -> dict[str, Any]:
        return {"controllers": {"node": {"hostEndpoint": {"templates": list(items)}}}}

    where = "KubeControllersConfiguration.Node.HostEndpoint.Templates"
    assert message_of(KUBE_CONTROLLERS_SPEC, templates({"generateName": "a"})) == (
        f"error with field {where}.a (CIDR can not be empty)"
    )
    duplicate = {"generateName": "a", "interfaceCIDRs": ["10.0.0.0/8"]}
    assert message_of(KUBE_CONTROLLERS_SPEC, templates(duplicate, duplicate, {})) == (
        f"error with field {where}.a (Template name must be unique)"
    )
    assert message_of(
        KUBE_CONTROLLERS_SPEC, templates({"generateName": "", "interfaceCIDRs": ["10.0.0.0/8"]})
    ) == (f"error with field {where} (Template name must be specified)")
    assert message_of(
        KUBE_CONTROLLERS_SPEC,
        templates({"generateName": "a", "interfaceCIDRs": ["10.0.0.0/8"], "nodeSelector": "(("}),
    ) == tag_failure("NodeSelector", "((", "selector")
    assert message_of(
        KUBE_CONTROLLERS_SPEC,
        templates({"generateName": "a", "interfaceCIDRs": ["10.0.0.0/8", "ten"]}),
    ) == tag_failure("InterfaceCIDRs", "[10.0.0.0/8 ten]", "cidrs")


def test_kube_controllers_status_is_reported_as_is() -> None:
    status = KUBE_CONTROLLERS_STATUS.normalize(
        {
            "environmentVars": {"ENABLED_CONTROLLERS": "node"},
            "runningConfig": {"controllers": {"node": {"syncLabels": "Enabled"}}},
        },
        "status",
    )
    assert status == {
        "runningConfig": {"controllers": {"node": {"syncLabels": "Enabled"}}},
        "environmentVars": {"ENABLED_CONTROLLERS": "node"},
    }


def test_kube_controllers_name_must_be_default_in_the_clients_words() -> None:
    doc = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "KubeControllersConfiguration",
        "metadata": {"name": "default"},
        "spec": {},
    }
    resource.normalize(doc)
    with pytest.raises(ValidationErrors) as info:
        resource.normalize({**doc, "metadata": {"name": "node.node-1"}})
    assert str(info.value) == (
        'Cannot create a Kube Controllers Configuration resource with a name other than "default"'
    )
    assert KUBECONTROLLERSCONFIGURATION.status is KUBE_CONTROLLERS_STATUS
