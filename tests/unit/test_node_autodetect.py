"""Node IP autodetection methods, over interface lists as netlink would report them."""

from __future__ import annotations

import ipaddress
import re

import pytest

from pycalico.node.autodetect import AutodetectError, HostInterface, autodetect


def iface(index: int, name: str, *addrs: str) -> HostInterface:
    return HostInterface(index, name, tuple(ipaddress.ip_interface(a) for a in addrs))


HOST = [
    iface(1, "lo", "127.0.0.1/8", "::1/128"),
    iface(2, "eth0", "192.0.2.10/24", "fe80::1/64", "2001:db8::10/64"),
    iface(3, "eth1", "198.51.100.7/25"),
    iface(4, "docker0", "172.17.0.1/16"),
    iface(5, "cali1234567890a", "169.254.1.1/32"),
    iface(6, "vxlan.calico", "10.244.0.0/32"),
]


def test_first_found_walks_interfaces_from_the_highest_index_skipping_defaults() -> None:
    assert str(autodetect("first-found", HOST)) == "198.51.100.7/25"
    assert str(autodetect("", HOST)) == "198.51.100.7/25"


def test_first_found_ipv6_takes_a_global_address_not_link_local() -> None:
    assert str(autodetect("first-found", HOST, version=6)) == "2001:db8::10/64"


def test_interface_regexes_choose_the_interface() -> None:
    assert str(autodetect("interface=eth0", HOST)) == "192.0.2.10/24"
    assert str(autodetect("interface=nomatch,^eth0$", HOST)) == "192.0.2.10/24"


def test_skip_interface_adds_to_the_default_exclusions() -> None:
    assert str(autodetect("skip-interface=eth1", HOST)) == "192.0.2.10/24"


def test_cidr_picks_the_address_inside_one_of_the_ranges() -> None:
    assert str(autodetect("cidr=192.0.2.0/24", HOST)) == "192.0.2.10/24"
    assert str(autodetect("cidr=10.0.0.0/8,198.51.100.0/24", HOST)) == "198.51.100.7/25"


def test_can_reach_uses_the_kernels_source_address_towards_the_destination() -> None:
    asked = []

    def source(dest: str) -> str:
        asked.append(dest)
        return "192.0.2.10"

    assert str(autodetect("can-reach=203.0.113.1", HOST, source_towards=source)) == "192.0.2.10/24"
    assert asked == ["203.0.113.1"]


@pytest.mark.parametrize(
    ("method", "fragment"),
    [
        ("bogus", "Invalid IP autodetection method"),
        ("interface=", "Invalid IP autodetection method"),
        ("interface=(", "invalid interface regex"),
        ("cidr=notacidr", "invalid CIDR"),
        ("interface=wlan.*", "Failed to autodetect an IPv4 address"),
    ],
)
def test_bad_methods_and_no_match_are_clear_errors(method: str, fragment: str) -> None:
    with pytest.raises(AutodetectError, match=re.escape(fragment)):
        autodetect(method, HOST)


def test_can_reach_failure_is_reported() -> None:
    def unreachable(dest: str) -> str:
        raise OSError("Network is unreachable")

    with pytest.raises(AutodetectError, match=r"cannot reach 203\.0\.113\.9"):
        autodetect("can-reach=203.0.113.9", HOST, source_towards=unreachable)
