"""Which lab a calico-lab command means, and which names a lab may have."""

from __future__ import annotations

import pytest

from pycalico.lab.state import (
    LabError,
    check_name,
    choose,
    longest_socket,
    max_name_length,
    name_for_up,
    name_rule,
)


def test_the_longest_name_makes_the_longest_socket_path_fit_the_kernel_limit_exactly() -> None:
    longest = "a" * max_name_length("/run/calico-lab")
    assert len(longest_socket("/run/calico-lab", longest)) == 107  # sun_path is 108 with NUL
    assert len(longest_socket("/run/calico-lab", longest + "a")) == 108
    assert max_name_length("/run/calico-lab") == 59


def test_a_deeper_lab_root_leaves_less_room_for_the_name() -> None:
    assert max_name_length("/run/calico-lab/deeper") == max_name_length("/run/calico-lab") - 7


@pytest.mark.parametrize("name", ["", "-lab", "Lab", "lab_1", "lab.1", "a" * 60])
def test_bad_names_are_refused_with_the_rule(name: str) -> None:
    with pytest.raises(LabError) as refused:
        check_name(name, "/run/calico-lab")
    assert "1-59 characters" in str(refused.value)
    assert "cni-agent.sock" in str(refused.value)


def test_the_rule_names_the_socket_that_limits_it() -> None:
    assert "/run/calico-lab/NAME/nodes/node20/run/cni-agent.sock" in name_rule("/run/calico-lab")


def test_up_builds_name_then_calico_lab_then_lab() -> None:
    assert name_for_up("given", {"CALICO_LAB": "fromenv"}) == "given"
    assert name_for_up(None, {"CALICO_LAB": "fromenv"}) == "fromenv"
    assert name_for_up(None, {}) == "lab"


def test_up_refuses_a_bad_calico_lab_too() -> None:
    with pytest.raises(LabError):
        name_for_up(None, {"CALICO_LAB": "Bad_Name"})


def test_other_commands_take_name_then_calico_lab_then_the_only_lab() -> None:
    assert choose("given", {"CALICO_LAB": "env"}, ["one"]) == "given"
    assert choose(None, {"CALICO_LAB": "env"}, ["one"]) == "env"
    assert choose(None, {}, ["one"]) == "one"


def test_several_labs_and_no_choice_is_an_error_listing_them() -> None:
    with pytest.raises(LabError) as refused:
        choose(None, {}, ["alpha", "beta"])
    assert "alpha, beta" in str(refused.value)


def test_no_lab_at_all_says_how_to_start_one() -> None:
    with pytest.raises(LabError) as refused:
        choose(None, {}, [])
    assert "calico-lab up" in str(refused.value)
