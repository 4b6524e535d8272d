"""The unit tests' shared fixtures: calicoctl runners and a resource client, each on a
private SQLite store in the test's temporary directory."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend
from tests.support.calicoctl_harness import InProcess, Subprocess


@pytest.fixture
def ctl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> InProcess:
    """calicoctl's `main()` in this interpreter: what most calicoctl tests run."""
    return InProcess(tmp_path, monkeypatch)


@pytest.fixture
def ctl_script(tmp_path: Path) -> Subprocess:
    """The installed `calicoctl` console script, in a process of its own."""
    return Subprocess(tmp_path)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[ResourceClient]:
    """A resource client on `store.db`, closed after the test."""
    with SqliteBackend(tmp_path / "store.db", create=True) as backend:
        yield ResourceClient(backend)
