"""The e2e suite's shared fixture: labs that are always torn down and checked gone."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

from pycalico.lab.state import ROOT
from tests.support.lab_driver import lab


@pytest.fixture
def make_lab() -> Iterator[Callable[..., str]]:
    names: list[str] = []

    def up(*options: str) -> str:
        name = f"e{uuid.uuid4().hex[:5]}"
        names.append(name)
        lab("up", "--name", name, *options)
        return name

    yield up
    for name in names:
        lab("down", "--name", name, check=False)
        leftovers = [
            n
            for n in subprocess.run(
                ["ip", "netns", "list"], capture_output=True, text=True, check=True
            ).stdout.split()
            if n.startswith(f"{name}-")
        ]
        assert leftovers == [], f"down left namespaces behind: {leftovers}"
        assert not os.path.exists(os.path.join(ROOT, name))
