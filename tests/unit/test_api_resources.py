"""v3 resources: defaults, Go field order, strict decoding, validation, stable round trips."""

from __future__ import annotations

from typing import Any

import pytest

from pycalico.api.codec import dump_json, dump_yaml, expand_lists, parse_documents
from pycalico.api.registry import UnknownKind, by_kind_name, kind_names, resolve
from pycalico.api.resource import UnknownResourceType, identity, normalize
from pycalico.api.schema import ValidationErrors

V3 = "projectcalico.org/v3"


def doc(
    kind: str, name: str = "x", spec: dict[str, Any] | None = None, **meta: Any
) -> dict[str, Any]:
    return {"apiVersion": V3, "kind": kind, "metadata": {"name": name, **meta}, "spec": spec or {}}


def error_of(document: Any) -> str:
    with pytest.raises(ValueError) as info:
        normalize(document)
    text = str(info.value)
    # One field is one line; several take libcalico-go's list shape (one line each).
    if not text.startswith("error with the following fields:\n"):
        assert "\n" not in text
    return text


# --- IPPool -------------------------------------------------------------------------------


def test_ippool_v4_defaults_match_calico() -> None:
    spec = normalize(doc("IPPool", spec={"cidr": "10.244.0.0/16"}))["spec"]
    assert spec == {
        "cidr": "10.244.0.0/16",
        "vxlanMode": "Never",
        "ipipMode": "Never",
        "blockSize": 26,
        "nodeSelector": "all()",
        "allowedUses": ["Workload", "Tunnel"],
        "assignmentMode": "Automatic",
    }


def test_ippool_v6_block_size_defaults_to_122_and_cidr_is_compressed() -> None:
    spec = normalize(doc("IPPool", spec={"cidr": "fd00:0:0:0::/48"}))["spec"]
    assert spec["blockSize"] == 122
    assert spec["cidr"] == "fd00::/48"


def test_ippool_spec_keys_follow_go_struct_order() -> None:
    spec = normalize(
        doc(
            "IPPool",
            spec={
                "nodeSelector": "all()",
                "natOutgoing": True,
                "cidr": "10.0.0.0/8",
                "disabled": True,
            },
        )
    )["spec"]
    assert list(spec) == [
        "cidr",
        "vxlanMode",
        "ipipMode",
        "natOutgoing",
        "disabled",
        "blockSize",
        "nodeSelector",
        "allowedUses",
        "assignmentMode",
    ]


def test_ippool_false_booleans_are_omitted_like_go_omitempty() -> None:
    spec = normalize(doc("IPPool", spec={"cidr": "10.0.0.0/8", "natOutgoing": False}))["spec"]
    assert "natOutgoing" not in spec


