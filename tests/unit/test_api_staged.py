"""Staged policies through calicoctl: Calico's fields, validation and tables, stored like
policies, and never enforced."""

from __future__ import annotations

import json

import pytest

from pycalico.api.enforcement import AS_SET
from pycalico.api.staged import pod_selector_text
from tests.support.calicoctl_harness import InProcess, multi, resource_yaml


def snp(name: str = "lockdown", namespace: str = "shop", **spec: object) -> str:
    return resource_yaml("StagedNetworkPolicy", name, spec, namespace=namespace)


def sgnp(name: str = "deny-all", **spec: object) -> str:
    return resource_yaml("StagedGlobalNetworkPolicy", name, spec)


def sknp(name: str = "web", namespace: str = "shop", **spec: object) -> str:
    return resource_yaml("StagedKubernetesNetworkPolicy", name, spec, namespace=namespace)


def test_a_staged_policy_is_stored_with_defaults_as_its_enforced_kind(ctl: InProcess) -> None:
    spec = {"selector": "app == 'web'", "ingress": [{"action": "Deny"}]}
    result = ctl.run("create", "-f", "-", stdin=snp(**spec))
    assert result.rc == 0
    assert result.out == "Successfully created 1 'StagedNetworkPolicy' resource(s)\n"
    assert result.err == ""
    stored = json.loads(ctl.ok("get", "snp", "lockdown", "-n", "shop", "-o", "json").out)
    assert stored["spec"] == {
        "tier": "default",
        "ingress": [{"action": "Deny", "source": {}, "destination": {}}],
        "selector": "app == 'web'",
        "types": ["Ingress"],
    }
    assert stored["metadata"]["labels"] == {"projectcalico.org/tier": "default"}


def test_default_tier_staged_policies_are_keyed_by_their_tiered_name(ctl: InProcess) -> None:
    from pycalico.datastore.sqlite import SqliteBackend

    ctl.ok("create", "-f", "-", stdin=multi(snp(), sgnp()))
    with SqliteBackend(ctl.store) as backend:
        keys = [kv.key for kv in backend.list("/calico/resources/v3/projectcalico.org/")[0]]
    assert (
        "/calico/resources/v3/projectcalico.org/stagednetworkpolicies/shop/default.lockdown" in keys
    )
    assert (
        "/calico/resources/v3/projectcalico.org/stagedglobalnetworkpolicies/default.deny-all"
        in keys
    )


@pytest.mark.parametrize(
    ("alias", "kind"),
    [
        ("snp", "StagedNetworkPolicy"),
        ("stagedpolicies", "StagedNetworkPolicy"),
        ("sgnp", "StagedGlobalNetworkPolicy"),
        ("stagedglobalnetworkpolicies", "StagedGlobalNetworkPolicy"),
        ("sknp", "StagedKubernetesNetworkPolicy"),
        ("skpols", "StagedKubernetesNetworkPolicy"),
    ],
)
def test_calicos_short_names_name_the_kinds(ctl: InProcess, alias: str, kind: str) -> None:
    ctl.ok("create", "-f", "-", stdin=multi(snp(), sgnp(), sknp()))
    listed = json.loads(ctl.ok("get", alias, "-A", "-o", "json").out)
    assert [item["kind"] for item in listed["items"]] == [kind]


def test_tables_are_calicos(ctl: InProcess) -> None:
    selector = {"matchLabels": {"app": "web"}}
    ctl.ok(
        "create",
        "-f",
        "-",
        stdin=multi(snp(selector="app == 'web'", order=5), sgnp(), sknp(podSelector=selector)),
    )
    assert ctl.ok("get", "snp", "-n", "shop").lines() == [
        "NAMESPACE   NAME       TIER      ",
        "shop        lockdown   default   ",
        "",
    ]
    assert ctl.ok("get", "snp", "-A", "-o", "wide").lines()[:2] == [
        "NAMESPACE   NAME       TIER      ORDER   SELECTOR       ",
        "shop        lockdown   default   5       app == 'web'   ",
    ]
    assert ctl.ok("get", "sgnp").lines()[0] == "NAME       TIER      "
    wide = ctl.ok("get", "sknp", "-n", "shop", "-o", "wide").lines()
    assert wide[0].split() == ["NAMESPACE", "NAME", "PODSELECTOR"]
    assert wide[1].split() == [
        "shop",
        "web",
        "&LabelSelector{MatchLabels:map[string]string{app:",
        "web,},MatchExpressions:[]LabelSelectorRequirement{},}",
    ]


