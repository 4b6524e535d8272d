"""confd's bird.cfg for resource sets (golden files), and BIRD 2 itself accepts each one.

Each `golden/confd/<case>.yaml` holds v3 resources, the rendering node and its blocks;
`<case>.cfg` next to it is the expected config. After an intended change, regenerate
with `PYCALICO_REGEN_GOLDEN=1 pytest tests/unit/test_confd_bird_config.py` and review
the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pycalico.api.resource import normalize
from pycalico.confd import bird_config, inputs
from pycalico.ipam import keys

GOLDEN = Path(__file__).parent / "golden" / "confd"
CASES = sorted(p.stem for p in GOLDEN.glob("*.yaml"))
REGENERATE = os.environ.get("PYCALICO_REGEN_GOLDEN") == "1"


def _render(case: dict[str, Any]) -> str:
    import ipaddress

    resources = [
        normalize({"apiVersion": "projectcalico.org/v3", **r}) for r in case["resources"]
    ]
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for r in resources:
        by_kind.setdefault(r["kind"], []).append(r)
    affinities = [
        (keys.affinity_key(case["node"], ipaddress.ip_network(cidr)), json.dumps({"state": state}))
        for state in ("confirmed", "pending")
        for cidr in case["blocks"].get(state, [])
    ]
    wanted = inputs.bird_inputs(
        case["node"],
        by_kind.get("Node", []),
        by_kind.get("BGPConfiguration", []),
        by_kind.get("BGPPeer", []),
        by_kind.get("IPPool", []),
        affinities,
    )
    assert wanted is not None
    return bird_config.render(wanted)


@pytest.mark.parametrize("case", CASES)
def test_rendered_config_matches_the_golden_file(case: str) -> None:
    text = _render(yaml.safe_load((GOLDEN / f"{case}.yaml").read_text()))
    expected = GOLDEN / f"{case}.cfg"
    if REGENERATE:
        expected.write_text(text)
    assert text == expected.read_text()


@pytest.mark.skipif(shutil.which("bird") is None, reason="needs BIRD 2 (Debian bird2)")
@pytest.mark.parametrize("case", CASES)
def test_bird_accepts_every_golden_config(case: str) -> None:
    out = subprocess.run(
        ["bird", "-p", "-c", str(GOLDEN / f"{case}.cfg")], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr


def test_no_config_while_the_node_is_not_registered() -> None:
    assert inputs.bird_inputs("ghost", [], [], [], [], []) is None
