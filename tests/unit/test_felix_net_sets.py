"""Selector sets' networks merged for nftables' interval sets, as ipaddress merges them."""

from __future__ import annotations

import ipaddress
import random

import pytest

from pycalico.felix.rules.policy import _nets


def _random_networks(
    rng: random.Random, version: int, count: int
) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    bits = 32 if version == 4 else 128
    base = int(ipaddress.ip_address("10.65.0.0" if version == 4 else "fd00:65::"))
    found = []
    for _ in range(count):
        prefix = rng.choice([bits, bits, bits, bits - 1, bits - 2, bits - 5, bits - 8])
        address = base + rng.randrange(1 << 10)
        found.append(ipaddress.ip_network((address, prefix), strict=False))
    return found


@pytest.mark.parametrize("seed", range(20))
def test_merged_networks_are_what_collapse_addresses_gives(seed: int) -> None:
    rng = random.Random(seed)
    for version in (4, 6):
        nets = _random_networks(rng, version, rng.randrange(1, 400))
        other = _random_networks(rng, 10 - version, 5)  # the other family is left out
        expected = [str(n) for n in ipaddress.collapse_addresses(nets)]
        assert _nets([*nets, *other], version) == expected


def test_edges_of_the_address_space_and_no_networks() -> None:
    assert _nets([ipaddress.ip_network("0.0.0.0/0")], 4) == ["0.0.0.0/0"]
    assert _nets([ipaddress.ip_network("255.255.255.255/32")], 4) == ["255.255.255.255/32"]
    assert _nets([ipaddress.ip_network("::/0")], 6) == ["::/0"]
    assert _nets([], 4) == []
