"""The policy calculation: what applies where, in which order, and what selectors stand for."""

from __future__ import annotations

import random
from typing import Any

from pycalico.api.resource import normalize
from pycalico.felix.dataplane.nftables import diff_script, full_script
from pycalico.felix.rules import policy as nft
from pycalico.policy import calc, model

TIERS = {
    "default": calc.Tier("default", 1_000_000),
    "security": calc.Tier("security", 100),
    "soft": calc.Tier("soft", 200, "Pass"),
}
KNS = {
    ns: model.profile(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Profile",
                "metadata": {"name": f"kns.{ns}"},
                "spec": {
                    "ingress": [{"action": "Allow"}],
                    "egress": [{"action": "Allow"}],
                    "labelsToApply": {"pcns.projectcalico.org/name": ns, "pcns.team": ns[0]},
                },
            }
        )
    )
    for ns in ("x", "y")
}
PROFILES = {p.name: p for p in KNS.values()}


def wep(ns: str, name: str, ip: str, node: str = "node1", **labels: str) -> model.Endpoint:
    resource = normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "WorkloadEndpoint",
            "metadata": {"name": f"{node}-k8s-{name}-eth0", "namespace": ns, "labels": labels},
            "spec": {
                "node": node,
                "orchestrator": "k8s",
                "pod": name,
                "endpoint": "eth0",
                "interfaceName": f"cali{name}",
                "ipNetworks": [f"{ip}/32"],
                "profiles": [f"kns.{ns}"],
                "ports": [{"name": "http", "protocol": "TCP", "port": 8080}],
            },
        }
    )
    return model.endpoint(resource, PROFILES)


def pol(kind: str, name: str, spec: dict[str, Any], ns: str | None = None) -> model.Policy:
    meta: dict[str, Any] = {"name": name}
    if ns:
        meta["namespace"] = ns
    return model.policy(
        normalize(
            {"apiVersion": "projectcalico.org/v3", "kind": kind, "metadata": meta, "spec": spec}
        )
    )


A = wep("x", "a", "10.0.0.1", app="web")
B = wep("x", "b", "10.0.0.2", app="db")
C = wep("y", "c", "10.0.1.1", app="web")
REMOTE = wep("y", "r", "10.0.2.1", node="node2", app="web")


def inputs(*policies: model.Policy, endpoints: list[model.Endpoint] | None = None) -> calc.Inputs:
    return calc.Inputs(endpoints or [A, B, C, REMOTE], list(policies), PROFILES, TIERS)


def test_a_network_policy_applies_only_inside_its_namespace() -> None:
    p = pol(
        "NetworkPolicy", "web", {"selector": "app == 'web'", "ingress": [{"action": "Allow"}]}, "x"
    )
    state = calc.calculate("node1", inputs(p))
    assert [t.policies for t in state.endpoints["calia"].ingress] == [("default/x/web",)]
    assert state.endpoints["calic"].ingress == ()  # same label, other namespace
    assert state.endpoints["calia"].egress == ()  # an Ingress-only policy


def test_global_policies_order_by_tier_then_order_then_name() -> None:
    policies = [
        pol("GlobalNetworkPolicy", "zeta", {"order": 10, "ingress": [{"action": "Allow"}]}),
        pol("GlobalNetworkPolicy", "alpha", {"order": 10, "ingress": [{"action": "Allow"}]}),
        pol("GlobalNetworkPolicy", "first", {"order": 1, "ingress": [{"action": "Allow"}]}),
        pol("GlobalNetworkPolicy", "unordered", {"ingress": [{"action": "Allow"}]}),
        pol(
            "GlobalNetworkPolicy",
            "security.guard",
            {"tier": "security", "order": 500, "ingress": [{"action": "Pass"}]},
        ),
    ]
    plan = calc.calculate("node1", inputs(*policies)).endpoints["calic"]
    assert [(t.tier, t.policies) for t in plan.ingress] == [
        ("security", ("security/security.guard",)),
        ("default", ("default/first", "default/alpha", "default/zeta", "default/unordered")),
    ]
    assert plan.profiles == ("kns.y",)


