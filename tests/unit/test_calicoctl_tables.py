"""Table output byte for byte: Go text/tabwriter as calicoctl configures it.

calicoctl writes `tabwriter.NewWriter(os.Stdout, 5, 1, 3, ' ', 0)` and ends every cell
with a tab: each column is as wide as its longest cell plus 3 (at least 5), every cell is
padded to that width (the last one too, so lines end in spaces), and a blank line follows.
"""

from __future__ import annotations

from pycalico.ctl.tables import render
from tests.support.calicoctl_harness import InProcess, multi, pool_yaml, resource_yaml


def test_render_minimum_width_is_five() -> None:
    # One-character cells: 1 + 3 padding = 4, raised to the minimum of 5.
    assert render([["a", "b"], ["c", "d"]]) == "a    b    \nc    d    \n\n"


def test_render_pads_longest_cell_by_three_and_the_last_column_too() -> None:
    assert render([["NAME", "X"], ["longer-name", ""]]) == (
        "NAME          X    \nlonger-name        \n\n"
    )


def test_render_of_nothing_is_nothing() -> None:
    assert render([]) == ""


def test_ippool_table_exact_bytes(ctl: InProcess) -> None:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=multi(
            pool_yaml("default-ipv4-ippool", "10.244.0.0/16", ipipMode="Always", natOutgoing=True),
            pool_yaml("p6", "fd00:10::/64", nodeSelector="zone == 'a'", disabled=True),
        ),
    )
    assert ctl.ok("get", "ippools").out == (
        "NAME                  CIDR            SELECTOR      \n"
        "default-ipv4-ippool   10.244.0.0/16   all()         \n"
        "p6                    fd00:10::/64    zone == 'a'   \n"
        "\n"
    )
    assert ctl.ok("get", "ippools", "-o", "wide").out == (
        "NAME                  CIDR            NAT     IPIPMODE   VXLANMODE   DISABLED   "
        "DISABLEBGPEXPORT   SELECTOR      ASSIGNMENTMODE   \n"
        "default-ipv4-ippool   10.244.0.0/16   true    Always     Never       false      "
        "false              all()         Automatic        \n"
        "p6                    fd00:10::/64    false   Never      Never       true       "
        "false              zone == 'a'   Automatic        \n"
        "\n"
    )


def test_empty_list_prints_header_and_blank_line(ctl: InProcess) -> None:
    assert ctl.ok("get", "ippools").out == "NAME   CIDR   SELECTOR   \n\n"
    assert ctl.ok("get", "hostendpoints", "-o", "wide").out == (
        "NAME   NODE   INTERFACE   IPS   PROFILES   \n\n"
    )


def test_empty_cells_are_padded(ctl: InProcess) -> None:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=resource_yaml("Node", "node-1", {"bgp": {"ipv4Address": "192.168.1.10/24"}}),
    )
    # IPV6 is empty: the row still carries its 7 columns of padding.
    assert ctl.ok("get", "nodes", "-o", "wide").out == (
        "NAME     ASN       IPV4              IPV6   \n"
        "node-1   (64512)   192.168.1.10/24          \n"
        "\n"
    )


def test_namespace_column_is_first_and_padded(ctl: InProcess) -> None:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin=resource_yaml("NetworkSet", "blocked", {"nets": ["198.51.100.0/24"]}, "kube-system"),
    )
    assert ctl.ok("get", "networksets", "-A", "-o", "wide").out == (
        "NAMESPACE     NAME      NETS              \nkube-system   blocked   198.51.100.0/24   \n\n"
    )


def test_custom_columns_and_name_output(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=pool_yaml("a", "10.1.0.0/16", natOutgoing=True))
    assert ctl.ok("get", "ippools", "-o", "custom-columns=NAME,NAT,ipipmode").out == (
        "NAME   NAT    IPIPMODE   \na      true   Never      \n\n"
    )
    assert ctl.ok("get", "ippools", "-o", "name").out == "ippool.projectcalico.org/a\n"
