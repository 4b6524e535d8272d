"""Several calicoctl processes on one store at the same moment.

The store is fresh each round, so the processes also race to create the SQLite schema
and switch it to WAL, which is where concurrent openers have tripped before.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.calicoctl_harness import Subprocess, pool_yaml

pytestmark = pytest.mark.contract


def finish(proc: subprocess.Popen[bytes]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=60)
    return proc.returncode, out.decode(), err.decode()


@pytest.mark.parametrize("round_", range(3))
def test_concurrent_applies_of_different_pools_both_succeed(tmp_path: Path, round_: int) -> None:
    ctl = Subprocess(tmp_path)
    files = []
    for i in range(2):
        path = tmp_path / f"pool-{i}.yaml"
        path.write_text(pool_yaml(f"pool-{i}", f"10.{i}.0.0/16"))
        files.append(path)
    procs = [ctl.popen("apply", "-f", str(path)) for path in files]
    assert [finish(p) for p in procs] == [
        (0, "Successfully applied 1 'IPPool' resource(s)\n", "")
    ] * 2
    listed = json.loads(ctl.run("get", "ippools", "-o", "json").out)
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["pool-0", "pool-1"]
    # Each write got its own revision: neither overwrote the other's transaction.
    versions = {i["metadata"]["resourceVersion"] for i in listed["items"]}
    assert versions == {"1", "2"}


def test_concurrent_applies_of_the_same_pool_both_succeed(tmp_path: Path) -> None:
    """apply means "make it so": a racing create turns into an update, not an error."""
    ctl = Subprocess(tmp_path)
    docs = [pool_yaml("shared", "10.9.0.0/16", natOutgoing=flag) for flag in (True, False)]
    paths = []
    for i, doc in enumerate(docs):
        path = tmp_path / f"shared-{i}.yaml"
        path.write_text(doc)
        paths.append(path)
    procs = [ctl.popen("apply", "-f", str(path)) for path in paths]
    assert [finish(p)[::2] for p in procs] == [(0, "")] * 2
    listed = json.loads(ctl.run("get", "ippools", "-o", "json").out)["items"]
    assert [i["metadata"]["name"] for i in listed] == ["shared"]
