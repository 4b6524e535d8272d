"""The kernel keys of set elements, byte for byte as nft sends them."""

from __future__ import annotations

import pytest

from pycalico.felix.dataplane.nftables import NETLINK_MAX_KEYS, element_changes
from pycalico.felix.rules.element_keys import Key, UnencodableElement, element_keys
from pycalico.felix.rules.table import NftSet, Ruleset

V4 = "type ipv4_addr; flags interval;"
V6 = "type ipv6_addr; flags interval;"
PORTS4 = "type ipv4_addr . inet_proto . inet_service;"
PORTS6 = "type ipv6_addr . inet_proto . inet_service;"


def test_an_address_is_itself_and_an_interval_end_at_the_next_address() -> None:
    assert element_keys(V4, "10.0.0.255") == (
        Key(bytes([10, 0, 0, 255])),
        Key(bytes([10, 0, 1, 0]), interval_end=True),
    )


def test_a_network_ends_after_its_last_address() -> None:
    assert element_keys(V4, "192.0.2.0/24") == (
        Key(bytes([192, 0, 2, 0])),
        Key(bytes([192, 0, 3, 0]), interval_end=True),
    )


def test_a_network_reaching_the_top_of_the_address_space_has_no_end() -> None:
    assert element_keys(V4, "255.255.255.0/24") == (Key(bytes([255, 255, 255, 0])),)
    assert element_keys(V4, "0.0.0.0/0") == (Key(bytes(4)),)
    assert element_keys(V6, "ffff::/16") == (Key(bytes([255, 255]) + bytes(14)),)


def test_ipv6_interval_ends_stay_ipv6_even_for_small_numbers() -> None:
    assert element_keys(V6, "::1") == (
        Key(bytes(15) + b"\x01"),
        Key(bytes(15) + b"\x02", interval_end=True),
    )


def test_named_port_fields_are_padded_to_32_bits() -> None:
    assert element_keys(PORTS4, "10.0.0.1 . 6 . 80") == (
        Key(bytes([10, 0, 0, 1, 6, 0, 0, 0, 0, 80, 0, 0])),
    )
    assert element_keys(PORTS6, "fd00::1 . 17 . 5353") == (
        Key(bytes([0xFD]) + bytes(14) + b"\x01" + bytes([17, 0, 0, 0, 0x14, 0xE9, 0, 0])),
    )


@pytest.mark.parametrize(
    ("decl", "element"),
    [
        (V4, "fd00::1"),
        (V6, "10.0.0.1"),
        (V4, "10.0.0.1/33"),
        (V4, "10.0.0.1/24"),  # host bits set: not a network nft would have written
        (PORTS4, "10.0.0.1 . tcp . 80"),
        (PORTS4, "10.0.0.1 . 6 . 70000"),
        (PORTS4, "10.0.0.1 . 6"),
        (PORTS6, "10.0.0.1 . 6 . 80"),
        ("type ifname : verdict;", '"cali1" : goto x'),
    ],
)
def test_what_is_not_an_element_of_the_set_is_refused(decl: str, element: str) -> None:
    with pytest.raises(UnencodableElement):
        element_keys(decl, element)


def rules(elements: set[str], decl: str = V4, chain: str = "counter") -> Ruleset:
    return Ruleset(chains={"c": (chain,)}, sets={"s": NftSet(decl, frozenset(elements))})


def test_element_changes_are_deletions_then_additions_of_only_what_moved() -> None:
    changes = element_changes(rules({"10.0.0.1", "10.0.0.2"}), rules({"10.0.0.2", "10.0.0.3"}))
    assert changes is not None
    assert [(c.add, c.set_name, c.keys) for c in changes] == [
        (False, "s", element_keys(V4, "10.0.0.1")),
        (True, "s", element_keys(V4, "10.0.0.3")),
    ]
    assert element_changes(rules({"10.0.0.1"}), rules({"10.0.0.1"})) == []


def test_anything_but_moved_elements_is_left_to_nft() -> None:
    old = rules({"10.0.0.1"})
    assert element_changes(old, rules({"10.0.0.2"}, chain="drop")) is None
    assert element_changes(old, rules({"10.0.0.1"}, decl=V6)) is None
    assert element_changes(old, Ruleset(chains=old.chains)) is None
    with_map = Ruleset(old.chains, old.sets, {"m": NftSet("type ifname : verdict;", frozenset())})
    assert element_changes(old, with_map) is None
    many = {f"10.1.{i // 256}.{i % 256}" for i in range(NETLINK_MAX_KEYS)}
    assert element_changes(old, rules(many)) is None


def test_one_sets_change_too_big_for_one_netlink_attribute_is_left_to_nft() -> None:
    many = {f"fd00::{i:x} . 6 . 80" for i in range(1, 1901)}  # 36-byte keys: > 64 KiB
    assert len(many) < NETLINK_MAX_KEYS  # the attribute's size limit, not the key count
    first = Ruleset(sets={"s": NftSet(PORTS6, frozenset())})
    assert element_changes(first, Ruleset(sets={"s": NftSet(PORTS6, frozenset(many))})) is None