def test_ippool_block_size_zero_means_unset_and_gets_the_default() -> None:
    spec = normalize(doc("IPPool", spec={"cidr": "10.0.0.0/8", "blockSize": 0}))["spec"]
    assert spec["blockSize"] == 26


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"cidr": "10.244.0.1/16"}, "not strictly masked"),
        ({"cidr": "10.244.0.0"}, "IPPool.Spec.CIDR = '10.244.0.0' (IPPool CIDR must be a valid"),
        ({"cidr": "300.0.0.0/8"}, "(IPPool CIDR must be a valid subnet)"),
        ({"cidr": "10.0.0.0/8", "blockSize": 19}, "between 20 and 32"),
        ({"cidr": "10.0.0.0/8", "blockSize": 33}, "between 20 and 32"),
        ({"cidr": "fd00::/48", "blockSize": 115}, "between 116 and 128"),
        ({"cidr": "10.0.0.0/28"}, "too small"),
        (
            {"cidr": "10.0.0.0/8", "ipipMode": "Always", "vxlanMode": "CrossSubnet"},
            "Cannot enable both VXLAN and IPIP",
        ),
        ({"cidr": "fd00::/48", "ipipMode": "Always"}, "IPIP is not supported on an IPv6"),
        ({"cidr": "169.254.0.0/16"}, "overlaps with IPv4 Link Local range 169.254.0.0/16"),
        ({"cidr": "10.0.0.0/8", "ipipMode": "always"}, "must be one of Never, Always, CrossSubnet"),
        ({"cidr": "10.0.0.0/8", "nodeSelector": "a =="}, "invalid selector"),
        ({"cidr": "10.0.0.0/8", "blockSize": "26"}, "must be an integer"),
        ({"cidr": "10.0.0.0/8", "natOutgoing": "yes"}, "must be true or false"),
        ({"cidr": "10.0.0.0/8", "allowedUses": ["Workload", "Workload"]}, "duplicate"),
        (
            {"cidr": "10.0.0.0/8", "allowedUses": ["LoadBalancer"]},
            "IPpool.DisableBGPExport = 'false' (IP Pool with AllowedUse LoadBalancer must have "
            "DisableBGPExport set to true)",
        ),
        ({"cidr": "10.0.0.0/8", "ipip": {"enabled": True}}, "must not be set"),
        ({"cidr": "10.0.0.0/8", "bogus": 1}, "Bogus = '1' (unknown field)"),
        ({}, "required"),
    ],
)
def test_ippool_rejects_invalid_specs(spec: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(doc("IPPool", spec=spec))


def test_ippool_disabled_small_pool_is_allowed() -> None:
    normalize(doc("IPPool", spec={"cidr": "10.0.0.0/28", "disabled": True}))


def test_several_invalid_fields_are_reported_together_as_libcalico_go_lists_them() -> None:
    text = error_of(doc("IPPool", spec={"cidr": "x", "ipipMode": "Sometimes", "extra": 1}))
    assert text == (
        "error with the following fields:\n"
        "-  Extra = '1' (unknown field)\n"
        "-  IPPool.Spec.CIDR = 'x' (IPPool CIDR must be a valid subnet)\n"
        "-  IPIPMode = 'Sometimes' (must be one of Never, Always, CrossSubnet)\n"
    )


# --- metadata and envelope ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["Upper", "under_score", "-lead", "trail-", "a..b", "x" * 254, ""])
def test_names_must_be_dns1123_subdomains(name: str) -> None:
    assert "error with field Metadata.Name = " in error_of(
        doc("IPPool", name=name, spec={"cidr": "10.0.0.0/8"})
    )


def test_missing_metadata_is_a_missing_name() -> None:
    document = {"apiVersion": V3, "kind": "IPPool", "spec": {"cidr": "10.0.0.0/8"}}
    assert error_of(document) == "error with field Metadata.Name = '' (name is required)"


def test_wrong_api_version_is_an_unknown_resource_type() -> None:
    document = {**doc("IPPool", spec={"cidr": "10.0.0.0/8"}), "apiVersion": "v1"}
    with pytest.raises(
        UnknownResourceType, match=r"Unknown resource type \(IPPool\) and/or version \(v1\)"
    ):
        normalize(document)


def test_missing_api_version_says_which_one_is_expected() -> None:
    document = doc("IPPool", spec={"cidr": "10.0.0.0/8"})
    del document["apiVersion"]
    assert "projectcalico.org/v3" in error_of(document)


def test_unknown_kind_is_rejected() -> None:
    with pytest.raises(UnknownResourceType):
        normalize(doc("IPPools"))


def test_unknown_top_level_field_is_rejected() -> None:
    document = {**doc("IPPool", spec={"cidr": "10.0.0.0/8"}), "specs": {}}
    assert error_of(document) == "error with field Specs = '{}' (unknown field)"


def test_status_is_rejected_for_kinds_without_status() -> None:
    document = {**doc("IPPool", spec={"cidr": "10.0.0.0/8"}), "status": {}}
    assert error_of(document) == "error with field Status = '{}' (unknown field)"


def test_namespaced_kind_defaults_to_the_default_namespace() -> None:
    resource = normalize(doc("NetworkSet", spec={"nets": ["192.0.2.0/24"]}))
    assert resource["metadata"]["namespace"] == "default"
    assert identity(resource) == "NetworkSet(default/x)"


def test_cluster_scoped_kind_refuses_a_namespace() -> None:
    text = error_of(doc("IPPool", spec={"cidr": "10.0.0.0/8"}, namespace="default"))
    assert "not namespaced" in text


QUALIFIED = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
LABEL_VALUE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or "
    "'.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    "'my_value',  or '12345', regex used for validation is "
    "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            {"bad key!": "v"},
            f"error with field Metadata.Labels (label) = 'bad key!' (name part {QUALIFIED})",
        ),
        (
            {"a/b/c": "v"},
            f"error with field Metadata.Labels (label) = 'a/b/c' (a qualified name {QUALIFIED} "
            "with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName'))",
        ),
        (
            {"k": "bad value!"},
            f"error with field Metadata.Labels (value) = 'bad value!' ({LABEL_VALUE})",
        ),
        (
            {"k": "x" * 64},
            f"error with field Metadata.Labels (value) = '{'x' * 64}' "
            "(must be no more than 63 characters)",
        ),
    ],
)
def test_label_keys_and_values_are_refused_in_kubernetes_words(
    labels: dict[str, str], message: str
) -> None:
    """validateObjectMeta passes on IsQualifiedName's and IsValidLabelValue's reasons."""
    assert error_of(doc("Profile", labels=labels)) == message