def test_the_pod_selector_column_prints_requirements_as_go_does() -> None:
    text = pod_selector_text(
        {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]}]}
    )
    assert text == (
        "&LabelSelector{MatchLabels:map[string]string{},MatchExpressions:"
        "[]LabelSelectorRequirement{LabelSelectorRequirement{Key:tier,Operator:In,"
        "Values:[a b],},},}"
    )


@pytest.mark.parametrize("action", ["Set", "Learn", "Ignore"])
def test_every_staged_action_is_taken_and_learn_and_ignore_are_warned_as_evaluated_as_set(
    ctl: InProcess, action: str
) -> None:
    result = ctl.ok("apply", "-f", "-", stdin=sgnp(stagedAction=action, selector="all()"))
    stored = json.loads(ctl.ok("get", "sgnp", "deny-all", "-o", "json").out)
    assert stored["spec"]["stagedAction"] == action
    warned = (
        f"Warning: StagedGlobalNetworkPolicy deny-all: stagedAction {action} {AS_SET}\n"
    )
    assert result.err == ("" if action == "Set" else warned)


def test_a_delete_staged_policy_keeps_only_its_tier(ctl: InProcess) -> None:
    ctl.ok(
        "apply", "-f", "-", stdin=multi(sgnp(stagedAction="Delete"), sknp(stagedAction="Delete"))
    )
    gnp = json.loads(ctl.ok("get", "sgnp", "deny-all", "-o", "json").out)
    assert gnp["spec"] == {"stagedAction": "Delete", "tier": "default"}  # no types defaulted
    knp = json.loads(ctl.ok("get", "sknp", "web", "-n", "shop", "-o", "json").out)
    assert knp["spec"] == {"stagedAction": "Delete", "podSelector": {}}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            snp(stagedAction="Delete", selector="all()"),
            "error with field StagedNetworkPolicySpec (Spec fields, except Tier, should all "
            "be zero-value if stagedAction is Delete)",
        ),
        (
            sgnp(stagedAction="Delete", types=["Ingress"]),
            "error with field StagedGlobalNetworkPolicySpec (Spec fields, except Tier, should "
            "all be zero-value if stagedAction is Delete)",
        ),
        (
            sknp(stagedAction="Delete", policyTypes=["Ingress"]),
            "error with field StagedKubernetesNetworkPolicySpec (Spec fields should all be "
            "zero-value if stagedAction is Delete)",
        ),
        (
            snp(stagedAction="Remove"),
            "error with field StagedAction = 'Remove' (Reason: failed to validate Field: "
            "StagedAction because of Tag: stagedAction )",
        ),
        (
            snp(name="knp.default.web"),
            "operation Create is not supported on knp.default.: Cannot create a "
            "StagedNetworkPolicy with that name prefix",
        ),
        (
            snp(name="lockdown", tier="security"),
            "StagedNetworkPolicy name must be prefixed with its tier: 'security.<name>'",
        ),
        (
            sgnp(preDNAT=True, applyOnForward=True, egress=[{"action": "Allow"}]),
            "PreDNAT PolicySpec cannot have any Egress rules",
        ),
        (
            sknp(podSelector={"matchExpressions": [{"key": "a", "operator": "In"}]}),
            "Values (must be specified when `operator` is 'In' or 'NotIn')",
        ),
        (sknp(ingress=[{"from": [{}]}]), "From[0] (must specify a peer)"),
        (
            sknp(ingress=[{"ports": [{"port": 0}]}]),
            "Port = '0' (must be between 1 and 65535, inclusive)",
        ),
        (
            sknp(ingress=[{"ports": [{"port": "http", "endPort": 90}]}]),
            "may not be specified when `port` is non-numeric",
        ),
        (
            sknp(egress=[{"to": [{"ipBlock": {"cidr": "10.0.0.1"}}]}]),
            "must be a valid CIDR value",
        ),
        (
            sknp(
                ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.0.0.0/8"]}}]}]
            ),
            "must be a strict subset of `cidr`",
        ),
        (
            sknp(
                ingress=[{"from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["fd00::/64"]}}]}]
            ),
            "must be a strict subset of `cidr`",
        ),
        (
            sknp(policyTypes=["Ingress", "Egress", "Ingress"]),
            "may not specify more than two policyTypes",
        ),
        (sknp(selector="all()"), "error with field Selector = 'all()' (unknown field)"),
    ],
)
def test_bad_staged_policies_are_refused_in_calicos_words(
    ctl: InProcess, document: str, message: str
) -> None:
    result = ctl.run("apply", "-f", "-", stdin=document)
    assert result.rc == 1
    assert message in result.err
    for kind in ("snp", "sgnp", "sknp"):
        assert json.loads(ctl.ok("get", kind, "-A", "-o", "json").out)["items"] == []


