"""`calicoctl ipam show | release | check | configure` over a real store."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam.allocator import Allocator
from tests.support.calicoctl_harness import InProcess


@pytest.fixture
def alloc(ctl: InProcess) -> Iterator[Allocator]:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        "metadata: {name: p}\nspec: {cidr: 10.244.0.0/16}\n",
    )
    with SqliteBackend(ctl.store) as backend:
        yield Allocator(backend)


def test_show_prints_the_pool_utilisation_table(ctl: InProcess, alloc: Allocator) -> None:
    alloc.auto_assign(5, 4, "h", {"node": "n1"}, "n1")
    rc, out, _ = ctl.run("ipam", "show")
    assert rc == 0
    assert out.splitlines() == [
        "+----------+---------------+-----------+------------+--------------+",
        "| GROUPING |     CIDR      | IPS TOTAL | IPS IN USE |   IPS FREE   |",
        "+----------+---------------+-----------+------------+--------------+",
        "| IP Pool  | 10.244.0.0/16 |     65536 | 5 (0%)     | 65531 (100%) |",
        "+----------+---------------+-----------+------------+--------------+",
    ]


def test_show_blocks_adds_a_row_per_block(ctl: InProcess, alloc: Allocator) -> None:
    [got] = alloc.auto_assign(1, 4, "h", {}, "n1")
    rows = ctl.run("ipam", "show", "--show-blocks")[1].splitlines()
    assert f"| Block    | {got.network} |" in rows[4] and "1 (2%)" in rows[4]


def test_show_ip_prints_handle_and_attributes_or_not_assigned(
    ctl: InProcess, alloc: Allocator
) -> None:
    [got] = alloc.auto_assign(1, 4, "k8s-pod-network.c1", {"node": "n1", "pod": "web"}, "n1")
    out = ctl.run("ipam", "show", f"--ip={got.ip}")[1]
    assert out.splitlines() == [
        f"IP {got.ip} is in use",
        "Handle ID: k8s-pod-network.c1",
        "Attributes:",
        "  node: n1",
        "  pod: web",
    ]
    assert ctl.run("ipam", "show", "--ip=10.244.200.1")[1] == "10.244.200.1 is not assigned\n"


def test_release_frees_the_address_and_a_second_release_fails(
    ctl: InProcess, alloc: Allocator
) -> None:
    [got] = alloc.auto_assign(1, 4, "h", {}, "n1")
    assert (
        ctl.run("ipam", "release", f"--ip={got.ip}")[1]
        == f"Successfully released IP address {got.ip}\n"
    )
    rc, _, err = ctl.run("ipam", "release", f"--ip={got.ip}")
    assert rc == 1 and err == f"IP address {got.ip} is not assigned\n"


def test_check_reports_leaked_addresses_and_counts_problems(
    ctl: InProcess, alloc: Allocator
) -> None:
    alloc.auto_assign(2, 4, "h", {"node": "n1"}, "n1")
    out = ctl.run("ipam", "check", "--show-problem-ips")[1]
    assert "Found 2 IPs that are allocated in IPAM but not actually in use." in out
    assert out.rstrip().endswith("Check complete; found 2 problems.")


def test_check_is_clean_when_every_allocation_is_used(ctl: InProcess, alloc: Allocator) -> None:
    [got] = alloc.auto_assign(1, 4, "h", {"node": "n1"}, "n1")
    wep = (
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n"
        "metadata: {name: n1-cni-c1-eth0, namespace: default}\n"
        f"spec: {{node: n1, ipNetworks: ['{got.ip}/32'], interfaceName: calic1}}\n"
    )
    assert ctl.run("apply", "-f", "-", stdin=wep)[0] == 0
    assert "Check complete; found 0 problems." in ctl.run("ipam", "check")[1]


def test_configure_sets_strict_affinity_and_show_configuration_reads_it(ctl: InProcess) -> None:
    assert ctl.run("ipam", "configure", "--strictaffinity=true")[0] == 0
    out = ctl.run("ipam", "show", "--show-configuration")[1]
    assert "| StrictAffinity     | true  |" in out


@pytest.mark.parametrize(
    "args",
    [
        ("ipam", "show", "--ip=bogus"),
        ("ipam", "release"),
        ("ipam", "frobnicate"),
        ("ipam", "configure"),
    ],
)
def test_bad_ipam_usage_is_one_line(ctl: InProcess, args: tuple[str, ...]) -> None:
    rc, _, err = ctl.run(*args)
    assert rc == 1 and len(err.strip().splitlines()) == 1


def test_percentages_use_go_formatting(ctl: InProcess, alloc: Allocator) -> None:
    alloc.assign_ip(ipaddress.ip_address("10.244.0.1"), "h", {}, "n1")
    assert "| 1 (2%)" in ctl.run("ipam", "show", "--show-blocks")[1]


def test_deleting_a_pool_releases_its_block_affinities(ctl: InProcess, alloc: Allocator) -> None:
    [kept] = alloc.auto_assign(1, 4, "kept", {}, "n1")
    alloc.auto_assign(1, 4, "gone", {}, "n2")
    alloc.release_by_handle("gone")
    assert ctl.run("delete", "ippool", "p")[1] == "Successfully deleted 1 'IPPool' resource(s)\n"
    blocks = alloc.blocks()
    # The empty block went away; the one still holding an address lost its owner only.
    assert [(str(b.cidr), b.affinity, b.in_use()) for b in blocks] == [(str(kept.network), None, 1)]
    assert alloc.backend.list("/calico/ipam/v2/host/")[0] == []


def test_get_f_with_several_kinds_prints_a_table_per_kind_and_a_plain_list(
    ctl: InProcess, tmp_path: Path
) -> None:
    both = (
        "apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {name: p}\n"
        "spec: {cidr: 10.9.0.0/16}\n---\napiVersion: projectcalico.org/v3\n"
        "kind: GlobalNetworkSet\nmetadata: {name: s}\nspec: {nets: [192.0.2.0/24]}\n"
    )
    path = tmp_path / "both.yaml"
    path.write_text(both)
    assert ctl.run("apply", "-f", str(path))[0] == 0
    out = ctl.run("get", "-f", str(path))[1]
    assert "CIDR" in out.splitlines()[0] and "10.9.0.0/16" in out
    assert out.count("NAME") == 2
    listed = ctl.run("get", "-f", str(path), "-o", "yaml")[1]
    assert (
        "kind: List" in listed and "kind: IPPool" in listed and "kind: GlobalNetworkSet" in listed
    )


def test_show_handles_dual_stack_pools(ctl: InProcess, alloc: Allocator) -> None:
    ctl.run(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        "metadata: {name: v6}\nspec: {cidr: 'fd00:9::/64'}\n",
    )
    alloc.auto_assign(1, 6, "h6", {}, "n1")
    rc, out, err = ctl.run("ipam", "show", "--show-blocks")
    assert rc == 0, err
    assert "fd00:9::/64" in out and "| 1 (0%)" in out