def test_annotation_keys_are_checked_in_lower_case() -> None:
    normalize(doc("Profile", annotations={"Example.com/Note": "x"}))
    assert error_of(doc("Profile", annotations={"/note": "x"})) == (
        "error with field Metadata.Annotations (key) = '/note' (prefix part must be non-empty)"
    )


def test_prefixed_label_keys_are_accepted() -> None:
    labels = {"projectcalico.org/name": "web", "kubernetes.io/hostname": "n1", "empty": ""}
    assert normalize(doc("Profile", labels=labels))["metadata"]["labels"] == labels


def test_crd_form_is_accepted_and_read_as_v3() -> None:
    document = {
        **doc("IPPool", spec={"cidr": "10.0.0.0/8"}, generation=3),
        "apiVersion": "crd.projectcalico.org/v1",
    }
    resource = normalize(document)
    assert resource["apiVersion"] == V3
    assert "generation" not in resource["metadata"]


# --- other kinds --------------------------------------------------------------------------


def test_policy_types_default_from_rules() -> None:
    allow = {"action": "Allow"}
    assert normalize(doc("GlobalNetworkPolicy", spec={}))["spec"]["types"] == ["Ingress"]
    assert normalize(doc("GlobalNetworkPolicy", spec={"egress": [allow]}))["spec"]["types"] == [
        "Egress"
    ]
    both = normalize(doc("GlobalNetworkPolicy", spec={"egress": [allow], "ingress": [allow]}))
    assert both["spec"]["types"] == ["Ingress", "Egress"]


def test_rules_always_carry_source_and_destination_like_calicoctl_prints_them() -> None:
    spec = normalize(doc("NetworkPolicy", spec={"ingress": [{"action": "Deny"}]}))["spec"]
    assert spec["ingress"] == [{"action": "Deny", "source": {}, "destination": {}}]
    assert spec["tier"] == "default"


@pytest.mark.parametrize(
    ("rule", "fragment"),
    [
        (
            {"action": "Allow", "destination": {"ports": [80]}},
            "must set protocol to TCP or UDP or SCTP",
        ),
        (
            {"action": "Allow", "protocol": "TCP", "destination": {"ports": [70000]}},
            "between 1 and 65535",
        ),
        ({"action": "Allow", "protocol": "TCP", "destination": {"ports": ["90:80"]}}, "port range"),
        (
            {"action": "Allow", "icmp": {"type": 8}},
            "ICMP = '{\"type\":8}' (rules that specify ICMP fields must set protocol to ICMP)",
        ),
        ({"action": "Allow", "protocol": "ICMP", "icmp": {"code": 0}}, "without an ICMP type"),
        (
            {"action": "Allow", "protocol": "ICMP", "ipVersion": 6},
            "IPVersion = '6' (must set ipversion to '4' with protocol icmp)",
        ),
        ({"action": "Allow", "protocol": "GRE"}, "protocol must be one of"),
        ({"action": "Allow", "protocol": 0}, "1-255"),
        ({"action": "Permit"}, "must be one of Allow, Deny, Log, Pass"),
        ({"protocol": "TCP"}, "Action = '' (required field is missing)"),
        ({"action": "Allow", "source": {"nets": ["10.0.0.0/8", "fd00::/8"]}}, "both IPv4 and IPv6"),
        (
            {"action": "Allow", "source": {"notNets": ["0.0.0.0/0"]}},
            "Source.NotNets = '0.0.0.0/0' (catch-all CIDR in negation creates logical "
            "contradiction (matches no traffic))",
        ),
        ({"action": "Allow", "source": {"selector": "global()"}}, "global() can only be used"),
        (
            {"action": "Allow", "ipVersion": 4, "source": {"nets": ["fd00::/8"]}},
            "Source.Nets = '[fd00::/8]' (rule IP version doesn't match CIDR version)",
        ),
        ({"action": "Deny", "http": {"methods": ["GET"]}}, "HTTP = "),
        ({"action": "Deny", "http": {"methods": ["GET"]}}, "(only valid for Allow rules)"),
    ],
)
def test_invalid_rules_are_rejected(rule: dict[str, Any], fragment: str) -> None:
    assert fragment in error_of(doc("GlobalNetworkPolicy", spec={"ingress": [rule]}))


