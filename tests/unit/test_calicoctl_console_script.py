"""The installed `calicoctl` console script, run as users run it.

Most behaviour is covered in process; these prove the entry point itself: exit codes of
a real process, stdin piping, and that bad input ends in one stderr line, never a
Python traceback, whatever the failure (parser, validator, datastore, configuration).
"""

from __future__ import annotations

import os

import pytest

from tests.support.calicoctl_harness import CALICOCTL, Subprocess, multi, one_error_line, pool_yaml


def test_console_script_is_installed() -> None:
    assert os.access(CALICOCTL, os.X_OK), CALICOCTL


def test_apply_get_delete_through_the_real_process(ctl_script: Subprocess) -> None:
    applied = ctl_script.run(
        "apply",
        "-f",
        "-",
        stdin=multi(pool_yaml("default-ipv4-ippool", "10.244.0.0/16", ipipMode="Always")),
    )
    assert applied == (0, "Successfully applied 1 'IPPool' resource(s)\n", "")
    got = ctl_script.run("get", "ippool", "-o", "wide")
    assert got.rc == 0
    assert got.out.splitlines()[1].split()[3] == "Always"
    assert ctl_script.run("delete", "ippool", "default-ipv4-ippool").rc == 0
    assert ctl_script.run("get", "ippools").out == "NAME   CIDR   SELECTOR   \n\n"


def test_version_through_the_real_process(ctl_script: Subprocess) -> None:
    result = ctl_script.run("version")
    assert result.rc == 0, result
    assert [line.split(":")[0] for line in result.out.splitlines()] == [
        "Client Version",
        "Git commit",
        "Cluster Version",
        "Cluster Type",
    ]


def test_help_and_no_command(ctl_script: Subprocess) -> None:
    helped = ctl_script.run("--help")
    assert helped.rc == 0 and helped.out.startswith("Usage:\n  calicoctl [options] <command>")
    bare = ctl_script.run()
    assert bare.rc == 1 and bare.out.startswith("Usage:")


@pytest.mark.parametrize(
    ("args", "stdin", "env", "expected"),
    [
        (("apply", "-f", "-"), "kind: IPPool\nmetadata: {name: x\n", {}, "stdin: cannot parse"),
        (("apply", "-f", "-"), b"\xff\xfe", {}, "cannot read stdin"),
        (("get", "ippool", "--bogus"), None, {}, "Invalid option: 'calicoctl get ippool --bogus'"),
        (("get", "ippools"), None, {"DATASTORE_TYPE": "kubernetes"}, "unsupported datastoreType"),
        (("get", "ippools"), None, {"SQLITE_PATH": "{dir}/corrupt.db"}, "{dir}/corrupt.db"),
        (
            ("patch", "ippool", "x", "-p", "{not json"),
            None,
            {},
            "invalid patch: not valid JSON",
        ),
    ],
    ids=["bad-yaml", "bad-bytes", "unknown-flag", "kubernetes", "corrupt-store", "bad-patch"],
)
def test_failures_are_one_line_without_traceback(
    ctl_script: Subprocess,
    args: tuple[str, ...],
    stdin: str | bytes | None,
    env: dict[str, str],
    expected: str,
) -> None:
    (ctl_script.dir / "corrupt.db").write_bytes(b"this is not an SQLite database" * 100)
    env = {k: v.replace("{dir}", str(ctl_script.dir)) for k, v in env.items()}
    result = ctl_script.run(*args, stdin=stdin, env=env)
    line = one_error_line(result)
    assert expected.replace("{dir}", str(ctl_script.dir)) in line
    assert result.out == ""


def test_partial_success_exit_code_and_streams(ctl_script: Subprocess) -> None:
    ctl_script.run("create", "-f", "-", stdin=pool_yaml("b", "10.2.0.0/16"))
    result = ctl_script.run(
        "create",
        "-f",
        "-",
        stdin=multi(pool_yaml("a", "10.1.0.0/16"), pool_yaml("b", "10.2.0.0/16")),
    )
    assert result.rc == 1
    assert result.out == "Partial success: created the first 1 out of 2 'IPPool' resources:\n"
    assert result.err == "Hit error: [resource already exists: IPPool(b)]\n"
