"""`calicoctl ipam show | release | check | configure` over a real store."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycalico.datastore.backend import Put
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from pycalico.ipam.allocator import CONFIRMED_AFFINITY, Allocator
from tests.support.calicoctl_harness import InProcess


@pytest.fixture
def alloc(ctl: InProcess) -> Iterator[Allocator]:
    ctl.ok(
        "apply",
        "-f",
        "-",
        stdin="apiVersion: projectcalico.org/v3\nkind: IPPool\n"
        "metadata: {name: p}\nspec: {cidr: 10.244.0.0/16}\n---\n"
        "apiVersion: projectcalico.org/v3\nkind: Node\nmetadata: {name: n1}\nspec: {}\n",
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


def _leave_orphans(alloc: Allocator) -> None:
    """What a node that went, and an ADD with a name now refused, left behind."""
    alloc.auto_assign(1, 4, "k8s-pod-network.gone", {"node": "gone"}, "gone")
    affinity = keys.affinity_key("x/y", ipaddress.ip_network("10.244.255.0/26"))
    alloc.backend.txn([], [Put(affinity, CONFIRMED_AFFINITY)])


def test_check_reports_affinities_of_nodes_without_a_node_resource(
    ctl: InProcess, alloc: Allocator, tmp_path: Path
) -> None:
    alloc.auto_assign(1, 4, "k8s-pod-network.mine", {"node": "n1"}, "n1")
    _leave_orphans(alloc)
    report = tmp_path / "report.json"
    out = ctl.run("ipam", "check", "--show-problem-ips", "-o", str(report))[1]
    gone_block = next(b.cidr for b in alloc.blocks() if b.host == "gone")
    assert "Scanning for block affinities of nodes that do not exist..." in out
    assert f"  block {gone_block} is affine to node 'gone', which does not exist." in out
    assert "  block 10.244.255.0/26 is affine to node 'x/y', which does not exist." in out
    assert "Found 2 block affinities of nodes with no Node resource." in out
    # Two leaked addresses (n1's and gone's) and the two affinities.
    assert out.rstrip().endswith("Check complete; found 4 problems.")
    written = json.loads(report.read_text())
    assert sorted(written) == [
        "allocations",
        "clusterGUID",
        "clusterInformationRevision",
        "clusterType",
        "datastoreLocked",
        "leakedAffinities",
        "version",
    ]
    assert written["leakedAffinities"] == [
        {"node": "gone", "cidr": str(gone_block)},
        {"node": "x/y", "cidr": "10.244.255.0/26"},
    ]
    [gone] = [a for [a] in written["allocations"].values() if a["node"] == "gone"]
    assert gone["handle"] == "k8s-pod-network.gone" and gone["inUse"] is False
    assert isinstance(gone["sequenceNumber"], int) and gone["owners"] is None


def test_release_from_report_removes_what_check_found_and_keeps_the_rest(
    ctl: InProcess, alloc: Allocator, tmp_path: Path
) -> None:
    [mine] = alloc.auto_assign(1, 4, "k8s-pod-network.mine", {"node": "n1"}, "n1")
    wep = (
        "apiVersion: projectcalico.org/v3\nkind: WorkloadEndpoint\n"
        "metadata: {name: n1-cni-mine-eth0, namespace: default}\n"
        f"spec: {{node: n1, ipNetworks: ['{mine.ip}/32'], interfaceName: calimine}}\n"
    )
    ctl.ok("apply", "-f", "-", stdin=wep)
    _leave_orphans(alloc)
    report = tmp_path / "report.json"
    ctl.ok("ipam", "check", "-o", str(report))
    rc, out, _ = ctl.run("ipam", "release", f"--from-report={report}", "--force")
    assert rc == 0
    assert out.splitlines() == [
        "WARNING: Data store is not locked. Ignoring due to --force option",
        "Releasing 1 old IPs",
        "Released 1 IPs successfully",
        "Deleting 0 handles...",
        "Key: '.' = Deleted OK; 'x' = already gone.",
        "",
        "Releasing 2 block affinities of nodes that do not exist",
        "You may now unlock the data store.",
    ]
    assert [host for host, _ in alloc.affinities()] == ["n1"]
    assert [b.host for b in alloc.blocks()] == ["n1"]
    assert alloc.addresses_of_handle("k8s-pod-network.mine") == [mine]
    assert "Check complete; found 0 problems." in ctl.run("ipam", "check")[1]


def test_release_from_report_wants_a_locked_store_a_fresh_report_and_the_same_cluster(
    ctl: InProcess, alloc: Allocator, tmp_path: Path
) -> None:
    _leave_orphans(alloc)
    info = (
        "apiVersion: projectcalico.org/v3\nkind: ClusterInformation\n"
        "metadata: {name: default}\nspec: {clusterGUID: abc, datastoreReady: %s}\n"
    )
    ctl.ok("apply", "-f", "-", stdin=info % "true")
    report = tmp_path / "report.json"
    ctl.ok("ipam", "check", "-o", str(report))
    rc, _, err = ctl.run("ipam", "release", f"--from-report={report}")
    assert rc == 1
    assert err == "Data store is not locked. Either lock the data store, or re-run with --force.\n"
    ctl.ok("apply", "-f", "-", stdin=info % "false")  # locking moves the revision on
    rc, _, err = ctl.run("ipam", "release", f"--from-report={report}")
    assert rc == 1 and err.startswith("The provided reports are all stale")
    ctl.ok("ipam", "check", "-o", str(report))
    foreign = tmp_path / "foreign.json"
    foreign.write_text(report.read_text().replace('"abc"', '"other"'))
    rc, _, err = ctl.run("ipam", "release", f"--from-report={foreign}", "--force")
    assert rc == 1 and "mismatched cluster GUID. Refusing to release." in err
    rc, out, _ = ctl.run("ipam", "release", f"--from-report={report}")
    assert rc == 0 and "Releasing 2 block affinities of nodes that do not exist" in out
    assert alloc.affinities() == []


def test_release_from_a_report_that_is_not_one_is_a_one_line_error(
    ctl: InProcess, tmp_path: Path
) -> None:
    bogus = tmp_path / "bogus.json"
    bogus.write_text("[1, 2]")
    rc, _, err = ctl.run("ipam", "release", f"--from-report={bogus}")
    assert (rc, err) == (1, f"cannot read report {bogus}: not a JSON ipam check report\n")


def _without_store(ctl: InProcess) -> None:
    for path in ctl.store.parent.glob(ctl.store.name + "*"):
        path.unlink()


def test_configure_creates_a_missing_store_as_calicoctl_writes_do(ctl: InProcess) -> None:
    _without_store(ctl)
    ctl.ok("ipam", "configure", "--strictaffinity=true")
    rc, out, _ = ctl.run("ipam", "show", "--show-configuration")
    assert rc == 0 and "| StrictAffinity     | true  |" in out


def test_reading_ipam_commands_do_not_create_a_missing_store(ctl: InProcess) -> None:
    _without_store(ctl)
    rc, _, err = ctl.run("ipam", "show")
    assert rc != 0 and "does not exist" in err and not ctl.store.exists()