def test_global_policy_namespace_selector_uses_namespace_labels() -> None:
    p = pol(
        "GlobalNetworkPolicy",
        "only-y",
        {"namespaceSelector": "team == 'y'", "egress": [{"action": "Deny"}]},
    )
    state = calc.calculate("node1", inputs(p))
    assert state.endpoints["calic"].egress and not state.endpoints["calia"].egress


def test_rule_selectors_are_scoped_to_the_policy_namespace_unless_a_namespace_selector_says() -> (
    None
):
    same = pol(
        "NetworkPolicy",
        "same",
        {
            "selector": "all()",
            "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}],
        },
        "x",
    )
    other = pol(
        "NetworkPolicy",
        "other",
        {
            "selector": "all()",
            "ingress": [
                {
                    "action": "Allow",
                    "source": {"selector": "app == 'web'", "namespaceSelector": "team == 'y'"},
                }
            ],
        },
        "x",
    )
    state = calc.calculate("node1", inputs(same, other))
    sets = {sel.text(): sorted(str(n) for n in nets) for sel, nets in state.selector_sets.items()}
    assert sets["(app == \"web\") && namespace == 'x'"] == ["10.0.0.1/32"]
    assert sorted(sets.values()) == [["10.0.0.1/32"], ["10.0.1.1/32", "10.0.2.1/32"]]


def test_network_sets_join_the_sets_their_labels_match() -> None:
    gns = model.network_set(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkSet",
                "metadata": {"name": "ext", "labels": {"app": "web"}},
                "spec": {"nets": ["198.51.100.0/24"]},
            }
        ),
        {},
    )
    p = pol(
        "GlobalNetworkPolicy",
        "g",
        {"ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}]},
    )
    only_global = pol(
        "GlobalNetworkPolicy",
        "h",
        {
            "ingress": [
                {
                    "action": "Allow",
                    "source": {"selector": "app == 'web'", "namespaceSelector": "global()"},
                }
            ]
        },
    )
    state = calc.calculate(
        "node1", calc.Inputs([A, B, C, REMOTE], [p, only_global], PROFILES, TIERS, [gns])
    )
    by_text = {s.text(): {str(n) for n in nets} for s, nets in state.selector_sets.items()}
    assert "198.51.100.0/24" in by_text['(app == "web")']
    assert by_text['(app == "web") && namespaceSelector(global())'] == {"198.51.100.0/24"}


def test_named_ports_resolve_to_each_matching_endpoint_port() -> None:
    p = pol(
        "GlobalNetworkPolicy",
        "np",
        {"ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": ["http"]}}]},
    )
    state = calc.calculate("node1", inputs(p))
    (members,) = state.named_ports.values()
    assert {(str(n), proto, port) for n, proto, port in members} >= {
        ("10.0.0.1/32", 6, 8080),
        ("10.0.2.1/32", 6, 8080),
    }


def test_same_updates_in_any_order_give_the_same_ruleset() -> None:
    policies = [
        pol(
            "GlobalNetworkPolicy",
            f"p{i}",
            {
                "order": i % 3,
                "selector": f"app == '{'web' if i % 2 else 'db'}'",
                "ingress": [
                    {
                        "action": "Allow",
                        "source": {"selector": "app == 'web'"},
                        "protocol": "TCP",
                        "destination": {"ports": [80 + i]},
                    }
                ],
            },
        )
        for i in range(12)
    ]
    endpoints = [A, B, C, REMOTE]
    expected = full_script(
        nft.render(calc.calculate("node1", inputs(*policies, endpoints=endpoints)))
    )
    rng = random.Random(7)
    for _ in range(5):
        rng.shuffle(policies)
        rng.shuffle(endpoints)
        again = full_script(
            nft.render(calc.calculate("node1", inputs(*policies, endpoints=endpoints)))
        )
        assert again == expected


