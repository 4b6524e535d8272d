"""Staged policies evaluated as if enforced: which are, how they become policies, and the
pending trace (Goldmane's pending_policies) Calico's StagedAsEnforced check gives, for
`calicoctl policy explain` and Felix's flow collector alike (tests/unit/test_felix_flow_table.py
feeds it the collector's connections)."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.flows.record import Action, PolicyHit, PolicyKind
from pycalico.policy import calc, inputs, model, pending, verdict

SHOP = {"kubernetes.io/metadata.name": "shop"}


def _meta(name: str, namespace: str | None) -> dict[str, Any]:
    return {"name": name, **({"namespace": namespace} if namespace else {})}


def staged(kind: str, name: str, namespace: str | None = "shop", **spec: Any) -> dict[str, Any]:
    return {"kind": kind, "metadata": _meta(name, namespace), "spec": spec}


def snp(name: str, **spec: Any) -> dict[str, Any]:
    return staged("StagedNetworkPolicy", name, selector="app == 'web'", **spec)


def enforced(kind: str, name: str, namespace: str | None = "shop", **spec: Any) -> model.Policy:
    return model.policy({"kind": kind, "metadata": _meta(name, namespace), "spec": spec})


def np(name: str, **spec: Any) -> model.Policy:
    return enforced("NetworkPolicy", name, selector="app == 'web'", **spec)


def pod(name: str, ip: str, **labels: str) -> model.Endpoint:
    return model.endpoint(
        {
            "kind": "WorkloadEndpoint",
            "metadata": {
                "name": f"n1-k8s-{name}-eth0",
                "namespace": "shop",
                "labels": {"app": name, "projectcalico.org/orchestrator": "k8s", **labels},
            },
            "spec": {
                "node": "n1",
                "pod": name,
                "interfaceName": f"cali{name}",
                "ipNetworks": [f"{ip}/32"],
                "profiles": ["kns.shop"],
            },
        },
        {"kns.shop": PROFILE},
    )


PROFILE = model.Profile("kns.shop", (model.Rule("Allow"),), (model.Rule("Allow"),), {})
WEB = pod("web", "10.0.0.2")
CLIENT = pod("client", "10.0.0.1")
TCP80 = verdict.Packet(
    ipaddress.ip_address("10.0.0.1"), ipaddress.ip_address("10.0.0.2"), 6, 80, 40000
)
TIERS = {
    "default": calc.Tier("default", calc.DEFAULT_TIER_ORDER),
    "security": calc.Tier("security", 100.0),
    "audit": calc.Tier("audit", 50.0, "Pass"),
}


def _inputs(
    policies: list[model.Policy] = (),  # type: ignore[assignment]
    staged_docs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    profiles: dict[str, model.Profile] | None = None,
) -> calc.Inputs:
    staged_policies = [p for p in map(pending.staged_policy, staged_docs) if p is not None]
    return calc.Inputs(
        [CLIENT, WEB],
        list(policies),
        {"kns.shop": PROFILE} if profiles is None else profiles,
        TIERS,
        staged_policies=staged_policies,
    )


def hits(
    policies: list[model.Policy] = (),  # type: ignore[assignment]
    staged_docs: list[dict[str, Any]] = (),  # type: ignore[assignment]
    direction: str = "ingress",
    packet: verdict.Packet = TCP80,
    profiles: dict[str, model.Profile] | None = None,
) -> tuple[PolicyHit, ...]:
    ep = WEB if direction == "ingress" else CLIENT
    return pending.pending_policy_hits(
        _inputs(policies, staged_docs, profiles), ep, direction, packet
    )


def hit(kind: PolicyKind, name: str, action: Action, index: int = 0, rule: int = 0,
        namespace: str = "shop", tier: str = "default") -> PolicyHit:  # fmt: skip
    return PolicyHit(kind, name, namespace, tier, action, index, rule)


def trigger(kind: PolicyKind, name: str, namespace: str = "shop", tier: str = "default") -> Any:
    return PolicyHit(kind, name, namespace, tier, Action.UNSPECIFIED, 0, 0)


def end_of_tier(action: Action, index: int, first: PolicyHit | None, tier: str = "default") -> Any:
    return PolicyHit(PolicyKind.END_OF_TIER, "", "", tier, action, index, -1, first)


PROFILE_ALLOW = PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 0, 0)
DENY_ALL = [{"action": "Deny"}]
ALLOW_ALL = [{"action": "Allow"}]


# --- which staged policies are evaluated, and as what --------------------------------------


@pytest.mark.parametrize("action", [None, "Set", "Learn", "Ignore"])
def test_every_staged_action_but_delete_is_evaluated_as_calicos_felix_is_sent_it(
    action: str | None,
) -> None:
    spec = (
        {"ingress": DENY_ALL} if action is None else {"stagedAction": action, "ingress": DENY_ALL}
    )
    assert hits(staged_docs=[snp("lockdown", **spec)]) == (
        hit(PolicyKind.STAGED_NETWORK_POLICY, "lockdown", Action.DENY),
    )


@pytest.mark.parametrize("action", ["Learn", "Ignore"])
def test_a_stored_learn_or_ignore_staged_policy_is_evaluated_as_set(action: str) -> None:
    def stored(staged_action: str) -> model.Policy | None:
        doc = snp("lockdown", stagedAction=staged_action, ingress=DENY_ALL)
        return pending.staged_policy(normalize({"apiVersion": "projectcalico.org/v3", **doc}))

    assert stored(action) is not None and stored(action) == stored("Set")


def test_a_delete_staged_policy_is_not_evaluated() -> None:
    doc = staged("StagedNetworkPolicy", "default.lockdown", stagedAction="Delete", tier="default")
    assert pending.staged_policy(doc) is None
    assert hits(staged_docs=[doc]) == (PROFILE_ALLOW,)


def test_a_staged_network_policy_is_its_enforced_twin_under_an_id_of_its_own() -> None:
    spec = {"selector": "app == 'web'", "order": 10, "ingress": DENY_ALL, "types": ["Ingress"]}
    policy = pending.staged_policy(staged("StagedNetworkPolicy", "lockdown", **spec))
    twin = enforced("NetworkPolicy", "lockdown", **spec)
    assert policy is not None and pending.is_staged(policy) and not pending.is_staged(twin)
    assert (policy.kind, policy.id) == ("StagedNetworkPolicy", "snp:default/shop/lockdown")
    assert (policy.ingress, policy.egress, policy.order) == (twin.ingress, twin.egress, 10)
    assert (policy.selector, policy.namespace, policy.tier) == (twin.selector, "shop", "default")


def test_a_staged_global_network_policy_is_global_in_its_tier() -> None:
    doc = staged(
        "StagedGlobalNetworkPolicy", "security.quarantine", None, tier="security",
        selector="all()", ingress=DENY_ALL,
    )  # fmt: skip
    policy = pending.staged_policy(doc)
    assert policy is not None
    assert (policy.id, policy.namespace, policy.tier) == (
        "sgnp:security/security.quarantine", None, "security",
    )  # fmt: skip


def test_a_staged_kubernetes_policy_is_converted_as_a_kubernetes_one_and_keeps_its_name() -> None:
    doc = staged(
        "StagedKubernetesNetworkPolicy", "web", podSelector={"matchLabels": {"app": "web"}},
        ingress=[{"from": [{"podSelector": {"matchLabels": {"app": "client"}}}]}],
    )  # fmt: skip
    policy = pending.staged_policy(doc)
    assert policy is not None
    assert (policy.id, policy.name, policy.order, policy.tier) == (
        "sknp:default/shop/web", "web", 1000.0, "default",
    )  # fmt: skip
    assert 'projectcalico.org/orchestrator == "k8s"' in policy.selector
    assert hits(staged_docs=[doc]) == (
        hit(PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY, "web", Action.ALLOW),
    )
    other = verdict.Packet(
        ipaddress.ip_address("10.0.0.9"), ipaddress.ip_address("10.0.0.2"), 6, 80
    )
    assert hits(staged_docs=[doc], packet=other) == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY, "web")),
    )


def test_the_reader_keeps_staged_policies_apart_from_those_it_renders() -> None:
    listed: dict[str, list[dict[str, Any]]] = {kind: [] for kind in inputs.KINDS}
    listed["NetworkPolicy"] = [
        {"kind": "NetworkPolicy", "metadata": _meta("allow", "shop"), "spec": {}}
    ]
    listed["StagedNetworkPolicy"] = [
        snp("lockdown", ingress=DENY_ALL),
        staged("StagedNetworkPolicy", "default.gone", stagedAction="Delete", tier="default"),
    ]
    listed["StagedGlobalNetworkPolicy"] = [staged("StagedGlobalNetworkPolicy", "all", None)]
    read = inputs.Reader().read(listed, [])
    assert [p.id for p in read.policies] == ["default/shop/allow"]
    assert [p.id for p in read.staged_policies] == ["snp:default/shop/lockdown", "sgnp:default/all"]
    assert [p.id for p in read.staged_as_enforced().policies] == [
        "default/shop/allow", "snp:default/shop/lockdown", "sgnp:default/all",
    ]  # fmt: skip
    assert inputs.Reader().read({kind: [] for kind in inputs.KINDS}, []).staged_policies == []


def test_the_reader_leaves_out_a_stored_staged_policy_it_cannot_read_as_enforced() -> None:
    listed: dict[str, list[dict[str, Any]]] = {kind: [] for kind in inputs.KINDS}
    listed["StagedKubernetesNetworkPolicy"] = [
        staged("StagedKubernetesNetworkPolicy", "old", podSelector=5),
        staged("StagedKubernetesNetworkPolicy", "web", podSelector={}),
    ]
    assert [p.id for p in inputs.Reader().read(listed, []).staged_policies] == [
        "sknp:default/shop/web"
    ]


# --- the trace ------------------------------------------------------------------------------


def test_without_staged_policies_the_pending_trace_is_the_enforced_walk() -> None:
    assert hits() == (PROFILE_ALLOW,)
    assert hits([np("allow-web", ingress=ALLOW_ALL)]) == (
        hit(PolicyKind.CALICO_NETWORK_POLICY, "allow-web", Action.ALLOW),
    )


def test_a_staged_deny_ahead_of_an_enforced_allow_decides() -> None:
    found = hits([np("allow-web", order=100, ingress=ALLOW_ALL)], [snp("lockdown", order=10,
                 ingress=[{"action": "Log"}, {"action": "Deny", "protocol": "TCP"}])])  # fmt: skip
    assert found == (hit(PolicyKind.STAGED_NETWORK_POLICY, "lockdown", Action.DENY, rule=1),)


def test_an_enforced_allow_ahead_of_a_staged_deny_decides() -> None:
    found = hits(
        [np("allow-web", order=10, ingress=ALLOW_ALL)],
        [snp("lockdown", order=100, ingress=DENY_ALL)],
    )
    assert found == (hit(PolicyKind.CALICO_NETWORK_POLICY, "allow-web", Action.ALLOW),)


def test_at_equal_order_and_name_the_enforced_policy_goes_first() -> None:
    found = hits([np("web", order=5, ingress=ALLOW_ALL)], [snp("web", order=5, ingress=DENY_ALL)])
    assert found == (hit(PolicyKind.CALICO_NETWORK_POLICY, "web", Action.ALLOW),)


def test_a_staged_policy_matching_no_rule_ends_its_tier_in_a_deny_it_triggers() -> None:
    udp_only = [{"action": "Allow", "protocol": "UDP"}]
    found = hits(staged_docs=[snp("only-client", ingress=udp_only)])
    assert found == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.STAGED_NETWORK_POLICY, "only-client")),
    )
    sgnp = staged("StagedGlobalNetworkPolicy", "udp-only", None, selector="app == 'web'",
                  ingress=udp_only)  # fmt: skip
    assert hits(staged_docs=[sgnp]) == (
        end_of_tier(
            Action.DENY, 0, trigger(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "udp-only", "")
        ),
    )


def test_the_trigger_is_the_first_policy_of_the_tier_staged_or_not() -> None:
    never = [{"action": "Allow", "protocol": "UDP"}]
    found = hits([np("b-enforced", order=20, ingress=never)], [snp("a-staged", order=10,
                 ingress=never)])  # fmt: skip
    assert found == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.STAGED_NETWORK_POLICY, "a-staged")),
    )
    found = hits([np("a-enforced", order=10, ingress=never)], [snp("b-staged", order=20,
                 ingress=never)])  # fmt: skip
    assert found == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.CALICO_NETWORK_POLICY, "a-enforced")),
    )


def test_a_staged_pass_leaves_its_tier_and_the_next_tier_decides_numbered_after_it() -> None:
    sgnp = staged(
        "StagedGlobalNetworkPolicy", "security.hand-over", None, tier="security",
        selector="all()", ingress=[{"action": "Pass"}],
    )  # fmt: skip
    found = hits([np("allow-web", ingress=ALLOW_ALL)], [sgnp])
    assert found == (
        hit(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "security.hand-over", Action.PASS,
            namespace="", tier="security"),
        hit(PolicyKind.CALICO_NETWORK_POLICY, "allow-web", Action.ALLOW, index=1),
    )  # fmt: skip


def test_a_staged_pass_in_the_last_tier_hands_over_to_the_profiles_numbered_after_it() -> None:
    passing = staged("StagedNetworkPolicy", "pass", selector="app == 'client'",
                     types=["Egress"], egress=[{"action": "Pass"}])  # fmt: skip
    assert hits(staged_docs=[passing], direction="egress") == (
        hit(PolicyKind.STAGED_NETWORK_POLICY, "pass", Action.PASS),
        PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 1, 0),
    )


def test_a_pass_tier_no_policy_decided_passes_on_to_the_profiles() -> None:
    sgnp = staged(
        "StagedGlobalNetworkPolicy", "audit.watch", None, tier="audit",
        selector="all()", ingress=[{"action": "Log"}],
    )  # fmt: skip
    found = hits(staged_docs=[sgnp])
    assert found == (
        end_of_tier(
            Action.PASS, 0,
            trigger(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "audit.watch", "", "audit"),
            tier="audit",
        ),
        PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 1, 0),
    )  # fmt: skip


def test_tiers_are_met_in_their_order() -> None:
    security = staged(
        "StagedGlobalNetworkPolicy", "security.deny", None, tier="security",
        selector="all()", ingress=DENY_ALL,
    )  # fmt: skip
    found = hits([np("allow-web", ingress=ALLOW_ALL)], [security])
    assert found == (
        hit(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "security.deny", Action.DENY,
            namespace="", tier="security"),
    )  # fmt: skip


def test_a_staged_policy_in_a_tier_that_does_not_exist_is_not_met() -> None:
    orphan = staged(
        "StagedGlobalNetworkPolicy", "gone.deny", None, tier="gone", selector="all()",
        ingress=DENY_ALL,
    )  # fmt: skip
    assert hits(staged_docs=[orphan]) == (PROFILE_ALLOW,)


def test_a_staged_policy_that_does_not_select_the_endpoint_is_not_met() -> None:
    other = staged("StagedNetworkPolicy", "db", selector="app == 'db'", ingress=DENY_ALL)
    assert hits(staged_docs=[other]) == (PROFILE_ALLOW,)


def test_egress_is_evaluated_at_the_source_with_egress_rules_only() -> None:
    ingress_only = staged("StagedNetworkPolicy", "in", selector="all()", ingress=DENY_ALL)
    egress = staged(
        "StagedNetworkPolicy", "out", selector="app == 'client'", types=["Egress"],
        egress=[{"action": "Deny", "destination": {"ports": [80]}, "protocol": "TCP"}],
    )  # fmt: skip
    assert hits(staged_docs=[ingress_only], direction="egress") == (
        PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.ALLOW, 0, 0),
    )
    assert hits(staged_docs=[ingress_only, egress], direction="egress") == (
        hit(PolicyKind.STAGED_NETWORK_POLICY, "out", Action.DENY),
    )


def test_the_profiles_end_in_a_deny_triggered_by_the_first_profile() -> None:
    closed = model.Profile("kns.shop", (model.Rule("Pass"),), (), {})
    assert hits(profiles={"kns.shop": closed}) == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.PROFILE, "kns.shop", "", ""), tier=""),
    )
    # A profile the endpoint names but nobody stored decides nothing, yet names the end.
    assert hits(profiles={}) == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.PROFILE, "kns.shop", "", ""), tier=""),
    )
    bare = model.Endpoint("shop/bare", "shop", "n1", "calibare", WEB.addresses, {}, {})
    assert pending.pending_policy_hits(_inputs(), bare, "ingress", TCP80) == (
        end_of_tier(Action.DENY, 0, None, tier=""),
    )


def test_a_profile_deny_is_a_profile_hit() -> None:
    closed = model.Profile("kns.shop", (model.Rule("Deny"),), (), {})
    assert hits(profiles={"kns.shop": closed}) == (
        PolicyHit(PolicyKind.PROFILE, "kns.shop", "", "", Action.DENY, 0, 0),
    )


def test_enforced_policies_are_named_as_goldmane_names_them() -> None:
    knp = enforced("NetworkPolicy", "knp.default.web", selector="all()", ingress=ALLOW_ALL)
    gnp = enforced("GlobalNetworkPolicy", "allow", None, selector="all()", ingress=ALLOW_ALL)
    assert hits([knp]) == (hit(PolicyKind.NETWORK_POLICY, "web", Action.ALLOW),)
    assert hits([gnp]) == (
        hit(PolicyKind.GLOBAL_NETWORK_POLICY, "allow", Action.ALLOW, namespace=""),
    )


def test_one_evaluator_answers_many_connections_as_the_function_does() -> None:
    given = _inputs(staged_docs=[snp("tcp-only", ingress=[{"action": "Deny", "protocol": "TCP"}])])
    evaluate = pending.PendingEvaluator(given)
    udp = verdict.Packet(TCP80.src, TCP80.dst, 17, 53, 40000)
    for packet in (TCP80, udp, TCP80):
        assert evaluate(WEB, "ingress", packet) == pending.pending_policy_hits(
            given, WEB, "ingress", packet
        )
    assert evaluate(WEB, "ingress", TCP80)[0].action == Action.DENY
    assert evaluate(WEB, "ingress", udp) == (
        end_of_tier(Action.DENY, 0, trigger(PolicyKind.STAGED_NETWORK_POLICY, "tcp-only")),
    )
