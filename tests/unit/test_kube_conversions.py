"""Kubernetes NetworkPolicy, Namespace and ServiceAccount as kube-controllers writes them
into Calico (pycalico.kube.conversions), and the apiserver's validation in front of it."""

from __future__ import annotations

from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.kube import conversions
from pycalico.kube.validation import KubeInvalid
from pycalico.selector import parse

K8S = "projectcalico.org/orchestrator == 'k8s'"


def policy_doc(spec: Any, name: str = "p", namespace: str | None = "default") -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": meta,
        "spec": spec,
    }


def convert(spec: Any) -> dict[str, Any]:
    return conversions.network_policy(policy_doc(spec))["spec"]


def ingress_rules(*rules: Any, **spec: Any) -> list[dict[str, Any]]:
    return convert({"podSelector": {}, "ingress": list(rules), **spec})["ingress"]


def refused(spec: Any, *fragments: str) -> str:
    with pytest.raises(KubeInvalid) as info:
        convert(spec)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message
    return message


# --- the seeds' two policies, converted whole ------------------------------------------


def test_seed_requirement_1_allows_tcp_80_to_app_web_from_run_client1_only() -> None:
    doc = policy_doc(
        {
            "podSelector": {"matchLabels": {"app": "web"}},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [{"podSelector": {"matchLabels": {"run": "client1"}}}],
                    "ports": [{"protocol": "TCP", "port": 80}],
                }
            ],
        },
        name="test-network-policy",
    )
    assert conversions.network_policy(doc) == {
        "kind": "NetworkPolicy",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {
            "name": "knp.default.test-network-policy",
            "namespace": "default",
            "labels": {"projectcalico.org/tier": "default"},
        },
        "spec": {
            "tier": "default",
            "order": 1000,
            "ingress": [
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"selector": f"{K8S} && run == 'client1'"},
                    "destination": {"ports": [80]},
                }
            ],
            "selector": f"{K8S} && app == 'web'",
            "types": ["Ingress"],
        },
    }


def test_seed_requirement_2_allows_ingress_only_from_pods_of_the_same_namespace() -> None:
    doc = policy_doc(
        {
            "podSelector": {},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {}}]}],
        },
        name="deny-from-other-namespaces",
    )
    resource = conversions.network_policy(doc)
    assert resource["metadata"]["name"] == "knp.default.deny-from-other-namespaces"
    # No namespaceSelector: the source is limited to the policy's own namespace.
    assert resource["spec"]["ingress"] == [
        {"action": "Allow", "source": {"selector": K8S}, "destination": {}}
    ]
    assert resource["spec"]["selector"] == K8S


def test_output_is_a_canonical_calico_resource() -> None:
    resource = conversions.network_policy(
        policy_doc(
            {
                "podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists"}]},
                "ingress": [{"from": [{"ipBlock": {"cidr": "10.1.0.0/16"}}]}],
                "egress": [{"ports": [{"port": 53, "protocol": "UDP"}]}],
            },
            namespace="prod",
        )
    )
    assert normalize(resource) == resource
    assert resource["metadata"]["namespace"] == "prod"


def test_namespace_defaults_to_default() -> None:
    resource = conversions.network_policy(policy_doc({"podSelector": {}}, namespace=None))
    assert resource["metadata"]["namespace"] == "default"


# --- selectors ------------------------------------------------------------------------------


def test_pod_selector_match_labels_are_sorted_by_key_after_the_orchestrator_clause() -> None:
    spec = convert({"podSelector": {"matchLabels": {"tier": "db", "app": "shop"}}})
    assert spec["selector"] == f"{K8S} && app == 'shop' && tier == 'db'"


def test_match_expressions_follow_match_labels_in_their_own_order() -> None:
    spec = convert(
        {
            "podSelector": {
                "matchLabels": {"app": "shop"},
                "matchExpressions": [
                    {"key": "env", "operator": "NotIn", "values": ["dev", "test"]},
                    {"key": "tier", "operator": "In", "values": ["db", "cache"]},
                    {"key": "canary", "operator": "DoesNotExist"},
                    {"key": "team", "operator": "Exists"},
                ],
            }
        }
    )
    assert spec["selector"] == (
        f"{K8S} && app == 'shop' && env not in {{ 'dev', 'test' }} && "
        "tier in { 'db', 'cache' } && ! has(canary) && has(team)"
    )


