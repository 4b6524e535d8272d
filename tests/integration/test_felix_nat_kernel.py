"""The natOutgoing script against the real nftables, inside a namespace the test owns."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator

import pytest

from pycalico.felix.nat import NatPool, render

pytestmark = pytest.mark.integration


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"nattest-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)


def nft(netns: str, *args: str, script: str | None = None) -> str:
    return subprocess.run(
        ["ip", "netns", "exec", netns, "nft", *args],
        input=script,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_the_script_loads_and_applying_it_again_changes_nothing(netns: str) -> None:
    script = render([NatPool("10.244.0.0/16", True), NatPool("10.250.0.0/16", False)])
    nft(netns, "-f", "-", script=script)
    first = nft(netns, "list", "table", "ip", "calico")
    nft(netns, "-f", "-", script=script)
    assert nft(netns, "list", "table", "ip", "calico") == first
    assert "masquerade fully-random" in first and "10.250.0.0/16" in first


def test_turning_nat_off_removes_the_nat_chain(netns: str) -> None:
    nft(netns, "-f", "-", script=render([NatPool("10.244.0.0/16", True)], vxlan_port=4789))
    off = render([NatPool("10.244.0.0/16", False)], vxlan_port=4789)
    nft(netns, "-f", "-", script=off)
    table = nft(netns, "list", "table", "ip", "calico")
    # No NAT base chain left: the kernel's NAT hooks are not on the packet path.
    assert "masquerade" not in table and "type nat" not in table
    assert "udp dport 4789 notrack" in table
    nft(netns, "-f", "-", script=off)  # applies again over its own result
    assert nft(netns, "list", "table", "ip", "calico") == table


def test_without_nat_or_vxlan_no_base_chain_is_left(netns: str) -> None:
    script = render([NatPool("10.244.0.0/16", False)])
    nft(netns, "-f", "-", script=script)  # from nothing
    nft(netns, "-f", "-", script=script)  # and over itself
    assert "hook" not in nft(netns, "list", "table", "ip", "calico")
    nft(netns, "-f", "-", script=render([NatPool("10.244.0.0/16", True)], vxlan_port=4789))
    nft(netns, "-f", "-", script=script)  # and over the full table
    table = nft(netns, "list", "table", "ip", "calico")
    assert "hook" not in table and "10.244.0.0/16" in table