def test_a_label_change_only_moves_set_elements() -> None:
    p = pol(
        "GlobalNetworkPolicy",
        "from-web",
        {
            "selector": "app == 'db'",
            "ingress": [{"action": "Allow", "source": {"selector": "app == 'web'"}}],
        },
    )
    before = nft.render(calc.calculate("node1", inputs(p)))
    relabelled = wep("y", "r", "10.0.2.1", node="node2", app="db")  # a remote pod stops being web
    after = nft.render(calc.calculate("node1", inputs(p, endpoints=[A, B, C, relabelled])))
    script = diff_script(before, after)
    assert script.splitlines() == [
        line for line in script.splitlines() if line.startswith("delete element")
    ]
    assert "10.0.2.1/32" in script
    assert diff_script(after, after) == ""


def test_rules_render_per_family_and_port_alternative() -> None:
    rule = model.rule(
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"nets": ["10.0.0.0/8", "fd00::/8"]},
            "destination": {"ports": [80, "8000:8080", "http"]},
        },
        None,
    )
    lines = nft.rule_lines(rule)
    assert len(lines) == 4  # two families x (numeric ports, the named port)
    assert lines[0].startswith(
        "meta nfproto ipv4 meta l4proto 6 ip saddr { 10.0.0.0/8 } th dport { 80, 8000-8080 }"
    )
    assert any("ip6 daddr . meta l4proto . th dport @cali60n-" in line for line in lines)
    icmp = model.rule({"action": "Deny", "protocol": "ICMP", "icmp": {"type": 8, "code": 0}}, None)
    assert list(nft.rule_lines(icmp)) == [
        "meta nfproto ipv4 meta l4proto 1 icmp type 8 icmp code 0 drop"
    ]
    v6_only = model.rule({"action": "Log", "ipVersion": 6, "notProtocol": "UDP"}, None)
    assert list(nft.rule_lines(v6_only)) == [
        'meta nfproto ipv6 meta l4proto != 17 log prefix "calico-packet: "'
    ]
    only_v4_nets = model.rule(
        {
            "action": "Allow",
            "destination": {"notNets": ["10.0.0.0/8"]},
            "source": {"nets": ["192.0.2.0/24"]},
        },
        None,
    )
    assert list(nft.rule_lines(only_v4_nets)) == [
        "meta nfproto ipv4 ip saddr { 192.0.2.0/24 } ip daddr != { 10.0.0.0/8 } "
        "meta mark set meta mark | 0x10000 return"
    ]


# --- explain: the same plans, walked for one packet ------------------------------------

from pycalico.policy import verdict  # noqa: E402


def packet(
    src: model.Endpoint, dst: model.Endpoint, port: int, protocol: int = 6
) -> verdict.Packet:
    return verdict.Packet(
        src.addresses[0].network_address, dst.addresses[0].network_address, protocol, port
    )


def test_explain_names_the_deciding_policy_rule_profile_or_default_deny() -> None:
    web = pol(
        "NetworkPolicy",
        "web",
        {
            "selector": "app == 'web'",
            "ingress": [
                {"action": "Log"},
                {"action": "Deny", "protocol": "TCP", "destination": {"ports": [81]}},
                {
                    "action": "Allow",
                    "protocol": "TCP",
                    "source": {"selector": "app == 'db'"},
                    "destination": {"ports": [80]},
                },
            ],
        },
        "x",
    )
    ins = inputs(web)
    allowed = verdict.explain(ins, B, A, packet(B, A, 80))
    assert [(s.direction, s.allowed, s.by, s.rule) for s in allowed] == [
        ("egress", True, "profile kns.x", 0),
        ("ingress", True, "policy default/x/web", 2),
    ]
    denied = verdict.explain(ins, B, A, packet(B, A, 81))[-1]
    assert (denied.allowed, denied.by, denied.rule) == (False, "policy default/x/web", 1)
    fallthrough = verdict.explain(ins, C, A, packet(C, A, 80))[-1]  # not app=db in x
    assert not fallthrough.allowed and fallthrough.by.startswith("end of tier default")


