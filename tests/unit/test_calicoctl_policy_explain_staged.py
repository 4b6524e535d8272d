"""`calicoctl policy explain` with staged policies: the real verdict, then what the staged
policies would decide were they enforced, in text, JSON and YAML."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from tests.support.calicoctl_harness import InProcess, multi, resource_yaml

ARGS = ("policy", "explain", "--from=shop/client", "--to=shop/web", "--port=80")


def _pod(name: str, ip: str) -> str:
    return resource_yaml(
        "WorkloadEndpoint",
        f"n1-k8s-{name}-eth0",
        {
            "node": "n1",
            "orchestrator": "k8s",
            "pod": name,
            "endpoint": "eth0",
            "ipNetworks": [f"{ip}/32"],
            "interfaceName": f"cali{name}",
            "profiles": ["kns.shop"],
        },
        namespace="shop",
        labels={
            "app": name,
            "projectcalico.org/namespace": "shop",
            "projectcalico.org/orchestrator": "k8s",
        },
    )


def _snp(name: str, **spec: Any) -> str:
    return resource_yaml(
        "StagedNetworkPolicy", name, {"selector": "app == 'web'", **spec}, namespace="shop"
    )


@pytest.fixture
def shop(ctl: InProcess) -> InProcess:
    """Two pods the namespace's profile lets talk, and an enforced allow for web."""
    docs = multi(
        resource_yaml(
            "Profile",
            "kns.shop",
            {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        ),
        _pod("client", "10.0.0.1"),
        _pod("web", "10.0.0.2"),
        resource_yaml(
            "NetworkPolicy",
            "allow-web",
            {"selector": "app == 'web'", "order": 100, "ingress": [{"action": "Allow"}]},
            namespace="shop",
        ),
    )
    ctl.ok("apply", "-f", "-", stdin=docs)
    return ctl


ENFORCED = [
    "egress   shop/client ALLOW by profile kns.shop rule 0",
    "ingress  shop/web    ALLOW by policy default/shop/allow-web rule 0",
    "verdict: ALLOW",
]


def test_without_staged_policies_explain_shows_only_the_real_verdict(shop: InProcess) -> None:
    assert shop.ok(*ARGS).out.splitlines() == ENFORCED
    assert json.loads(shop.ok(*ARGS, "-o", "json").out)["staged"] is None


def test_a_staged_deny_shows_after_the_real_allow_with_its_policy_and_rule(
    shop: InProcess,
) -> None:
    lockdown = _snp(
        "lockdown", order=10, ingress=[{"action": "Log"}, {"action": "Deny", "protocol": "TCP"}]
    )
    shop.ok("apply", "-f", "-", stdin=lockdown)
    assert shop.ok(*ARGS).out.splitlines() == [
        *ENFORCED,
        "with staged policies enforced:",
        "egress   shop/client ALLOW by profile kns.shop rule 0",
        "ingress  shop/web    DENY  by StagedNetworkPolicy default/shop/lockdown rule 1",
        "staged verdict: DENY",
    ]


def test_a_staged_policy_after_the_deciding_one_changes_nothing(shop: InProcess) -> None:
    shop.ok("apply", "-f", "-", stdin=_snp("late", order=200, ingress=[{"action": "Deny"}]))
    out = shop.ok(*ARGS).out.splitlines()
    assert out[len(ENFORCED) :] == [
        "with staged policies enforced:",
        "egress   shop/client ALLOW by profile kns.shop rule 0",
        "ingress  shop/web    ALLOW by policy default/shop/allow-web rule 0",
        "staged verdict: ALLOW",
    ]


@pytest.mark.parametrize(
    ("doc", "by"),
    [
        (
            resource_yaml(
                "StagedGlobalNetworkPolicy",
                "deny-egress",
                {
                    "selector": "app == 'client'",
                    "types": ["Egress"],
                    "egress": [{"action": "Deny"}],
                },
            ),
            "egress   shop/client DENY  by StagedGlobalNetworkPolicy default/deny-egress rule 0",
        ),
        (
            resource_yaml(
                "StagedKubernetesNetworkPolicy",
                "web",
                {"podSelector": {"matchLabels": {"app": "client"}}, "policyTypes": ["Egress"]},
                namespace="shop",
            ),
            "egress   shop/client DENY  by end of tier default: no policy allowed it",
        ),
    ],
    ids=["sgnp", "sknp"],
)
def test_global_and_kubernetes_staged_policies_take_part_as_their_enforced_kinds(
    shop: InProcess, doc: str, by: str
) -> None:
    shop.ok("apply", "-f", "-", stdin=doc)
    out = shop.ok(*ARGS).out.splitlines()
    assert out[len(ENFORCED) :] == ["with staged policies enforced:", by, "staged verdict: DENY"]


@pytest.mark.parametrize("action", ["Learn", "Ignore"])
def test_learn_and_ignore_are_evaluated_as_set_as_calicos_felix_does(
    shop: InProcess, action: str
) -> None:
    shop.ok("apply", "-f", "-", stdin=_snp("x", order=1, stagedAction=action,
                                            ingress=[{"action": "Deny"}]))  # fmt: skip
    assert shop.ok(*ARGS).out.endswith("staged verdict: DENY\n")


def test_a_delete_staged_policy_takes_no_part(shop: InProcess) -> None:
    doc = resource_yaml(
        "StagedNetworkPolicy", "allow-web", {"stagedAction": "Delete"}, namespace="shop"
    )
    shop.ok("apply", "-f", "-", stdin=doc)
    assert shop.ok(*ARGS).out.splitlines() == ENFORCED


def test_json_gives_both_verdicts_with_each_step_and_the_policy_by_kind_and_name(
    shop: InProcess,
) -> None:
    shop.ok("apply", "-f", "-", stdin=_snp("lockdown", order=10, ingress=[{"action": "Deny"}]))
    doc = json.loads(shop.ok(*ARGS, "-o", "json").out)
    profile_step = {
        "direction": "egress",
        "endpoint": "shop/client",
        "stage": "",
        "action": "Allow",
        "by": "profile kns.shop",
        "policy": None,
        "rule": 0,
        "notEnforced": [],
    }
    assert doc == {
        "from": "shop/client",
        "to": "shop/web",
        "protocol": "tcp",
        "port": 80,
        "verdict": "Allow",
        "steps": [
            profile_step,
            {
                "direction": "ingress",
                "endpoint": "shop/web",
                "stage": "",
                "action": "Allow",
                "by": "policy default/shop/allow-web",
                "policy": {
                    "kind": "NetworkPolicy",
                    "tier": "default",
                    "namespace": "shop",
                    "name": "allow-web",
                },
                "rule": 0,
                "notEnforced": [],
            },
        ],
        "staged": {
            "verdict": "Deny",
            "steps": [
                profile_step,
                {
                    "direction": "ingress",
                    "endpoint": "shop/web",
                    "stage": "",
                    "action": "Deny",
                    "by": "StagedNetworkPolicy default/shop/lockdown",
                    "policy": {
                        "kind": "StagedNetworkPolicy",
                        "tier": "default",
                        "namespace": "shop",
                        "name": "lockdown",
                    },
                    "rule": 0,
                    "notEnforced": [],
                },
            ],
        },
    }


def test_yaml_is_the_same_document_as_json(shop: InProcess) -> None:
    shop.ok("apply", "-f", "-", stdin=_snp("lockdown", order=10, ingress=[{"action": "Deny"}]))
    as_json = json.loads(shop.ok(*ARGS, "-o", "json").out)
    assert yaml.safe_load(shop.ok(*ARGS, "--output=yaml").out) == as_json


def test_an_unknown_output_format_is_one_line_of_error(shop: InProcess) -> None:
    result = shop.run(*ARGS, "-o", "wide")
    assert result.rc != 0 and result.out == ""
    assert len(result.err.splitlines()) == 1 and "wide" in result.err