@pytest.mark.parametrize(
    ("expression", "matching", "not_matching"),
    [
        ({"key": "tier", "operator": "In", "values": ["db", "cache"]}, {"tier": "db"}, {}),
        (
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"tier": "web"},
            {"tier": "db"},
        ),
        ({"key": "tier", "operator": "NotIn", "values": ["db"]}, {}, {"tier": "db"}),
        ({"key": "tier", "operator": "Exists"}, {"tier": ""}, {"app": "x"}),
        ({"key": "tier", "operator": "DoesNotExist"}, {"app": "x"}, {"tier": "db"}),
    ],
)
def test_match_expression_operators_select_what_kubernetes_selects(
    expression: dict[str, Any], matching: dict[str, str], not_matching: dict[str, str]
) -> None:
    selector = parse(convert({"podSelector": {"matchExpressions": [expression]}})["selector"])
    k8s_pod = {"projectcalico.org/orchestrator": "k8s"}
    assert selector.evaluate({**k8s_pod, **matching})
    assert not selector.evaluate({**k8s_pod, **not_matching})
    # Only Kubernetes pods: a `cni` workload with the same labels is not selected.
    assert not selector.evaluate({"projectcalico.org/orchestrator": "cni", **matching})


def test_empty_or_missing_pod_selector_selects_every_pod_of_the_namespace() -> None:
    assert convert({"podSelector": {}})["selector"] == K8S
    assert convert({})["selector"] == K8S


def test_empty_namespace_selector_is_all_namespaces() -> None:
    [rule] = ingress_rules({"from": [{"namespaceSelector": {}}]})
    assert rule["source"] == {"selector": K8S, "namespaceSelector": "all()"}


def test_namespace_selector_is_translated_without_the_orchestrator_clause() -> None:
    [rule] = ingress_rules(
        {
            "from": [
                {
                    "namespaceSelector": {
                        "matchLabels": {"team": "a"},
                        "matchExpressions": [{"key": "env", "operator": "In", "values": ["p"]}],
                    }
                }
            ]
        }
    )
    assert rule["source"] == {
        "selector": K8S,
        "namespaceSelector": "team == 'a' && env in { 'p' }",
    }


def test_pod_and_namespace_selector_in_one_peer_are_both_kept() -> None:
    [rule] = ingress_rules(
        {
            "from": [
                {
                    "podSelector": {"matchLabels": {"role": "client"}},
                    "namespaceSelector": {"matchLabels": {"team": "a"}},
                }
            ]
        }
    )
    assert rule["source"] == {
        "selector": f"{K8S} && role == 'client'",
        "namespaceSelector": "team == 'a'",
    }


def test_pod_selector_peer_without_namespace_selector_stays_in_the_policy_namespace() -> None:
    [rule] = ingress_rules({"from": [{"podSelector": {"matchLabels": {"role": "client"}}}]})
    assert "namespaceSelector" not in rule["source"]


def test_null_selectors_count_as_absent() -> None:
    [rule] = ingress_rules({"from": [{"podSelector": None, "namespaceSelector": {}}]})
    assert rule["source"] == {"selector": K8S, "namespaceSelector": "all()"}


# --- ipBlock ---------------------------------------------------------------------------------


def test_ip_block_becomes_nets_and_except_becomes_not_nets_with_no_selector() -> None:
    [rule] = ingress_rules(
        {
            "from": [
                {"ipBlock": {"cidr": "172.17.0.0/16", "except": ["172.17.1.0/24", "172.17.2.9/32"]}}
            ]
        }
    )
    assert rule["source"] == {
        "nets": ["172.17.0.0/16"],
        "notNets": ["172.17.1.0/24", "172.17.2.9/32"],
    }


def test_ip_block_host_bits_are_masked_as_calico_parses_cidrs() -> None:
    [rule] = ingress_rules(
        {"from": [{"ipBlock": {"cidr": "10.1.2.3/8", "except": ["10.1.2.3/16"]}}]}
    )
    assert rule["source"] == {"nets": ["10.0.0.0/8"], "notNets": ["10.1.0.0/16"]}


def test_ipv6_ip_block() -> None:
    [rule] = ingress_rules({"from": [{"ipBlock": {"cidr": "2001:db8::1/64"}}]})
    assert rule["source"] == {"nets": ["2001:db8::/64"]}


# --- rules, peers and ports ----------------------------------------------------------------


