"""calico-node's default IPv4 pool from CALICO_IPV4POOL_* (validated like any pool)."""

from __future__ import annotations

import ipaddress

import pytest

from pycalico.api.resource import normalize
from pycalico.node.default_pool import PoolEnvError, default_ipv4_pool


def test_defaults_are_192_168_with_nat_and_no_encapsulation() -> None:
    pool = normalize(default_ipv4_pool({}))
    assert pool["metadata"]["name"] == "default-ipv4-ippool"
    spec = pool["spec"]
    assert (
        spec["cidr"],
        spec["ipipMode"],
        spec["vxlanMode"],
        spec["natOutgoing"],
        spec["blockSize"],
    ) == ("192.168.0.0/16", "Never", "Never", True, 26)


def test_env_sets_cidr_modes_nat_block_size_and_selector() -> None:
    env = {
        "CALICO_IPV4POOL_CIDR": "10.244.0.0/16",
        "CALICO_IPV4POOL_VXLAN": "crosssubnet",
        "CALICO_IPV4POOL_NAT_OUTGOING": "false",
        "CALICO_IPV4POOL_BLOCK_SIZE": "24",
        "CALICO_IPV4POOL_NODE_SELECTOR": "zone == 'a'",
    }
    spec = normalize(default_ipv4_pool(env))["spec"]
    assert (
        spec["cidr"],
        spec["vxlanMode"],
        spec.get("natOutgoing", False),
        spec["blockSize"],
        spec["nodeSelector"],
    ) == ("10.244.0.0/16", "CrossSubnet", False, 24, "zone == 'a'")


def test_the_default_range_moves_off_a_host_address() -> None:
    host = [ipaddress.ip_interface("192.168.1.10/24"), ipaddress.ip_interface("172.16.5.1/24")]
    assert default_ipv4_pool({}, host)["spec"]["cidr"] == "172.17.0.0/16"


def test_none_and_no_default_pools_create_nothing() -> None:
    assert default_ipv4_pool({"CALICO_IPV4POOL_CIDR": "none"}) is None
    assert default_ipv4_pool({"NO_DEFAULT_POOLS": "true"}) is None


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CALICO_IPV4POOL_IPIP": "sometimes"}, "is not one of Always"),
        ({"CALICO_IPV4POOL_BLOCK_SIZE": "big"}, "must be a number"),
        ({"NO_DEFAULT_POOLS": "true", "CALICO_IPV4POOL_CIDR": "10.0.0.0/8"}, "cannot be combined"),
    ],
)
def test_bad_environment_is_a_clear_error(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(PoolEnvError, match=fragment):
        default_ipv4_pool(env)


def test_an_invalid_cidr_is_caught_by_normal_pool_validation() -> None:
    masked = r"IPPool\.Spec\.CIDR = '10\.244\.0\.0/16' \(IPPool CIDR is not strictly masked\)"
    with pytest.raises(ValueError, match=masked):
        normalize(default_ipv4_pool({"CALICO_IPV4POOL_CIDR": "10.244.0.1/16"}))
