"""calico-node's command line: help and version only print; install and uninstall take
their options and settings; anything else is refused."""

from __future__ import annotations

import pytest

from pycalico import __version__
from pycalico.node.options import (
    INSTALL_USAGE,
    UNINSTALL_USAGE,
    USAGE,
    Install,
    Uninstall,
    UsageError,
    parse,
    version,
)


def test_no_argument_runs_the_node() -> None:
    assert parse([]) == "run"


@pytest.mark.parametrize("arg", ["-h", "-help", "--help"])
def test_help_in_every_spelling_asks_for_the_usage(arg: str) -> None:
    assert parse([arg]) == "help"
    assert USAGE.startswith("Usage: calico-node [-h | --help | -v | --version]\n")


@pytest.mark.parametrize("arg", ["-v", "--version"])
def test_version_is_calicos_v_form_of_the_package_version(arg: str) -> None:
    assert parse([arg]) == "version"
    assert version() == f"v{__version__}"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--no-such-option"], "unknown option --no-such-option (see calico-node --help)"),
        (["run"], "unexpected argument run (see calico-node --help)"),
        (["-v", "-h"], "unexpected argument -h after -v (see calico-node --help)"),
    ],
)
def test_other_arguments_are_refused_in_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(argv)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    "arg", ["-felix", "--felix", "-felix-ready", "-startup", "-confd-confdir=x"]
)
def test_calicos_component_flags_are_refused_by_name_not_run_as_a_whole_node(arg: str) -> None:
    with pytest.raises(UsageError, match="is Calico's flag for one component") as caught:
        parse([arg])
    assert str(caught.value).startswith(f"{arg} ") and "\n" not in str(caught.value)


def test_install_takes_its_options_and_calico_node_variables_as_settings() -> None:
    assert parse(
        [
            "install",
            "--wheelhouse",
            "build/wheelhouse",
            "--root=/tmp/r",
            "--prefix",
            "/opt/pc",
            "NODENAME=node1",
            "IP_AUTODETECTION_METHOD=interface=eth.*",
            "IP6=",
        ]
    ) == Install(
        wheelhouse="build/wheelhouse",
        root="/tmp/r",
        prefix="/opt/pc",
        settings=(
            ("NODENAME", "node1"),
            ("IP_AUTODETECTION_METHOD", "interface=eth.*"),
            ("IP6", ""),
        ),
    )


def test_install_defaults_to_the_real_root_and_opt_pycalico() -> None:
    assert parse(["install", "--wheelhouse=w"]) == Install(wheelhouse="w")
    assert Install(wheelhouse="w").root == "/" and Install(wheelhouse="w").prefix == "/opt/pycalico"


def test_uninstall_takes_only_a_root() -> None:
    assert parse(["uninstall"]) == Uninstall()
    assert parse(["uninstall", "--root", "/tmp/r"]) == Uninstall(root="/tmp/r")


@pytest.mark.parametrize(
    ("argv", "action"),
    [
        (["install", "--help"], "help-install"),
        (["install", "--wheelhouse", "w", "-h"], "help-install"),
        (["uninstall", "-h"], "help-uninstall"),
    ],
)
def test_install_and_uninstall_have_their_own_help(argv: list[str], action: str) -> None:
    assert parse(argv) == action
    assert INSTALL_USAGE.startswith("Usage: calico-node install --wheelhouse DIR")
    assert UNINSTALL_USAGE.startswith("Usage: calico-node uninstall [--root DIR]")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["install"],
            "install needs --wheelhouse DIR (make wheelhouse builds one in build/wheelhouse)",
        ),
        (
            ["install", "--wheelhouse"],
            "--wheelhouse needs a value (see calico-node install --help)",
        ),
        (
            ["install", "--wheelhouse="],
            "--wheelhouse needs a value (see calico-node install --help)",
        ),
        (["install", "--wheelhouse=w", "--root=a", "--root=b"], "--root is given twice"),
        (
            ["install", "--wheelhouse=w", "--force"],
            "unknown option --force (see calico-node install --help)",
        ),
        (
            ["install", "--wheelhouse=w", "node1"],
            "unexpected argument node1: settings are NAME=VALUE (see calico-node install --help)",
        ),
        (["install", "--wheelhouse=w", "--prefix=opt/pc"], "--prefix opt/pc is not an absolute"),
        (["install", "--wheelhouse=w", "--prefix=/opt/my venv"], "--prefix /opt/my venv is not"),
        (["install", "--wheelhouse=w", "--prefix=/opt/../usr"], "--prefix /opt/../usr is not"),
        (["install", "--wheelhouse=w", "--prefix=/"], "--prefix / is not an absolute"),
        (
            ["uninstall", "--prefix=/opt/pc"],
            "unknown option --prefix=/opt/pc (see calico-node uninstall --help)",
        ),
        (["uninstall", "all"], "unexpected argument all (see calico-node uninstall --help)"),
    ],
)
def test_bad_install_command_lines_are_refused_in_one_line(argv: list[str], message: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse(argv)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)