def test_an_empty_rule_allows_everything() -> None:
    assert ingress_rules({}) == [{"action": "Allow", "source": {}, "destination": {}}]


def test_empty_rule_list_allows_nothing_but_still_isolates() -> None:
    spec = convert({"podSelector": {}, "ingress": []})
    assert "ingress" not in spec
    assert spec["types"] == ["Ingress"]


def test_ports_without_peers_allow_those_ports_from_anywhere() -> None:
    assert ingress_rules({"from": [], "ports": [{"port": 80}]}) == [
        {"action": "Allow", "protocol": "TCP", "source": {}, "destination": {"ports": [80]}}
    ]


def test_protocol_defaults_to_tcp() -> None:
    [rule] = ingress_rules({"ports": [{"port": 443}]})
    assert rule["protocol"] == "TCP"


def test_a_port_entry_without_a_port_allows_every_port_of_its_protocol() -> None:
    assert ingress_rules({"ports": [{}]}) == [
        {"action": "Allow", "protocol": "TCP", "source": {}, "destination": {}}
    ]
    for ports in (
        [{"port": 80}, {"protocol": "TCP"}],
        [{"protocol": "TCP"}, {"port": 80}],
    ):
        [rule] = ingress_rules({"ports": ports})
        assert rule == {"action": "Allow", "protocol": "TCP", "source": {}, "destination": {}}


def test_one_rule_per_protocol_and_peer_protocols_sorted() -> None:
    rules = ingress_rules(
        {
            "from": [
                {"podSelector": {"matchLabels": {"a": "1"}}},
                {"ipBlock": {"cidr": "10.0.0.0/8"}},
            ],
            "ports": [
                {"protocol": "UDP", "port": 53},
                {"protocol": "TCP", "port": 80},
                {"protocol": "SCTP", "port": 9},
                {"protocol": "TCP", "port": 443},
            ],
        }
    )
    assert [(r["protocol"], r["destination"]["ports"], r["source"]) for r in rules] == [
        ("SCTP", [9], {"selector": f"{K8S} && a == '1'"}),
        ("SCTP", [9], {"nets": ["10.0.0.0/8"]}),
        ("TCP", [80, 443], {"selector": f"{K8S} && a == '1'"}),
        ("TCP", [80, 443], {"nets": ["10.0.0.0/8"]}),
        ("UDP", [53], {"selector": f"{K8S} && a == '1'"}),
        ("UDP", [53], {"nets": ["10.0.0.0/8"]}),
    ]


def test_each_k8s_rule_gives_its_own_calico_rules_in_order() -> None:
    rules = ingress_rules({"ports": [{"port": 81}]}, {"ports": [{"port": 80}]})
    assert [r["destination"]["ports"] for r in rules] == [[81], [80]]


def test_end_port_makes_a_range() -> None:
    [rule] = ingress_rules({"ports": [{"port": 32000, "endPort": 32768}]})
    assert rule["destination"]["ports"] == ["32000:32768"]
    [rule] = ingress_rules({"ports": [{"port": 8080, "endPort": 8080}]})
    assert rule["destination"]["ports"] == [8080]


def test_ports_of_one_protocol_are_coalesced_named_ports_first() -> None:
    [rule] = ingress_rules(
        {
            "ports": [
                {"port": 82},
                {"port": 80},
                {"port": "http"},
                {"port": 81},
                {"port": 90},
                {"port": 85, "endPort": 89},
                {"port": 80},
            ]
        }
    )
    assert rule["destination"]["ports"] == ["http", "80:82", "85:90"]


def test_overlapping_ranges_merge() -> None:
    [rule] = ingress_rules(
        {"ports": [{"port": 80, "endPort": 90}, {"port": 85, "endPort": 100}, {"port": 70}]}
    )
    assert rule["destination"]["ports"] == [70, "80:100"]


def test_a_single_numeric_port_keeps_the_order_it_was_written_in() -> None:
    [rule] = ingress_rules({"ports": [{"port": 80}, {"port": "metrics"}]})
    assert rule["destination"]["ports"] == [80, "metrics"]


def test_named_ports_pass_through() -> None:
    [tcp, udp] = ingress_rules({"ports": [{"port": "http"}, {"port": "dns", "protocol": "UDP"}]})
    assert (tcp["protocol"], tcp["destination"]["ports"]) == ("TCP", ["http"])
    assert (udp["protocol"], udp["destination"]["ports"]) == ("UDP", ["dns"])


