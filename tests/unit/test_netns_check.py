"""Telling a network namespace from anything else at its path, without ever blocking."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pycalico.netns import NotANetworkNamespace, check_netns, open_netns


def test_a_network_namespace_is_opened() -> None:
    fd = open_netns("/proc/self/ns/net")
    os.close(fd)


@pytest.mark.parametrize("kind", ["empty-file", "directory", "fifo", "other-namespace"])
def test_anything_else_is_refused_at_once(tmp_path: Path, kind: str) -> None:
    path = tmp_path / kind
    if kind == "empty-file":
        path.touch()
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # a plain open() for reading would wait for a writer forever
    else:
        path = Path("/proc/self/ns/uts")
    with pytest.raises(NotANetworkNamespace, match="is not a network namespace"):
        os.close(open_netns(str(path)))


def test_a_missing_path_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_netns(str(tmp_path / "gone"))


def test_a_descriptor_is_checked_as_the_path_is(tmp_path: Path) -> None:
    """The agent checks the descriptor a shim opened with the same test as open_netns."""
    fd = os.open("/proc/self/ns/net", os.O_RDONLY)
    try:
        check_netns(fd, "mine")
    finally:
        os.close(fd)
    (tmp_path / "empty").touch()
    read, write = os.pipe()
    others = [
        os.open("/proc/self/ns/uts", os.O_RDONLY),
        os.open(tmp_path / "empty", os.O_RDONLY),
        os.open(tmp_path, os.O_RDONLY),
        read,
        write,
    ]
    try:
        for fd in others:
            with pytest.raises(NotANetworkNamespace, match=r"^theirs is not a network namespace$"):
                check_netns(fd, "theirs")
    finally:
        for fd in others:
            os.close(fd)
