"""How flows name endpoints and policies (Goldmane's rules)."""

from __future__ import annotations

import pytest

from pycalico.flows import naming
from pycalico.flows.record import EndpointType, PolicyKind


def test_a_pod_with_a_generate_name_is_named_by_it_with_a_star() -> None:
    end = naming.workload("shop", "web-7c4b6-x2z4k", "web-7c4b6-")
    assert end == naming.Endpoint("web-7c4b6-*", "shop", EndpointType.WORKLOAD)


def test_a_pod_without_a_generate_name_is_named_by_its_name() -> None:
    assert naming.workload("shop", "db-0").name == "db-0"


def test_a_host_endpoint_is_named_by_its_node_and_is_not_namespaced() -> None:
    assert naming.host("node-1") == naming.Endpoint("node-1", "-", EndpointType.HOST)


@pytest.mark.parametrize(("namespace", "expected"), [("shop", "shop"), (None, "-")])
def test_network_sets_are_named_by_the_set(namespace: str | None, expected: str) -> None:
    end = naming.network_set("partners", namespace)
    assert (end.name, end.namespace, end.type) == ("partners", expected, EndpointType.NETWORK_SET)


@pytest.mark.parametrize(
    ("address", "name"),
    [
        ("10.1.2.3", "pvt"),
        ("172.16.0.1", "pvt"),
        ("172.31.255.255", "pvt"),
        ("172.32.0.1", "pub"),
        ("192.168.7.7", "pvt"),
        ("203.0.113.1", "pub"),
        ("8.8.8.8", "pub"),
        ("fd00::1", "pvt"),
        ("2001:db8::1", "pub"),
    ],
)
def test_other_addresses_are_the_public_or_private_network(address: str, name: str) -> None:
    assert naming.network(address) == naming.Endpoint(name, "-", EndpointType.NETWORK)


def test_a_kubernetes_network_policy_is_named_as_kubernetes_names_it() -> None:
    ref = naming.policy_ref("NetworkPolicy", "knp.default.deny-all", "shop", "default")
    assert ref == naming.PolicyRef(PolicyKind.NETWORK_POLICY, "shop", "deny-all", "default")
    assert naming.policy_id(ref) == "knp/shop/deny-all"


def test_calico_policies_keep_the_names_calicoctl_shows() -> None:
    np = naming.policy_ref("NetworkPolicy", "security.allow", "shop", "security")
    assert np == naming.PolicyRef(
        PolicyKind.CALICO_NETWORK_POLICY, "shop", "security.allow", "security"
    )
    gnp = naming.policy_ref("GlobalNetworkPolicy", "allow-dns", "ignored")
    assert gnp == naming.PolicyRef(PolicyKind.GLOBAL_NETWORK_POLICY, "", "allow-dns", "default")
    assert naming.policy_id(gnp) == "gnp/allow-dns"


def test_profiles_have_no_tier_and_staged_kubernetes_policies_the_default_tier() -> None:
    assert naming.policy_ref("Profile", "kns.shop") == naming.PolicyRef(
        PolicyKind.PROFILE, "", "kns.shop", ""
    )
    sknp = naming.policy_ref("StagedKubernetesNetworkPolicy", "lock", "shop")
    assert (sknp.kind, sknp.tier, naming.policy_id(sknp)) == (
        PolicyKind.STAGED_KUBERNETES_NETWORK_POLICY,
        "default",
        "sknp/shop/lock",
    )


def test_a_kind_that_is_no_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="IPPool is not a policy kind"):
        naming.policy_ref("IPPool", "p")


@pytest.mark.parametrize(
    "ref",
    [
        naming.PolicyRef(PolicyKind.CALICO_NETWORK_POLICY, "shop", "allow", "default"),
        naming.PolicyRef(PolicyKind.STAGED_GLOBAL_NETWORK_POLICY, "", "t.x", "t"),
        naming.PolicyRef(PolicyKind.PROFILE, "", "kns.shop", ""),
    ],
)
def test_policy_ids_read_back(ref: naming.PolicyRef) -> None:
    assert naming.parse_policy_id(naming.policy_id(ref)) == (ref.kind, ref.namespace, ref.name)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("allow", "is not a policy ID"),
        ("zz/allow", "is not a policy ID"),
        ("np/allow", "needs <namespace>/<name>"),
        ("np/a/b/c", "needs <namespace>/<name>"),
        ("gnp/shop/allow", "has no namespace"),
        ("gnp/", "names no policy"),
    ],
)
def test_malformed_policy_ids_are_refused(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        naming.parse_policy_id(text)