def test_simplify_ports_directly() -> None:
    assert conversions.simplify_ports([]) == []
    assert conversions.simplify_ports([80, 80]) == [80]
    assert conversions.simplify_ports([81, "x", 80]) == ["x", "80:81"]
    assert conversions.simplify_ports(["1:3", 4, 6]) == ["1:4", 6]


def test_egress_rules_put_peers_and_ports_in_the_destination() -> None:
    spec = convert(
        {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {
                    "to": [
                        {"namespaceSelector": {"matchLabels": {"team": "b"}}},
                        {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.0.0/16"]}},
                    ],
                    "ports": [{"port": 53, "protocol": "UDP"}],
                }
            ],
        }
    )
    assert spec["egress"] == [
        {
            "action": "Allow",
            "protocol": "UDP",
            "source": {},
            "destination": {"ports": [53], "selector": K8S, "namespaceSelector": "team == 'b'"},
        },
        {
            "action": "Allow",
            "protocol": "UDP",
            "source": {},
            "destination": {"ports": [53], "nets": ["0.0.0.0/0"], "notNets": ["169.254.0.0/16"]},
        },
    ]
    assert "ingress" not in spec and spec["types"] == ["Egress"]


# --- policy types ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "types"),
    [
        ({}, ["Ingress"]),
        ({"ingress": [{}]}, ["Ingress"]),
        ({"egress": [{}]}, ["Ingress", "Egress"]),
        ({"egress": []}, ["Ingress"]),
        ({"policyTypes": []}, ["Ingress"]),
        ({"policyTypes": ["Egress"]}, ["Egress"]),
        ({"policyTypes": ["Egress", "Ingress"]}, ["Ingress", "Egress"]),
        ({"policyTypes": ["Ingress", "Ingress"]}, ["Ingress"]),
        ({"policyTypes": ["Ingress"], "egress": [{}]}, ["Ingress"]),
    ],
)
def test_policy_types_as_the_apiserver_defaults_and_calico_orders_them(
    extra: dict[str, Any], types: list[str]
) -> None:
    assert convert({"podSelector": {}, **extra})["types"] == types


def test_rules_of_a_direction_not_in_the_types_are_still_converted() -> None:
    spec = convert({"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{}]})
    assert spec["types"] == ["Ingress"]
    assert spec["egress"] == [{"action": "Allow", "source": {}, "destination": {}}]


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ({"podSelectr": {}}, 'unknown field "spec.podSelectr"'),
        ({"ingress": [{"form": []}]}, 'unknown field "spec.ingress[0].form"'),
        ({"egress": [{"from": []}]}, 'unknown field "spec.egress[0].from"'),
        ({"ingress": [{"from": [{"podselector": {}}]}]}, 'unknown field "spec.ingress[0].from[0]'),
        (
            {"ingress": [{"ports": [{"prot": "TCP"}]}]},
            'unknown field "spec.ingress[0].ports[0].prot"',
        ),
        ({"podSelector": {"matchLabel": {}}}, 'unknown field "spec.podSelector.matchLabel"'),
        (
            {"ingress": [{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "exclude": []}}]}]},
            'unknown field "spec.ingress[0].from[0].ipBlock.exclude"',
        ),
    ],
)
def test_unknown_fields_are_refused_by_their_path(spec: Any, fragment: str) -> None:
    refused(spec, 'The NetworkPolicy "p" is invalid', fragment)


def test_unknown_top_level_field_is_refused() -> None:
    doc = {**policy_doc({}), "extra": 1}
    with pytest.raises(KubeInvalid, match='unknown field "extra"'):
        conversions.network_policy(doc)


