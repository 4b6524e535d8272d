"""The seeds' two NetworkPolicy requirements (seed 003, 需求1 and 需求2), typed as written,
hold for real packets in the lab, and `calicoctl policy explain` agrees pair by pair."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pycalico.lab.state import LabState
from tests.support.lab_driver import check_explain_agrees_with_packets, lab
from tests.support.seed_manifests import SEED_NP, SEED_NP2

pytestmark = pytest.mark.e2e


def test_seed_requirements_one_and_two_hold_for_real_packets(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2")
    # The seed's kubectl commands, as calico-lab verbs (each pod serves 80 to be probed).
    lab("create", "deployment", "web", "--name", name)
    for client, namespace in (("client1", "default"), ("client2", "default"), ("client3", "azhe")):
        lab("run", client, "-n", namespace, "--port", "80", "--name", name)
    web = next(k for k in LabState.load(name).pods if k.startswith("default/web-"))
    before = check_explain_agrees_with_packets(name, 80)
    assert before["default/client1"][web] and before["default/client2"][web]

    # 需求1: only run=client1 reaches app=web, and only on TCP 80.
    lab("apply", "-f", "-", "--name", name, stdin=SEED_NP)
    one = check_explain_agrees_with_packets(name, 80)
    assert one["default/client1"][web]
    assert not one["default/client2"][web] and not one["azhe/client3"][web]
    assert one["default/client2"]["default/client1"]  # the rest of default is untouched

    # 需求2: default talks to itself and out to other namespaces; nobody else gets in.
    lab("delete", "-f", "-", "--name", name, stdin=SEED_NP)
    lab("apply", "-f", "-", "--name", name, stdin=SEED_NP2)
    two = check_explain_agrees_with_packets(name, 80)
    for pod in (web, "default/client1", "default/client2"):
        assert not two["azhe/client3"][pod]
        assert two[pod]["azhe/client3"]
    assert two["default/client2"][web] and two["default/client1"]["default/client2"]
