"""The tablewriter-style box tables (calicoctl ipam show, calicoctl node status)."""

from __future__ import annotations

from pycalico.ctl.boxtable import render


def test_a_cell_over_30_columns_wraps_at_spaces_and_the_column_is_30_wide() -> None:
    assert render(["Info"], [["Active Socket: No route to host"], ["Established"]]) == (
        "+--------------------------------+\n"
        "|              INFO              |\n"
        "+--------------------------------+\n"
        "| Active Socket: No route to     |\n"
        "| host                           |\n"
        "| Established                    |\n"
        "+--------------------------------+\n"
    )


def test_wrapping_minimises_raggedness_rather_than_filling_greedily() -> None:
    # Greedy filling would give 28 + 20 + 10 columns; tablewriter picks 21 + 27 + 10.
    text = "aaaaaaaaaaaaaa bbbbbb cccccc dddddddddddddd eeeee ffffffffff"
    assert render(["X"], [[text]]).splitlines()[3:6] == [
        "| aaaaaaaaaaaaaa bbbbbb          |",
        "| cccccc dddddddddddddd eeeee    |",
        "| ffffffffff                     |",
    ]


def test_a_long_word_is_never_split_and_widens_the_column() -> None:
    address = "fd00:aaaa:bbbb:cccc:dddd:eeee::/96"
    assert render(["CIDR"], [[address]]).splitlines()[3] == f"| {address} |"


def test_other_cells_of_a_wrapped_row_are_blank_on_its_extra_lines() -> None:
    lines = render(["A", "B"], [["1", "one two three four five six seven"]]).splitlines()
    assert lines[3:5] == [
        "| 1 | one two three four five six    |",
        "|   | seven                          |",
    ]
