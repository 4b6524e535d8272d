"""The probe matrix: why a probe got no answer, and one FAIL line when any did not."""

from __future__ import annotations

from pycalico.lab.probe import render

ANSWERS = {
    "default/a": {"default/b": "10.244.1.2", "external": "192.168.56.10"},
    "default/b": {"default/a": "", "external": ""},
}
FAILURES = {
    "default/a": {"default/b": "", "external": ""},
    "default/b": {"default/a": "dropped by default/deny[0]", "external": "refused"},
}


def test_cells_say_ok_nat_or_why_not() -> None:
    rows = [line.split("  ") for line in render(ANSWERS, FAILURES).splitlines()]
    text = render(ANSWERS, FAILURES)
    assert "ok (as 192.168.56.10)" in text
    assert "dropped by default/deny[0]" in text and "refused" in text
    assert len(rows) == 4


def test_the_fail_line_counts_each_kind() -> None:
    last = render(ANSWERS, FAILURES).splitlines()[-1]
    assert last == "FAIL: 2 of 4 got no answer (1 dropped, 1 refused)"


def test_all_answered_means_no_fail_anywhere() -> None:
    answers = {"default/a": {"external": "ok"}}
    assert "FAIL" not in render(answers, {"default/a": {"external": ""}})
