"""What the lab page's JSON endpoints answer: the lab's nodes and pods from its record, and
a pod's policies as the policy calculation plans them for its endpoint (the plan Felix
renders and `calicoctl policy explain` walks): tiers in order, policies in order inside
each, only those selecting the pod in that direction, then its profiles."""

from __future__ import annotations

from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.lab.page_requests import RequestError
from pycalico.lab.page_views import pod_policies, rule_text, summary
from pycalico.lab.state import LabState, Pod
from pycalico.policy import calc, model
from pycalico.policy.inputs import Reader


def resource(kind: str, name: str, spec: dict[str, Any], ns: str | None = None,
             labels: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    if labels:
        meta["labels"] = labels
    return normalize(
        {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}
    )


def wep(ns: str, pod: str, ip: str, **labels: str) -> dict[str, Any]:
    return resource(
        "WorkloadEndpoint",
        f"node2-k8s-{pod}-eth0",
        {
            "node": "node2",
            "orchestrator": "k8s",
            "pod": pod,
            "endpoint": "eth0",
            "interfaceName": f"cali{pod}",
            "ipNetworks": [f"{ip}/32"],
            "profiles": [f"kns.{ns}", "ksa.shop.default"],
        },
        ns,
        {**labels, "projectcalico.org/namespace": ns, "projectcalico.org/orchestrator": "k8s"},
    )


KNS_SHOP = resource(
    "Profile",
    "kns.shop",
    {
        "ingress": [{"action": "Allow"}],
        "egress": [{"action": "Allow"}],
        "labelsToApply": {"pcns.projectcalico.org/name": "shop"},
    },
)
LISTED: dict[str, list[dict[str, Any]]] = {
    "Profile": [KNS_SHOP],
    "Tier": [resource("Tier", "security", {"order": 100})],
    "NetworkPolicy": [
        resource("NetworkPolicy", "allow-web", {
            "order": 200, "selector": "app == 'web'",
            "ingress": [{"action": "Allow", "protocol": "TCP",
                         "source": {"selector": "app == 'client'"},
                         "destination": {"ports": [80, "8000:8080", "http"]}}],
        }, "shop"),
        resource("NetworkPolicy", "knp.default.web-egress", {
            "order": 1000, "selector": "app == 'web'", "types": ["Egress"],
            "egress": [{"action": "Deny", "destination": {"nets": ["10.0.0.0/8"]}}],
        }, "shop"),
        resource("NetworkPolicy", "db-only", {"selector": "app == 'db'",
                                              "ingress": [{"action": "Allow"}]}, "shop"),
        resource("NetworkPolicy", "other-ns", {"selector": "app == 'web'",
                                               "ingress": [{"action": "Deny"}]}, "other"),
    ],
    "GlobalNetworkPolicy": [
        resource("GlobalNetworkPolicy", "security.quarantine", {
            "tier": "security", "order": 10.5, "selector": "all()",
            "ingress": [{"action": "Pass"}, {"action": "Deny", "protocol": "ICMP",
                                             "icmp": {"type": 8, "code": 0}}],
        }),
    ],
    "NetworkSet": [],
    "GlobalNetworkSet": [],
    "HostEndpoint": [],
}  # fmt: skip


def inputs(*weps: dict[str, Any]) -> calc.Inputs:
    return Reader().read(LISTED, list(weps) or [wep("shop", "web-0", "10.244.2.7", app="web")])


def test_a_pods_policies_come_tier_by_tier_each_in_its_order() -> None:
    view = pod_policies(inputs(), "shop/web-0")
    assert [t["tier"] for t in view["ingress"]] == ["security", "default"]
    security, default = view["ingress"]
    assert (security["order"], security["end_of_tier"]) == (100, "Deny")
    assert [p["id"] for p in security["policies"]] == ["security/security.quarantine"]
    quarantine = security["policies"][0]
    assert (quarantine["kind"], quarantine["namespace"], quarantine["order"]) == (
        "GlobalNetworkPolicy", None, 10.5
    )  # fmt: skip
    assert quarantine["rules"] == ["Pass", "Deny ICMP type 8 code 0"]
    assert default["order"] == 1_000_000
    # Only the pod's own namespace's policies that select it; other-ns and db-only do not.
    assert [p["name"] for p in default["policies"]] == ["allow-web"]
    allow = default["policies"][0]
    assert (allow["kind"], allow["namespace"], allow["order"], allow["selector"]) == (
        "NetworkPolicy", "shop", 200, "app == \"web\""
    )  # fmt: skip
    assert allow["rules"] == [
        "Allow TCP from (app == \"client\") && namespace == 'shop' to ports 80,8000:8080,http"
    ]


def test_a_policy_without_the_direction_is_not_listed_there() -> None:
    view = pod_policies(inputs(), "shop/web-0")
    assert [[p["name"] for p in t["policies"]] for t in view["egress"]] == [["web-egress"]]
    egress = view["egress"][0]["policies"][0]
    assert egress["kind"] == "Kubernetes NetworkPolicy"
    assert egress["id"] == "default/shop/knp.default.web-egress"
    assert egress["rules"] == ["Deny to nets 10.0.0.0/8"]


def test_a_pod_no_policy_selects_has_only_its_profiles_in_order() -> None:
    view = pod_policies(inputs(wep("shop", "db-0", "10.244.2.8", app="cache")), "shop/db-0")
    assert view["egress"] == []
    assert [t["tier"] for t in view["ingress"]] == ["security"]
    assert view["profiles"] == [
        {"name": "kns.shop", "ingress": ["Allow"], "egress": ["Allow"], "missing": False},
        {"name": "ksa.shop.default", "ingress": [], "egress": [], "missing": True},
    ]


def test_the_pods_own_labels_and_addresses_are_shown_without_the_inherited_ones() -> None:
    view = pod_policies(inputs(), "shop/web-0")
    assert view["labels"] == {"app": "web"}
    assert (view["node"], view["interface"], view["addresses"]) == (
        "node2", "caliweb-0", ["10.244.2.7/32"]
    )  # fmt: skip


def test_a_pod_without_an_endpoint_is_a_404() -> None:
    with pytest.raises(RequestError) as refused:
        pod_policies(inputs(), "shop/gone")
    assert refused.value.status == 404
    assert str(refused.value) == "pod shop/gone has no workload endpoint in the datastore"


@pytest.mark.parametrize(
    ("spec", "text"),
    [
        ({"action": "Allow"}, "Allow"),
        ({"action": "Deny", "protocol": "UDP", "destination": {"notPorts": [53]}},
         "Deny UDP to not ports 53"),
        ({"action": "Allow", "ipVersion": 4, "source": {"notNets": ["10.1.0.0/16"],
          "notSelector": "role == 'x'"}},
         "Allow IPv4 from not (role == \"x\") not nets 10.1.0.0/16"),
        ({"action": "Log", "protocol": 132}, "Log SCTP"),
        ({"action": "Allow", "notProtocol": "TCP", "notICMP": {"type": 3}},
         "Allow not TCP not type 3"),
        ({"action": "Allow", "source": {"namespaceSelector": "team == 'a'"}},
         "Allow from all() && namespaceSelector(team == \"a\")"),
    ],
)  # fmt: skip
def test_a_rule_reads_as_its_yaml_in_one_line(spec: dict[str, Any], text: str) -> None:
    assert rule_text(model.rule(spec, None)) == text


def test_the_summary_lists_the_labs_nodes_and_pods_from_its_record() -> None:
    state = LabState(
        "gp1",
        ["node1", "node2"],
        node_ips={"node1": "192.168.56.10/24", "node2": "192.168.56.11/24"},
        pods={
            "shop/web-0": Pod("shop/web-0", "node2", "gp1-p2", "c2", "10.244.2.7", {"app": "web"}),
            "default/client": Pod("default/client", "node1", "gp1-p1", "c1", "10.244.1.5"),
        },
    )
    assert summary(state) == {
        "lab": "gp1",
        "topology": "flat",
        "encap": "vxlan",
        "external": "203.0.113.1",
        "nodes": [
            {"name": "node1", "ip": "192.168.56.10"},
            {"name": "node2", "ip": "192.168.56.11"},
        ],
        "pods": [
            {"pod": "default/client", "node": "node1", "ip": "10.244.1.5", "labels": {}},
            {"pod": "shop/web-0", "node": "node2", "ip": "10.244.2.7", "labels": {"app": "web"}},
        ],
    }
