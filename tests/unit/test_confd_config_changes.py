"""confd's log line for a new bird.cfg: the BGP sessions it adds and removes."""

from __future__ import annotations

from pycalico.confd.config_changes import summary

OLD = """router id 192.168.56.10;
protocol bgp Mesh_192_168_56_11 from bgp_template {
  neighbor 192.168.56.11 as 64512;
}
"""
NEW = """router id 192.168.56.10;
protocol bgp Mesh_192_168_56_12 from bgp_template {
  neighbor 192.168.56.12 as 64512;
}
protocol bgp Global_192_168_56_250 from bgp_template {
  neighbor 192.168.56.250 as 64600;
}
"""


def test_sessions_added_and_removed_by_calicos_protocol_names() -> None:
    assert summary(OLD, NEW) == (
        "BGP sessions added Global_192_168_56_250, Mesh_192_168_56_12; "
        "BGP sessions removed Mesh_192_168_56_11; 7 lines changed"
    )


def test_a_change_without_sessions_counts_lines() -> None:
    assert summary(OLD, OLD.replace("64512", "64513")) == "2 lines changed"


def test_the_first_config_counts_its_sessions() -> None:
    assert summary("", NEW) == (
        "first config: 2 BGP sessions (Global_192_168_56_250, Mesh_192_168_56_12)"
    )
