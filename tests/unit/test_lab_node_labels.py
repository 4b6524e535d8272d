"""`calico-lab label node`: kubectl's label arguments and its refusals."""

from __future__ import annotations

import pytest

from pycalico.lab.node_labels import changes, relabel
from pycalico.lab.state import LabError


def test_set_and_remove_arguments() -> None:
    assert changes(["route-reflector=true", "zone-"]) == ({"route-reflector": "true"}, ["zone"])


@pytest.mark.parametrize(
    ("arg", "fragment"),
    [("novalue", "KEY=VALUE or KEY-"), ("bad key=x", "invalid label spec"), ("k=bad value", "k=")],
)
def test_bad_arguments_are_refused(arg: str, fragment: str) -> None:
    with pytest.raises(LabError) as refused:
        changes([arg])
    assert fragment in str(refused.value)


def test_setting_and_removing_one_key_at_once_is_refused() -> None:
    with pytest.raises(LabError, match="both modify and remove"):
        changes(["k=v", "k-"])


def test_a_new_value_needs_overwrite_as_in_kubectl() -> None:
    with pytest.raises(
        LabError, match=r"'k' already has a value \(old\), and --overwrite is false"
    ):
        relabel({"k": "old"}, {"k": "new"}, [], overwrite=False)
    assert relabel({"k": "old"}, {"k": "new"}, [], overwrite=True) == {"k": "new"}


def test_the_same_value_again_and_removal_need_no_overwrite() -> None:
    assert relabel({"k": "v", "z": "1"}, {"k": "v"}, ["z"], overwrite=False) == {"k": "v"}
