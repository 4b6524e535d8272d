"""The CNI plugin's log: Calico's log_level and log_file_path, one line per ADD or DEL."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pycalico.cni import call_log


def test_levels_as_calico_reads_them() -> None:
    assert call_log.level({"log_level": "DEBUG"}) == logging.DEBUG
    assert call_log.level({"log_level": "error"}) == logging.ERROR
    assert call_log.level({"log_level": "warning"}) == logging.INFO  # anything else: info
    assert call_log.level({}) == logging.INFO


def test_a_line_has_time_level_pid_and_message() -> None:
    text = call_log.line(logging.INFO, "ADD ContainerID=abc", 0.25, 42)
    assert text.endswith(".250 [INFO][42] calico ADD ContainerID=abc\n")


def test_calls_append_to_the_file_creating_its_directory(tmp_path: Path) -> None:
    path = tmp_path / "log" / "calico" / "cni" / "cni.log"
    config = {"log_level": "info", "log_file_path": str(path)}
    call_log.call(config, "ADD ContainerID=a")
    call_log.call(config, "DEL ContainerID=a")
    lines = path.read_text().splitlines()
    assert [line.split("] calico ", 1)[1] for line in lines] == [
        "ADD ContainerID=a",
        "DEL ContainerID=a",
    ]
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"


def test_level_error_keeps_calls_out_but_failures_in(tmp_path: Path) -> None:
    path = tmp_path / "cni.log"
    config = {"log_level": "error", "log_file_path": str(path)}
    call_log.call(config, "ADD ContainerID=a")
    assert not path.exists()
    call_log.write(config, logging.ERROR, "ADD ContainerID=a failed: no address")
    assert "[ERROR]" in path.read_text()


def test_rotation_settings_are_said_to_be_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "cni.log"
    call_log.call({"log_file_path": str(path), "log_file_max_size": 100}, "ADD ContainerID=a")
    first, second = path.read_text().splitlines()
    assert "[WARNING]" in first and "log_file_max_size not supported" in first
    assert second.endswith("calico ADD ContainerID=a")


def test_an_unwritable_file_costs_the_line_not_the_call(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    call_log.call({"log_file_path": str(blocker / "cni.log")}, "ADD ContainerID=a")
    assert blocker.read_text() == "" and sorted(os.listdir(tmp_path)) == ["file"]
