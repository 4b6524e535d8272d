"""The e2e suite's shared fixture: labs that are always torn down and checked gone."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.support.lab_driver import down_leaving_nothing, lab


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
        down_leaving_nothing(name)