def test_a_staged_policy_needs_its_tier_and_keeps_it_from_deletion(ctl: InProcess) -> None:
    tiered = snp(name="security.lockdown", tier="security")
    result = ctl.run("create", "-f", "-", stdin=tiered)
    assert result.rc == 1
    assert "Tier(security)" in result.err or "tier does not exist" in result.err
    ctl.ok("create", "-f", "-", stdin=resource_yaml("Tier", "security", {"order": 100}))
    ctl.ok("create", "-f", "-", stdin=tiered)
    refused = ctl.run("delete", "tier", "security")
    assert refused.rc == 1
    assert "still has StagedNetworkPolicy resources" in refused.err
    ctl.ok("delete", "snp", "security.lockdown", "-n", "shop")
    ctl.ok("delete", "tier", "security")


def _wep(name: str, ip: str) -> str:
    return resource_yaml(
        "WorkloadEndpoint",
        f"n1-k8s-{name}-eth0",
        {
            "node": "n1",
            "orchestrator": "k8s",
            "workload": name,
            "pod": name,
            "endpoint": "eth0",
            "ipNetworks": [f"{ip}/32"],
            "interfaceName": f"cali{name}",
            "profiles": ["kns.shop"],
        },
        namespace="shop",
        labels={"app": name, "projectcalico.org/namespace": "shop"},
    )


def test_staged_policies_are_never_enforced(ctl: InProcess) -> None:
    """The calculation Felix programs (and policy explain's real verdict) ignores them: a
    staged deny-everything leaves the connection allowed by the namespace's profile, and
    only the staged verdict explain prints after it is a deny."""
    profile = resource_yaml(
        "Profile", "kns.shop", {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}
    )
    deny = {"selector": "all()", "types": ["Ingress", "Egress"]}
    docs = multi(
        profile,
        _wep("a", "10.0.0.1"),
        _wep("b", "10.0.0.2"),
        snp(name="deny", **deny),
        sgnp(name="deny", **deny),
        sknp(name="deny", policyTypes=["Ingress", "Egress"]),
    )
    ctl.ok("apply", "-f", "-", stdin=docs)
    result = ctl.ok("policy", "explain", "--from=shop/a", "--to=shop/b", "--port=80")
    enforced, _, staged = result.out.partition("with staged policies enforced:\n")
    assert "deny" not in enforced
    assert enforced.endswith("verdict: ALLOW\n")
    assert staged.endswith("staged verdict: DENY\n")
