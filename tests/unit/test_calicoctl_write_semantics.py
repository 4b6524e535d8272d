"""create / replace / apply / delete: what each does to the store and what it prints.

Wording follows calicoctl's commands/{create,replace,apply,delete}.go (reference §6.3):
successes on stdout, the failure on stderr, exit code 1 on any failure.
"""

from __future__ import annotations

import json

from tests.support.calicoctl_harness import InProcess, multi, pool_yaml, resource_yaml

A = pool_yaml("a", "10.1.0.0/16")
B = pool_yaml("b", "10.2.0.0/16")
C = pool_yaml("c", "10.3.0.0/16")


def names(ctl: InProcess) -> list[str]:
    return [line.split()[0] for line in ctl.ok("get", "ippools").lines()[1:-1]]


def spec_of(ctl: InProcess, name: str) -> dict[str, object]:
    spec: dict[str, object] = json.loads(ctl.ok("get", "ippool", name, "-o", "json").out)["spec"]
    return spec


def test_create_then_create_again_fails_with_already_exists(ctl: InProcess) -> None:
    assert ctl.ok("create", "-f", "-", stdin=A).out == (
        "Successfully created 1 'IPPool' resource(s)\n"
    )
    again = ctl.run("create", "-f", "-", stdin=A)
    assert again == (
        1,
        "",
        "Failed to create 'IPPool' resource: [resource already exists: IPPool(a)]\n",
    )


def test_create_of_several_that_all_exist(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=multi(A, B))
    again = ctl.run("create", "-f", "-", stdin=multi(A, B))
    assert again == (
        1,
        "",
        "Failed to create any 'IPPool' resources: "
        "[resource already exists: IPPool(a) resource already exists: IPPool(b)]\n",
    )


def test_create_skip_exists_counts_skipped_as_handled(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=B)
    result = ctl.ok("create", "-f", "-", "--skip-exists", stdin=multi(A, B, C))
    assert result.out == "Successfully created 3 'IPPool' resource(s)\n"
    assert names(ctl) == ["a", "b", "c"]


def test_create_partial_success_when_the_second_of_three_fails(ctl: InProcess) -> None:
    """As calicoctl: the write goes on past the failure and counts what it wrote."""
    ctl.ok("create", "-f", "-", stdin=B)
    result = ctl.run("create", "-f", "-", stdin=multi(A, B, C))
    assert result.rc == 1
    assert result.out == "Partial success: created the first 2 out of 3 'IPPool' resources:\n"
    assert result.err == "Hit error: [resource already exists: IPPool(b)]\n"
    assert names(ctl) == ["a", "b", "c"]


def test_create_mixed_kinds_message_has_no_kind(ctl: InProcess) -> None:
    mixed = multi(A, resource_yaml("GlobalNetworkSet", "s", {"nets": ["10.9.0.0/16"]}))
    assert ctl.ok("create", "-f", "-", stdin=mixed).out == "Successfully created 2 resource(s)\n"


def test_replace_existing_and_missing(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=A)
    changed = pool_yaml("a", "10.1.0.0/16", natOutgoing=True)
    assert ctl.ok("replace", "-f", "-", stdin=changed).out == (
        "Successfully replaced 1 'IPPool' resource(s)\n"
    )
    assert spec_of(ctl, "a")["natOutgoing"] is True
    missing = ctl.run("replace", "-f", "-", stdin=B)
    assert missing == (
        1,
        "",
        "Failed to replace 'IPPool' resource: "
        "[resource does not exist: IPPool(b) with error: not found]\n",
    )
    assert names(ctl) == ["a"]


def test_replace_with_stale_resource_version_conflicts(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=A)
    stale = ctl.ok("get", "ippool", "a", "-o", "yaml").out
    ctl.ok("label", "ippool", "a", "x=y")
    result = ctl.run("replace", "-f", "-", stdin=stale)
    assert result == (1, "", "Failed to replace 'IPPool' resource: [update conflict: IPPool(a)]\n")
    labels = json.loads(ctl.ok("get", "ippool", "a", "-o", "json").out)["metadata"]["labels"]
    assert labels == {"x": "y"}


def test_apply_creates_then_updates(ctl: InProcess) -> None:
    assert ctl.ok("apply", "-f", "-", stdin=A).out == (
        "Successfully applied 1 'IPPool' resource(s)\n"
    )
    uid = json.loads(ctl.ok("get", "ippool", "a", "-o", "json").out)["metadata"]["uid"]
    updated = pool_yaml("a", "10.1.0.0/16", vxlanMode="CrossSubnet")
    assert ctl.ok("apply", "-f", "-", stdin=updated).out == (
        "Successfully applied 1 'IPPool' resource(s)\n"
    )
    got = json.loads(ctl.ok("get", "ippool", "a", "-o", "json").out)
    assert got["spec"]["vxlanMode"] == "CrossSubnet"
    assert got["metadata"]["uid"] == uid  # updated in place, not recreated
    # apply replaces the whole spec: what the file leaves out goes back to the default.
    ctl.ok("apply", "-f", "-", stdin=A)
    assert spec_of(ctl, "a")["vxlanMode"] == "Never"