@pytest.mark.parametrize(
    ("block", "fragment"),
    [
        ({"cidr": "10.0.0.300/8"}, 'cidr: Invalid value: "10.0.0.300/8": must be a valid CIDR'),
        ({"cidr": "10.0.0.1"}, "must be a valid CIDR"),
        ({}, "ipBlock.cidr: Required value"),
        ({"cidr": "10.0.0.0/8", "except": ["11.0.0.0/16"]}, "must be a strict subset of `cidr`"),
        ({"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}, "must be a strict subset of `cidr`"),
        ({"cidr": "10.0.0.0/8", "except": ["2001:db8::/64"]}, "must be a strict subset"),
        ({"cidr": "10.0.0.0/8", "except": ["junk"]}, 'except[0]: Invalid value: "junk"'),
    ],
)
def test_bad_ip_blocks(block: dict[str, Any], fragment: str) -> None:
    refused({"ingress": [{"from": [{"ipBlock": block}]}]}, fragment)


@pytest.mark.parametrize(
    ("port", "fragment"),
    [
        ({"port": 0}, "port: Invalid value: 0: must be between 1 and 65535, inclusive"),
        ({"port": 70000}, "must be between 1 and 65535, inclusive"),
        ({"port": "HTTP"}, "must contain only alpha-numeric characters"),
        ({"port": "a--b"}, "must not contain consecutive hyphens"),
        ({"port": "-ab"}, "must not begin or end with a hyphen"),
        ({"port": "1234"}, "must contain at least one letter"),
        ({"port": "abcdefghijklmnop"}, "must be no more than 15 characters"),
        ({"port": 1.5}, "must be a port number or a port name"),
        ({"endPort": 90}, "endPort: Invalid value: 90: may not be specified when `port` is not"),
        ({"port": "http", "endPort": 90}, "may not be specified when `port` is non-numeric"),
        ({"port": 90, "endPort": 80}, "endPort: Invalid value: 80: must be greater than or equal"),
        ({"port": 90, "endPort": 70000}, "endPort: Invalid value: 70000: must be between"),
        ({"port": 90, "endPort": "95"}, 'endPort: Invalid value: "95": must be an integer'),
        (
            {"port": 80, "protocol": "ICMP"},
            'protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP"',
        ),
        ({"port": 80, "protocol": "tcp"}, 'Unsupported value: "tcp"'),
    ],
)
def test_bad_ports_and_protocols(port: dict[str, Any], fragment: str) -> None:
    refused({"ingress": [{"ports": [port]}]}, "spec.ingress[0].ports[0].", fragment)


@pytest.mark.parametrize(
    ("selector", "fragment"),
    [
        ({"matchLabels": {"bad key": "x"}}, 'Selector.matchLabels: Invalid value: "bad key"'),
        ({"matchLabels": {"app": "not valid!"}}, 'Invalid value: "not valid!"'),
        ({"matchLabels": {"app": 5}}, "must be a map of strings to strings"),
        (
            {"matchExpressions": [{"key": "a", "operator": "Equals", "values": ["x"]}]},
            'operator: Invalid value: "Equals": not a valid selector operator',
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "In"}]},
            "values: Required value: must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
            "must be specified when `operator` is 'In' or 'NotIn'",
        ),
        (
            {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
            "values: Forbidden: may not be specified when `operator` is 'Exists'",
        ),
        ({"matchExpressions": [{"operator": "Exists"}]}, "matchExpressions[0].key: Required value"),
        (
            {"matchExpressions": [{"key": "a", "operator": "In", "values": ["a b"]}]},
            'values[0]: Invalid value: "a b"',
        ),
        ({"matchExpressions": [{"key": "a", "operator": "Exists", "vals": []}]}, "unknown field"),
    ],
)
def test_bad_label_selectors(selector: dict[str, Any], fragment: str) -> None:
    refused({"podSelector": selector}, fragment)
    refused({"ingress": [{"from": [{"namespaceSelector": selector}]}]}, fragment)


def test_a_peer_must_say_what_it_selects() -> None:
    refused({"ingress": [{"from": [{}]}]}, "spec.ingress[0].from[0]: Required value: must specify")