def test_rule_ports_accept_numbers_ranges_and_named_ports() -> None:
    rule = {
        "action": "Allow",
        "protocol": "TCP",
        "destination": {"ports": [80, "8000:8080", "http", "443"]},
    }
    spec = normalize(doc("GlobalNetworkPolicy", spec={"ingress": [rule]}))["spec"]
    assert spec["ingress"][0]["destination"]["ports"] == [80, "8000:8080", "http", 443]


def test_non_default_tier_policy_needs_the_tier_prefix() -> None:
    assert "prefixed with its tier" in error_of(
        doc("GlobalNetworkPolicy", name="p", spec={"tier": "security"})
    )
    normalize(doc("GlobalNetworkPolicy", name="security.p", spec={"tier": "security"}))


def test_default_tier_policy_names_carry_no_prefix_or_the_default_one() -> None:
    assert "must be '<name>' or 'default.<name>'" in error_of(
        doc("GlobalNetworkPolicy", name="security.p")
    )
    for name in ("p", "default.p"):
        normalize(doc("GlobalNetworkPolicy", name=name))
        normalize(doc("NetworkPolicy", name=name, namespace="prod"))
    normalize(doc("NetworkPolicy", name="knp.default.web", namespace="prod"))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            {"preDNAT": True},
            "error with field PolicySpec.ApplyOnForward = 'false' (ApplyOnForward must be true "
            "if either PreDNAT or DoNotTrack is true, for a given PolicySpec)",
        ),
        (
            {"doNotTrack": True, "applyOnForward": False},
            "error with field PolicySpec.ApplyOnForward = 'false' (ApplyOnForward must be true "
            "if either PreDNAT or DoNotTrack is true, for a given PolicySpec)",
        ),
        (
            {"preDNAT": True, "doNotTrack": True, "applyOnForward": True},
            "error with field PolicySpec.PreDNAT = 'true' (PreDNAT and DoNotTrack cannot both "
            "be true, for a given PolicySpec)",
        ),
        (
            {"preDNAT": True, "applyOnForward": True, "types": ["Ingress", "Egress"]},
            "error with field PolicySpec.Types = '[Ingress Egress]' (PreDNAT PolicySpec cannot "
            "have 'egress' Type)",
        ),
        (
            {"preDNAT": True, "applyOnForward": True, "egress": [{"action": "Deny"}]},
            "error with the following fields:\n"
            "-  PolicySpec.Egress (PreDNAT PolicySpec cannot have any Egress rules)\n"
            "-  PolicySpec.Types = '[Egress]' (PreDNAT PolicySpec cannot have 'egress' Type)\n",
        ),
    ],
)
def test_host_policy_flags_are_refused_in_calicos_words(spec: dict[str, Any], message: str) -> None:
    assert error_of(doc("GlobalNetworkPolicy", spec=spec)) == message


def test_valid_host_policy_flags_round_trip() -> None:
    for flags, rules in (
        ({"preDNAT": True, "applyOnForward": True}, {"ingress": [{"action": "Deny"}]}),
        ({"doNotTrack": True, "applyOnForward": True}, {"egress": [{"action": "Allow"}]}),
    ):
        spec = normalize(doc("GlobalNetworkPolicy", spec={**flags, **rules}))["spec"]
        assert {key: spec[key] for key in flags} == flags


def test_order_written_as_whole_float_prints_as_integer_like_go() -> None:
    spec = normalize(doc("GlobalNetworkPolicy", spec={"order": 100.0}))["spec"]
    assert spec["order"] == 100 and isinstance(spec["order"], int)


def test_node_bgp_block_may_not_be_empty() -> None:
    assert "Spec.BGP should not be empty" in error_of(doc("Node", spec={"bgp": {}}))


def test_node_addresses_need_a_prefix_length_and_asn_accepts_asdot() -> None:
    assert "prefix length" in error_of(doc("Node", spec={"bgp": {"ipv4Address": "192.0.2.1"}}))
    spec = normalize(
        doc("Node", spec={"bgp": {"ipv4Address": "192.0.2.1/24", "asNumber": "1.10"}})
    )["spec"]
    assert spec["bgp"]["asNumber"] == 65546