def test_explain_follows_pass_to_the_next_tier_and_stops_at_the_first_deny() -> None:
    soft = pol(
        "GlobalNetworkPolicy", "soft.hand-off", {"tier": "soft", "egress": [{"action": "Pass"}]}
    )
    deny = pol(
        "GlobalNetworkPolicy",
        "no-egress",
        {"selector": "app == 'db'", "egress": [{"action": "Deny"}]},
    )
    steps = verdict.explain(inputs(soft, deny), B, A, packet(B, A, 80))
    assert [(s.allowed, s.by) for s in steps] == [(False, "policy default/no-egress")]
    steps = verdict.explain(inputs(soft, deny), A, B, packet(A, B, 80))
    assert steps[0].allowed and steps[0].by == "profile kns.x"  # passed, then no default policy


def test_service_account_rules_and_policy_selector_use_the_accounts_labels() -> None:
    sa = model.profile(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Profile",
                "metadata": {"name": "ksa.x.api"},
                "spec": {
                    "labelsToApply": {"pcsa.projectcalico.org/name": "api", "pcsa.role": "backend"}
                },
            }
        )
    )
    profiles = {**PROFILES, sa.name: sa}
    api = model.endpoint(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "WorkloadEndpoint",
                "metadata": {"name": "node1-k8s-api-eth0", "namespace": "x"},
                "spec": {
                    "node": "node1",
                    "orchestrator": "k8s",
                    "pod": "api",
                    "endpoint": "eth0",
                    "interfaceName": "caliapi",
                    "ipNetworks": ["10.0.0.9/32"],
                    "profiles": ["kns.x", "ksa.x.api"],
                },
            }
        ),
        profiles,
    )
    by_name = pol(
        "GlobalNetworkPolicy",
        "n",
        {"ingress": [{"action": "Allow", "source": {"serviceAccounts": {"names": ["api"]}}}]},
    )
    by_label = pol(
        "GlobalNetworkPolicy",
        "l",
        {
            "ingress": [
                {
                    "action": "Allow",
                    "source": {"serviceAccounts": {"selector": "role == 'backend'"}},
                }
            ]
        },
    )
    only_api = pol(
        "GlobalNetworkPolicy",
        "o",
        {"serviceAccountSelector": "role == 'backend'", "egress": [{"action": "Deny"}]},
    )
    state = calc.calculate(
        "node1", calc.Inputs([A, B, api], [by_name, by_label, only_api], profiles, TIERS)
    )
    assert sorted({str(n) for nets in state.selector_sets.values() for n in nets}) == [
        "10.0.0.9/32"
    ]
    assert state.endpoints["caliapi"].egress and not state.endpoints["calia"].egress


def _random_endpoint(rng: random.Random, slot: int) -> model.Endpoint:
    ns = "x" if slot % 2 else "y"
    labels = {"app": rng.choice(["web", "db", "cache"])}
    if rng.random() < 0.5:
        labels["tier"] = rng.choice(["a", "b"])
    addresses = [f"10.0.{slot}.{rng.randrange(1, 4)}/32"]
    if rng.random() < 0.2:
        addresses.append(f"fd00::{slot}:{rng.randrange(1, 4)}/128")
    ports = rng.choice(
        [
            [],
            [{"name": "http", "protocol": "TCP", "port": 8080}],
            [
                {"name": "http", "protocol": "TCP", "port": 9090},
                {"name": "dns", "protocol": "UDP", "port": 53},
            ],
        ]
    )
    resource = normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "WorkloadEndpoint",
            "metadata": {"name": f"node1-k8s-e{slot}-eth0", "namespace": ns, "labels": labels},
            "spec": {
                "node": rng.choice(["node1", "node2"]),
                "orchestrator": "k8s",
                "pod": f"e{slot}",
                "endpoint": "eth0",
                "interfaceName": f"calie{slot}",
                "ipNetworks": addresses,
                "profiles": [f"kns.{ns}"],
                "ports": ports,
            },
        }
    )
    return model.endpoint(resource, PROFILES)


