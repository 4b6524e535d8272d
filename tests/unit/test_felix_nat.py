"""The natOutgoing nftables script (pure rendering)."""

from __future__ import annotations

from pycalico.felix.nat import NatPool, render


def test_nat_pools_masquerade_traffic_leaving_all_pools() -> None:
    script = render([NatPool("10.244.0.0/16", True), NatPool("10.245.0.0/16", False)])
    assert "add element ip calico all-ipam-pools { 10.244.0.0/16, 10.245.0.0/16 }" in script
    assert "add element ip calico masq-ipam-pools { 10.244.0.0/16 }" in script
    assert (
        "add rule ip calico nat-outgoing ip saddr @masq-ipam-pools "
        "ip daddr != @all-ipam-pools masquerade fully-random"
    ) in script


def test_without_nat_pools_there_is_no_nat_chain() -> None:
    # No NAT base chain, so the kernel's NAT hooks do not run on every packet.
    script = render([NatPool("10.244.0.0/16", False)])
    lines = script.splitlines()
    assert lines.index("delete chain ip calico nat-outgoing") > lines.index(
        "flush chain ip calico nat-outgoing"
    )
    assert "masquerade" not in script
    assert "add element ip calico masq-ipam-pools" not in script
    assert "delete chain" not in render([NatPool("10.244.0.0/16", True)], vxlan_port=4789)


def test_the_script_replaces_contents_so_it_is_idempotent() -> None:
    script = render([NatPool("10.244.0.0/16", True)])
    lines = script.splitlines()
    assert lines.index("flush set ip calico all-ipam-pools") < next(
        i for i, line in enumerate(lines) if line.startswith("add element ip calico all-ipam-pools")
    )
    assert render([NatPool("10.244.0.0/16", True)]) == script


def test_ipv6_pools_are_left_out_of_the_ipv4_table() -> None:
    assert "fd00" not in render([NatPool("fd00::/48", True)])


def test_vxlan_packets_skip_connection_tracking_when_vxlan_is_on() -> None:
    with_vxlan = render([NatPool("10.244.0.0/16", True)], vxlan_port=4789)
    assert "add rule ip calico raw-prerouting udp dport 4789 notrack" in with_vxlan
    assert "add rule ip calico raw-output udp dport 4789 notrack" in with_vxlan
    without = render([NatPool("10.244.0.0/16", True)])
    assert "notrack" not in without
    # Without VXLAN the raw chains go: an empty base chain still runs for every packet.
    assert "delete chain ip calico raw-prerouting" in without
    assert "delete chain ip calico raw-output" in without