def test_bgp_peer_needs_an_as_number_with_a_peer_ip() -> None:
    assert "asNumber must be set" in error_of(doc("BGPPeer", spec={"peerIP": "192.0.2.1"}))
    assert "PeerIP field must be empty when PeerSelector is specified" in error_of(
        doc("BGPPeer", spec={"peerSelector": "all()", "peerIP": "192.0.2.1", "asNumber": 64512})
    )
    normalize(doc("BGPPeer", spec={"peerIP": "[fd00::1]:1179", "asNumber": 65001}))
    assert "invalid peer port" in error_of(
        doc("BGPPeer", spec={"peerIP": "192.0.2.1:99999", "asNumber": 1})
    )


def test_bgp_configuration_keeps_explicit_mesh_false_and_checks_communities() -> None:
    spec = normalize(
        doc("BGPConfiguration", name="default", spec={"nodeToNodeMeshEnabled": False})
    )["spec"]
    assert spec == {"nodeToNodeMeshEnabled": False}
    assert "community value" in error_of(
        doc("BGPConfiguration", spec={"communities": [{"name": "c", "value": "65536:1"}]})
    )


def test_workload_endpoint_networks_must_be_single_addresses() -> None:
    assert "multiple addresses" in error_of(
        doc("WorkloadEndpoint", spec={"ipNetworks": ["10.0.0.0/24"]})
    )
    spec = normalize(
        doc(
            "WorkloadEndpoint",
            spec={"ipNetworks": ["10.0.0.5"], "interfaceName": "cali0123456789a"},
        )
    )["spec"]
    assert spec["ipNetworks"] == ["10.0.0.5/32"]
    assert error_of(doc("WorkloadEndpoint", spec={"interfaceName": "x" * 16})) == (
        f"error with field InterfaceName = '{'x' * 16}' "
        "(Reason: failed to validate Field: InterfaceName because of Tag: interface )"
    )


def test_host_endpoint_needs_an_interface_or_expected_ips() -> None:
    assert "no interface or expected IPs" in error_of(doc("HostEndpoint", spec={"node": "n1"}))
    normalize(doc("HostEndpoint", spec={"node": "n1", "interfaceName": "*"}))


def test_singleton_kinds_only_accept_their_names() -> None:
    assert error_of(doc("ClusterInformation", name="other")) == (
        'Cannot create a Cluster Information resource with a name other than "default"'
    )
    normalize(doc("ClusterInformation", name="default", spec={"datastoreReady": False}))


def test_ipam_configuration_rejects_the_combinations_calico_rejects() -> None:
    assert "at the same time" in error_of(
        doc("IPAMConfiguration", name="default", spec={"autoAllocateBlocks": False})
    )
    assert "requires StrictAffinity" in error_of(
        doc("IPAMConfiguration", name="default", spec={"maxBlocksPerHost": 4})
    )


# --- registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "kind"),
    [
        ("ippool", "IPPool"),
        ("IPPools", "IPPool"),
        ("ipp", "IPPool"),
        ("pools", "IPPool"),
        ("gnp", "GlobalNetworkPolicy"),
        ("np", "NetworkPolicy"),
        ("policies", "NetworkPolicy"),
        ("bgpconfig", "BGPConfiguration"),
        ("bp", "BGPPeer"),
        ("hep", "HostEndpoint"),
        ("weps", "WorkloadEndpoint"),
        ("netsets", "NetworkSet"),
        ("gnetset", "GlobalNetworkSet"),
        ("felixconfig", "FelixConfiguration"),
        ("clusterinfo", "ClusterInformation"),
        ("kubecontrollersconfig", "KubeControllersConfiguration"),
        ("nodes", "Node"),
        ("reservations", "IPReservation"),
        ("tiers", "Tier"),
        ("bgpfilters", "BGPFilter"),
    ],
)
def test_calicoctl_aliases_resolve(alias: str, kind: str) -> None:
    assert resolve(alias).name == kind


def test_every_registered_kind_imports_and_knows_its_own_name() -> None:
    for name in kind_names():
        assert by_kind_name(name).name == name


def test_kind_names_in_documents_are_case_sensitive() -> None:
    with pytest.raises(UnknownKind):
        by_kind_name("ippool")


# --- codec --------------------------------------------------------------------------------