SELECTORS = ["all()", "has(app)", "app == 'web'", "tier == 'a' && app != 'db'", "!has(tier)"]


def _random_policy(rng: random.Random, slot: int) -> model.Policy:
    destination: dict[str, Any] = {}
    protocol = rng.choice(["TCP", "UDP"])
    if rng.random() < 0.5:
        destination["ports"] = [rng.choice(["http", "dns", 80])]
    rule: dict[str, Any] = {
        "action": rng.choice(["Allow", "Deny"]),
        "protocol": protocol,
        "source": {"selector": rng.choice(SELECTORS)},
        "destination": destination,
    }
    return pol(
        "GlobalNetworkPolicy",
        f"p{slot}",
        {"order": rng.randrange(3), "selector": rng.choice(SELECTORS), "ingress": [rule]},
    )


def _random_network_set(rng: random.Random, slot: int) -> model.NetworkSet:
    resource = normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "GlobalNetworkSet",
            "metadata": {"name": f"n{slot}", "labels": {"app": rng.choice(["web", "db"])}},
            "spec": {"nets": [rng.choice(["192.0.2.0/24", "198.51.100.0/24", "2001:db8::/64"])]},
        }
    )
    return model.network_set(resource, {})


def _same_state(a: calc.PolicyState, b: calc.PolicyState) -> None:
    assert a.endpoints == b.endpoints
    assert a.policies.keys() == b.policies.keys()
    assert a.profiles.keys() == b.profiles.keys()
    assert a.selector_sets == b.selector_sets
    assert a.named_ports == b.named_ports
    assert a.ipv6 == b.ipv6


def test_a_long_lived_calculator_always_agrees_with_a_fresh_one() -> None:
    """Felix keeps one Calculator, which updates its sets by counting what each endpoint
    brings; after any series of changes its answer must be exactly the fresh one."""
    rng = random.Random(11)
    endpoints = {slot: _random_endpoint(rng, slot) for slot in range(8)}
    policies = {slot: _random_policy(rng, slot) for slot in range(4)}
    network_sets: dict[int, model.NetworkSet] = {}
    kept = calc.Calculator("node1")
    for _ in range(400):
        what = rng.random()
        if what < 0.45:
            slot = rng.randrange(12)
            if slot in endpoints and rng.random() < 0.3:
                del endpoints[slot]
            else:
                endpoints[slot] = _random_endpoint(rng, slot)
        elif what < 0.55 and endpoints:
            # The same content as a new object, as after a reload of the datastore.
            slot = rng.choice(list(endpoints))
            old = endpoints[slot]
            endpoints[slot] = model.Endpoint(
                **{f: getattr(old, f) for f in old.__dataclass_fields__}
            )
        elif what < 0.85:
            slot = rng.randrange(6)
            if slot in policies and rng.random() < 0.3:
                del policies[slot]
            else:
                policies[slot] = _random_policy(rng, slot)
        else:
            slot = rng.randrange(3)
            if slot in network_sets:
                del network_sets[slot]
            else:
                network_sets[slot] = _random_network_set(rng, slot)
        now = calc.Inputs(
            list(endpoints.values()),
            list(policies.values()),
            PROFILES,
            TIERS,
            list(network_sets.values()),
        )
        _same_state(kept.calculate(now), calc.calculate("node1", now))