def test_apply_partial_failure_wording(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=A)
    stale = ctl.ok("get", "ippool", "a", "-o", "yaml").out
    ctl.ok("label", "ippool", "a", "x=y")
    result = ctl.run("apply", "-f", "-", stdin=multi(B, stale, C))
    assert result.rc == 1
    assert result.out == "Partial success: applied the first 2 out of 3 'IPPool' resources:\n"
    assert result.err == "Hit error(s): [update conflict: IPPool(a)]\n"
    assert names(ctl) == ["a", "b", "c"]


def test_delete_by_file_by_name_and_skip_not_exists(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=multi(A, B, C))
    assert ctl.ok("delete", "ippool", "a").out == "Successfully deleted 1 'IPPool' resource(s)\n"
    assert ctl.ok("delete", "pools", "b", "c").out == (
        "Successfully deleted 2 'IPPool' resource(s)\n"
    )
    assert names(ctl) == []

    missing = ctl.run("delete", "ippool", "a")
    assert missing == (
        1,
        "",
        "Failed to delete 'IPPool' resource: "
        "resource does not exist: IPPool(a) with error: not found\n",
    )
    # -s: a missing resource counts as handled (calicoctl's NumHandled includes it).
    assert ctl.ok("delete", "ippool", "a", "-s").out == (
        "Successfully deleted 1 'IPPool' resource(s)\n"
    )
    path = ctl.write("a.yaml", A)
    from_file = ctl.run("delete", "-f", path)
    assert from_file.rc == 1
    assert from_file.err == (
        "Failed to delete 'IPPool' resource: "
        "resource does not exist: IPPool(a) with error: not found\n"
    )
    assert ctl.ok("delete", "-f", path, "--skip-not-exists").out == (
        "Successfully deleted 1 'IPPool' resource(s)\n"
    )


def test_delete_namespaced_by_name_uses_namespace(ctl: InProcess) -> None:
    np = resource_yaml("NetworkPolicy", "p", {}, namespace="prod")
    ctl.ok("apply", "-f", "-", stdin=np)
    wrong_ns = ctl.run("delete", "networkpolicy", "p")
    assert wrong_ns.rc == 1
    assert "NetworkPolicy(default/p)" in wrong_ns.err
    assert ctl.ok("delete", "networkpolicy", "p", "-n", "prod").out == (
        "Successfully deleted 1 'NetworkPolicy' resource(s)\n"
    )


def test_namespace_flag_fills_documents_without_one(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", "-n", "dev", stdin=resource_yaml("NetworkSet", "s", {}))
    got = json.loads(ctl.ok("get", "netsets", "-A", "-o", "json").out)["items"]
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in got] == [("dev", "s")]


def test_skip_empty(ctl: InProcess) -> None:
    empty = ctl.write("empty.yaml", "# nothing here\n")
    result = ctl.run("apply", "-f", empty, "--skip-empty")
    assert result == (0, "No resources specified\n", "")


def test_get_by_name_missing_and_present(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=A)
    result = ctl.run("get", "ippool", "a", "zz")
    assert result.rc == 1
    assert result.err == "resource does not exist: IPPool(zz) with error: not found\n"
    # What was found is still printed.
    assert result.out.splitlines()[1].split()[0] == "a"


def test_policy_in_missing_tier_is_refused(ctl: InProcess) -> None:
    gnp = resource_yaml("GlobalNetworkPolicy", "nosuch.p", {"tier": "nosuch"})
    result = ctl.run("apply", "-f", "-", stdin=gnp)
    assert result.rc == 1
    assert "nosuch" in result.err
    assert ctl.ok("get", "gnp", "-o", "name").out == ""


def test_delete_by_file_goes_on_past_a_missing_resource(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=multi(A, C))
    result = ctl.run("delete", "-f", "-", stdin=multi(A, B, C))
    assert result.rc == 1
    assert result.err == (
        "Failed to delete 'IPPool' resource: "
        "resource does not exist: IPPool(b) with error: not found\n"
    )
    assert result.out == "Successfully deleted 2 'IPPool' resource(s)\n"
    assert names(ctl) == []


def test_replace_stops_at_the_first_failure(ctl: InProcess) -> None:
    ctl.ok("create", "-f", "-", stdin=multi(A, C))
    result = ctl.run("replace", "-f", "-", stdin=multi(A, B, C))
    assert result.rc == 1
    assert result.out == "Partial success: replaced the first 1 out of 3 'IPPool' resources:\n"