def test_ip_block_cannot_be_combined_with_selectors() -> None:
    refused(
        {"egress": [{"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}, "podSelector": {}}]}]},
        "spec.egress[0].to[0]: Forbidden: may not specify both ipBlock and another peer",
    )


@pytest.mark.parametrize(
    ("types", "fragment"),
    [
        (["Ingress", "Egress", "Ingress"], "may not specify more than two policyTypes"),
        (["ingress"], 'policyTypes[0]: Unsupported value: "ingress"'),
        ("Ingress", 'policyTypes: Invalid value: "Ingress": must be a list'),
    ],
)
def test_bad_policy_types(types: Any, fragment: str) -> None:
    refused({"policyTypes": types}, fragment)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("podSelector: {}", 'spec: Invalid value: "podSelector: {}": must be an object'),
        ({"ingress": {"from": []}}, "spec.ingress: Invalid value"),
        ({"ingress": [{"from": "everyone"}]}, "spec.ingress[0].from: Invalid value"),
    ],
)
def test_wrong_shapes_are_one_line_errors(spec: Any, fragment: str) -> None:
    refused(spec, fragment)


def test_bad_names_and_namespaces() -> None:
    with pytest.raises(KubeInvalid, match=r"metadata.name: Required value"):
        conversions.network_policy(policy_doc({}, name=""))
    with pytest.raises(KubeInvalid, match=r'metadata.name: Invalid value: "Web"'):
        conversions.network_policy(policy_doc({}, name="Web"))
    with pytest.raises(KubeInvalid, match=r'metadata.namespace: Invalid value: "a.b"'):
        conversions.network_policy(policy_doc({}, namespace="a.b"))


def test_several_errors_are_listed_together_on_one_line() -> None:
    message = refused(
        {"podSelectr": {}, "ingress": [{"ports": [{"port": 0}]}]},
        '[unknown field "spec.podSelectr", spec.ingress[0].ports[0].port',
    )
    assert message.endswith("]")


# --- Namespace and ServiceAccount profiles --------------------------------------------------


def namespace_doc(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if labels is not None:
        meta["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def test_namespace_profile_allows_all_and_carries_prefixed_labels() -> None:
    assert conversions.namespace_profile(namespace_doc("azhe", {"team": "a", "env": "prod"})) == {
        "kind": "Profile",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "kns.azhe"},
        "spec": {
            "ingress": [{"action": "Allow", "source": {}, "destination": {}}],
            "egress": [{"action": "Allow", "source": {}, "destination": {}}],
            "labelsToApply": {
                "pcns.env": "prod",
                "pcns.kubernetes.io/metadata.name": "azhe",
                "pcns.projectcalico.org/name": "azhe",
                "pcns.team": "a",
            },
        },
    }


def test_namespace_name_label_is_set_by_the_apiserver_whatever_the_manifest_says() -> None:
    profile = conversions.namespace_profile(
        namespace_doc("x", {"kubernetes.io/metadata.name": "y"})
    )
    assert profile["spec"]["labelsToApply"]["pcns.kubernetes.io/metadata.name"] == "x"


def test_namespace_selector_matches_the_profile_labels_once_prefixed() -> None:
    [rule] = ingress_rules({"from": [{"namespaceSelector": {"matchLabels": {"team": "a"}}}]})
    profile = conversions.namespace_profile(namespace_doc("azhe", {"team": "a"}))
    labels = profile["spec"]["labelsToApply"]
    namespace_labels = {k.removeprefix("pcns."): v for k, v in labels.items()}
    assert parse(rule["source"]["namespaceSelector"]).evaluate(namespace_labels)
    assert not parse(rule["source"]["namespaceSelector"]).evaluate({"team": "b"})


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        (namespace_doc("a.b"), 'The Namespace "a.b" is invalid: metadata.name: Invalid value'),
        (namespace_doc("x", {"ok": "not ok!"}), 'metadata.labels: Invalid value: "not ok!"'),
        ({**namespace_doc("x"), "spec": {"finalizer": []}}, 'unknown field "spec.finalizer"'),
        (
            {**namespace_doc("x"), "metadata": {"name": "x", "namespace": "y"}},
            "metadata.namespace: Forbidden",
        ),
        ({**namespace_doc("x"), "metadata": {"name": "x", "label": {}}}, "metadata.label"),
    ],
)
def test_bad_namespaces(doc: dict[str, Any], fragment: str) -> None:
    with pytest.raises(KubeInvalid) as info:
        conversions.namespace_profile(doc)
    assert fragment in str(info.value)


def test_namespace_status_from_kubectl_get_is_accepted() -> None:
    doc = {**namespace_doc("x"), "spec": {"finalizers": ["kubernetes"]}}
    doc["status"] = {"phase": "Active"}
    assert conversions.namespace_profile(doc)["metadata"]["name"] == "kns.x"


def test_service_account_profile_has_prefixed_labels_and_no_rules() -> None:
    doc = {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": "api", "namespace": "shop", "labels": {"role": "backend"}},
    }
    assert conversions.service_account_profile(doc) == {
        "kind": "Profile",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {"name": "ksa.shop.api"},
        "spec": {"labelsToApply": {"pcsa.projectcalico.org/name": "api", "pcsa.role": "backend"}},
    }


def test_service_account_namespace_defaults_to_default() -> None:
    doc = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}}
    assert conversions.service_account_profile(doc)["metadata"]["name"] == "ksa.default.default"