def test_policies_sharing_a_selector_each_apply_in_order_and_host_only_ones_never() -> None:
    """Workloads are tested once per distinct scope (namespace and selectors): policies
    that share one still each apply, in their order; doNotTrack/preDNAT ones are left out."""
    web = [
        pol(
            "GlobalNetworkPolicy",
            f"web-{i}",
            {"order": i, "selector": "app == 'web'", "ingress": [{"action": "Allow"}]},
        )
        for i in (3, 1, 2)
    ]
    untracked = pol(
        "GlobalNetworkPolicy",
        "untracked",
        {
            "order": 0,
            "selector": "app == 'web'",
            "doNotTrack": True,
            "applyOnForward": True,
            "ingress": [{"action": "Deny"}],
        },
    )
    in_x = pol(
        "NetworkPolicy",
        "web-x",
        {"order": 5, "selector": "app == 'web'", "ingress": [{"action": "Allow"}]},
        ns="x",
    )
    ordered = calc.ordered([*web, untracked, in_x], TIERS)
    scoped = calc.Scoped.of(ordered)
    assert len(scoped.scopes) == 2  # the global selector, and the same one inside x
    names = [p.name for p in scoped.applicable(A)]
    assert names == ["web-1", "web-2", "web-3", "web-x"]
    assert [p.name for p in scoped.applicable(C)] == ["web-1", "web-2", "web-3"]
    assert [p.name for p in scoped.applicable(B)] == []


def _random_labels(rng: random.Random) -> dict[str, str]:
    labels = {"app": rng.choice(["web", "db", "cache"])}
    if rng.random() < 0.5:
        labels["tier"] = rng.choice(["a", "b"])
    return labels


def _labelled(slot: int, labels: dict[str, str]) -> model.Endpoint:
    """Endpoint `slot` with `labels`: addresses and ports stay, as in a label change."""
    node = "node2" if slot % 5 == 0 else "node1"
    return wep("x" if slot % 2 else "y", f"e{slot}", f"10.1.{slot}.1", node, **labels)


def test_label_changes_one_at_a_time_leave_what_a_fresh_calculation_and_rendering_give() -> None:
    """Felix's Calculator and PolicyRenderer redo only the endpoint whose labels changed;
    after every change of a random series the state (its order too) and the table must
    be exactly what a fresh calculation and rendering give."""
    rng = random.Random(23)
    policies = [_random_policy(rng, slot) for slot in range(12)]
    labels = {slot: _random_labels(rng) for slot in range(40)}
    endpoints = {slot: _labelled(slot, found) for slot, found in labels.items()}
    kept, renderer = calc.Calculator("node1"), nft.PolicyRenderer()
    for _ in range(300):
        slot = rng.randrange(len(labels))
        labels[slot] = _random_labels(rng)
        endpoints[slot] = _labelled(slot, labels[slot])
        now = calc.Inputs(list(endpoints.values()), policies, PROFILES, TIERS)
        state, fresh = kept.calculate(now), calc.calculate("node1", now)
        assert state == fresh
        assert (list(state.endpoints), list(state.policies), list(state.profiles)) == (
            list(fresh.endpoints),
            list(fresh.policies),
            list(fresh.profiles),
        )
        assert full_script(renderer.render(state)) == full_script(nft.render(fresh))


def test_one_label_change_redoes_one_endpoint_however_many_there_are() -> None:
    """Planned, matched against the selectors and its chains rendered: that endpoint only."""
    rng = random.Random(5)
    policies = [_random_policy(rng, slot) for slot in range(12)]
    endpoints = {slot: _labelled(slot, _random_labels(rng)) for slot in range(200)}
    kept, renderer = calc.Calculator("node1"), nft.PolicyRenderer()

    def apply() -> tuple[calc.PolicyState, tuple[int, int, int]]:
        state = kept.calculate(calc.Inputs(list(endpoints.values()), policies, PROFILES, TIERS))
        renderer.render(state)
        return state, (kept.replanned, kept.rematched, renderer.rerendered)

    before, work = apply()
    assert work == (160, 200, 160)  # every local endpoint; every endpoint
    # Labels that give endpoint 7 other policies, so that its chains change too.
    relabelled = next(
        found
        for labels in ({"app": a} | t for a in ("web", "db", "cache") for t in ({}, {"tier": "a"}))
        if (found := _labelled(7, labels)).labels != endpoints[7].labels
        and calc.calculate("node1", calc.Inputs([found], policies, PROFILES, TIERS)).endpoints
        != {"calie7": before.endpoints["calie7"]}
    )
    endpoints[7] = relabelled
    assert apply()[1] == (1, 1, 1)
    assert apply()[1] == (0, 0, 0)