SAMPLES = [
    doc(
        "IPPool",
        spec={"cidr": "10.244.0.0/16", "ipipMode": "Always", "natOutgoing": True},
        labels={"a": "b"},
        creationTimestamp="2025-02-01T08:37:42Z",
    ),
    doc(
        "GlobalNetworkPolicy",
        name="default.allow-dns",
        spec={
            "order": 10.5,
            "selector": "has(app) && role in {'a', 'b'}",
            "egress": [
                {
                    "action": "Allow",
                    "protocol": "UDP",
                    "destination": {"ports": [53], "selector": 'k8s-app == "kube-dns"'},
                }
            ],
        },
    ),
    doc(
        "Node",
        name="n1",
        spec={
            "bgp": {"ipv4Address": "192.0.2.1/24"},
            "addresses": [{"address": "192.0.2.1", "type": "InternalIP"}],
        },
    ),
    doc("NetworkSet", spec={"nets": ["198.51.100.0/24"]}, namespace="prod"),
]


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda d: d["kind"])
def test_yaml_round_trip_is_byte_stable(sample: dict[str, Any]) -> None:
    first = dump_yaml(normalize(sample))
    again = dump_yaml(normalize(parse_documents(first, "t")[0]))
    assert again == first


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda d: d["kind"])
def test_json_round_trip_is_byte_stable(sample: dict[str, Any]) -> None:
    first = dump_json(normalize(sample))
    again = dump_json(normalize(parse_documents(first, "t")[0]))
    assert again == first


def test_json_output_escapes_html_characters_like_go() -> None:
    assert (
        dump_json({"s": "a && b < c > d"})
        == '{\n  "s": "a \\u0026\\u0026 b \\u003c c \\u003e d"\n}'
    )


def test_yaml_output_double_quotes_strings_that_look_like_other_types() -> None:
    text = dump_yaml({"t": "2025-02-01T08:37:42Z", "b": "true", "n": "26", "s": "plain"})
    assert 't: "2025-02-01T08:37:42Z"' in text and 'b: "true"' in text and 'n: "26"' in text
    assert "s: plain" in text


def test_yaml_timestamps_are_read_as_strings() -> None:
    assert parse_documents("t: 2025-02-01T08:37:42Z\n", "t") == [{"t": "2025-02-01T08:37:42Z"}]


def test_duplicate_yaml_keys_are_rejected_with_the_line() -> None:
    with pytest.raises(ValueError, match=r"f.yaml: .*duplicate key 'a'.*line 2"):
        parse_documents("a: 1\na: 2\n", "f.yaml")


def test_multi_document_yaml_and_lists_expand_to_items() -> None:
    text = (
        "kind: List\napiVersion: v1\nitems:\n- {kind: A}\n- {kind: B}\n---\n"
        "kind: IPPoolList\nitems: [{kind: C}]\n---\n---\nkind: D\n"
    )
    docs = expand_lists(parse_documents(text, "t"))
    assert [d["kind"] for d in docs] == ["A", "B", "C", "D"]


def test_concatenated_json_documents_are_all_read() -> None:
    assert len(parse_documents('{"a": 1}\n{"b": 2}\n', "t")) == 2


def test_validation_errors_keep_each_field_error() -> None:
    with pytest.raises(ValidationErrors) as info:
        normalize(doc("IPPool", spec={"cidr": "x", "vxlanMode": "x"}))
    assert [e.path for e in info.value.errors] == ["spec.cidr", "spec.vxlanMode"]


def test_global_selector_is_only_for_rule_namespace_selectors() -> None:
    for kind in ("NetworkPolicy", "GlobalNetworkPolicy"):
        assert "global() can only be used" in error_of(doc(kind, spec={"selector": "global()"}))


def test_namespace_must_be_a_dns_label() -> None:
    text = error_of(doc("NetworkSet", namespace="Bad/NS"))
    assert "error with field Namespace = 'Bad/NS'" in text


def test_zero_port_and_empty_required_values_are_rejected() -> None:
    assert "Port = '0' (Reason: failed to validate Field: Port because of Tag: gt )" in error_of(
        doc(
            "HostEndpoint",
            spec={
                "node": "n",
                "interfaceName": "eth0",
                "ports": [{"name": "p", "protocol": "TCP", "port": 0}],
            },
        )
    )


def test_empty_string_in_an_optional_enum_means_unset_as_in_go() -> None:
    spec = normalize(doc("IPPool", spec={"cidr": "10.0.0.0/8", "ipipMode": ""}))["spec"]
    assert spec["ipipMode"] == "Never"


def test_owner_references_must_be_plain_json() -> None:
    assert "plain JSON" in error_of(doc("Profile", ownerReferences=[float("nan")]))
