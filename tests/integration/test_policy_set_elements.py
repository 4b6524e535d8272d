"""Set elements sent over netlink are exactly the ones nft writes: either side can take out
what the other put in, and the kernel's view matches the ruleset's text."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterator

import pytest

from pycalico.felix.dataplane import nft_netlink
from pycalico.felix.dataplane.nftables import NftablesManager, element_changes
from pycalico.felix.rules.element_keys import element_keys
from pycalico.felix.rules.table import NftSet, Ruleset
from pycalico.netns import in_netns
from tests.support.node_namespace import bare_namespace

pytestmark = pytest.mark.integration

V4 = "type ipv4_addr; flags interval;"
V6 = "type ipv6_addr; flags interval;"
PORTS4 = "type ipv4_addr . inet_proto . inet_service;"
PORTS6 = "type ipv6_addr . inet_proto . inet_service;"
CHAINS = {"filter-x": ("ip saddr @cali40s-a counter", "ip6 saddr @cali60s-a counter")}


def ruleset(v4: set[str], v6: set[str], ports: set[str]) -> Ruleset:
    return Ruleset(
        chains=dict(CHAINS),
        sets={
            "cali40s-a": NftSet(V4, frozenset(v4)),
            "cali60s-a": NftSet(V6, frozenset(v6)),
            "cali40n-a": NftSet(PORTS4, frozenset(ports)),
        },
    )


@contextlib.contextmanager
def namespace() -> Iterator[str]:
    """A bare namespace, by path (what in_netns and nsenter take)."""
    with bare_namespace("nftel") as name:
        yield f"/run/netns/{name}"


def kernel_elements(netns: str, name: str) -> set[str]:
    """The set's elements as nft lists them (in the JSON forms nft reads them back)."""
    out = subprocess.run(
        ["nsenter", f"--net={netns}", "nft", "-j", "list", "set", "inet", "calico", name],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found: set[str] = set()
    for item in json.loads(out)["nftables"]:
        for element in item.get("set", {}).get("elem", []):
            if isinstance(element, dict) and "prefix" in element:
                found.add(f"{element['prefix']['addr']}/{element['prefix']['len']}")
            elif isinstance(element, dict) and "range" in element:
                found.add("-".join(element["range"]))
            elif isinstance(element, dict) and "concat" in element:
                found.add(" . ".join(str(part) for part in element["concat"]))
            else:
                found.add(str(element))
    return found


def apply(netns: str, manager: NftablesManager, rules: Ruleset) -> None:
    in_netns(netns, lambda: manager.write(rules))


def fell_back(caplog: pytest.LogCaptureFixture) -> bool:
    """Whether an element change was refused and the whole table rewritten instead (the
    kernel ends up the same either way, so only this tells which way went)."""
    return any("element change failed" in r.getMessage() for r in caplog.records)


def test_label_change_elements_go_over_netlink_and_nft_agrees_with_every_key(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = ruleset(
        {"10.0.0.1", "10.0.0.4/30", "192.0.2.0/24"},
        {"fd00::1", "fd00:1::/64"},
        {"10.0.0.1 . 6 . 80"},
    )
    # Every kind of change: an address out of the middle of the others, a network replaced
    # by part of it, one reaching the top of the address space, v6, and a named port.
    second = ruleset(
        {"10.0.0.4/31", "10.0.0.2", "192.0.2.0/24", "255.255.255.0/24"},
        {"fd00::2", "fd00:1::/64", "ffff::/16"},
        {"10.0.0.2 . 6 . 80", "10.0.0.2 . 17 . 53"},
    )
    changes = element_changes(first, second)
    assert changes is not None and [c.add for c in changes] == [False] * 3 + [True] * 3
    with namespace() as netns, contextlib.closing(NftablesManager()) as manager:
        apply(netns, manager, first)  # whole table by `nft -f`
        apply(netns, manager, second)  # netlink
        assert kernel_elements(netns, "cali40s-a") == set(second.sets["cali40s-a"].elements)
        assert kernel_elements(netns, "cali60s-a") == set(second.sets["cali60s-a"].elements)
        assert kernel_elements(netns, "cali40n-a") == {
            "10.0.0.2 . tcp . 80",
            "10.0.0.2 . udp . 53",
        }
        # And back: netlink takes out what it put in and puts back what nft had written.
        apply(netns, manager, first)
        assert kernel_elements(netns, "cali40s-a") == set(first.sets["cali40s-a"].elements)
        assert kernel_elements(netns, "cali60s-a") == set(first.sets["cali60s-a"].elements)
    assert not fell_back(caplog)


def test_nft_diff_removes_elements_that_netlink_added(caplog: pytest.LogCaptureFixture) -> None:
    first = ruleset({"10.0.0.1"}, set(), set())
    second = ruleset({"10.0.0.1", "10.0.0.9", "198.51.100.0/25"}, set(), set())
    third = ruleset({"10.0.0.1"}, set(), set())
    third.chains["filter-y"] = ("counter",)  # a chain change: this diff goes through nft -f
    with namespace() as netns, contextlib.closing(NftablesManager()) as manager:
        apply(netns, manager, first)
        apply(netns, manager, second)
        assert not fell_back(caplog)
        assert element_changes(second, third) is None
        apply(netns, manager, third)
        assert kernel_elements(netns, "cali40s-a") == {"10.0.0.1"}


def test_a_refused_element_change_falls_back_to_the_whole_table_in_the_same_apply(
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = ruleset({"10.0.0.1"}, set(), set())
    second = ruleset({"10.0.0.2", "10.0.0.3"}, set(), set())
    with namespace() as netns, contextlib.closing(NftablesManager()) as manager:
        apply(netns, manager, first)
        # Someone removed our element behind Felix's back: deleting it again is refused
        # (and the addition in the same transaction with it), so Felix rewrites the table.
        subprocess.run(
            [
                "nsenter",
                f"--net={netns}",
                "nft",
                "delete element inet calico cali40s-a { 10.0.0.1 }",
            ],
            check=True,
        )
        apply(netns, manager, second)
        assert fell_back(caplog)
        assert kernel_elements(netns, "cali40s-a") == {"10.0.0.2", "10.0.0.3"}
        assert manager.applied is second


def test_netlink_batch_for_a_missing_table_is_an_error_not_a_crash() -> None:
    with namespace() as netns, contextlib.closing(nft_netlink.Channel()) as channel:
        change = nft_netlink.ElementChange(True, "cali40s-a", element_keys(V4, "192.0.2.7"))
        with pytest.raises(nft_netlink.NetlinkApplyError, match="add to cali40s-a"):
            in_netns(netns, lambda: channel.apply("inet", "calico", [change]))
        # The channel stays usable after a refusal.
        subprocess.run(
            [
                "nsenter",
                f"--net={netns}",
                "nft",
                "add table inet calico; add set inet calico "
                "cali40s-a { type ipv4_addr; flags interval; }",
            ],
            check=True,
        )
        in_netns(netns, lambda: channel.apply("inet", "calico", [change]))
        assert kernel_elements(netns, "cali40s-a") == {"192.0.2.7"}
