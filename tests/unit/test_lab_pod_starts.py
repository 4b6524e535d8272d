"""Pods started together (pods.start_all), as kubelets start a DaemonSet's, and where the lab
schedules a Deployment's replicas that start at once."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from pycalico.lab import pods
from pycalico.lab.kube_apply import schedule
from pycalico.lab.state import LabError, LabState, Pod


def pod(name: str) -> Pod:
    return Pod(f"default/{name}", "node1", f"ns-{name}", name)


def test_pods_start_side_by_side_and_each_is_reported_once() -> None:
    gate = threading.Barrier(pods.POD_STARTS, timeout=10)

    def start(name: str) -> Callable[[], Pod]:
        def run() -> Pod:
            gate.wait()  # only passes once POD_STARTS starts are running together
            return pod(name)

        return run

    heard: list[str] = []
    pods.start_all([start(f"p{i}") for i in range(pods.POD_STARTS)], lambda p: heard.append(p.name))
    assert sorted(heard) == sorted(f"default/p{i}" for i in range(pods.POD_STARTS))


def test_a_failed_start_is_raised_after_the_others_have_all_started() -> None:
    finished: list[str] = []

    def fails() -> Pod:
        raise LabError("CNI ADD (calico) failed for default/bad: no address")

    def works(name: str) -> Callable[[], Pod]:
        def run() -> Pod:
            finished.append(name)
            return pod(name)

        return run

    starts = [fails, *(works(f"p{i}") for i in range(20))]
    with pytest.raises(LabError, match="failed for default/bad"):
        pods.start_all(starts)
    assert sorted(finished) == sorted(f"p{i}" for i in range(20))


def test_replicas_scheduled_together_spread_over_the_nodes_as_if_started_one_by_one() -> None:
    state = LabState("t", nodes=["node1", "node2", "node3"])
    state.pods["default/old"] = Pod("default/old", "node1", "ns-old", "old")
    planned: list[str] = []
    for _ in range(5):
        planned.append(schedule(state, planned))
    assert planned == ["node2", "node3", "node1", "node2", "node3"]
