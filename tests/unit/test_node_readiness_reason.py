"""calico-node's /readiness says why it is not ready, as Calico's readiness check words it."""

from __future__ import annotations

from pycalico.node.health import Status


def test_ready_has_no_reason() -> None:
    status = Status(ready=True)
    assert status.not_ready_because() == ""


def test_before_the_first_apply_felix_is_not_ready() -> None:
    assert Status().not_ready_because() == (
        "calico/node is not ready: Felix is not ready: it has not applied the dataplane yet"
    )


def test_a_failed_apply_is_named() -> None:
    status = Status(ready=False, applies=3, apply_failures=1)
    assert status.not_ready_because().endswith("its last dataplane apply failed")


def test_bird_not_ready_carries_birds_error() -> None:
    status = Status(ready=True, bird_ready=False, bird_error="bird -p refused the config")
    assert status.not_ready_because() == (
        "calico/node is not ready: BIRD is not ready: bird -p refused the config"
    )
