"""calico-node's command line: help and version only print; anything else is refused."""

from __future__ import annotations

import pytest

from pycalico import __version__
from pycalico.node.options import USAGE, UsageError, parse, version


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
