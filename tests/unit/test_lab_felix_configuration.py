"""The FelixConfiguration `calico-lab up` writes: valid, and flow logs on to the lab's
calico-goldmane with the 15 s flush the issue asks for."""

from __future__ import annotations

import yaml

from pycalico.api.resource import normalize
from pycalico.felix.calc.settings import resolve
from pycalico.lab import cluster, goldmane


def test_the_lab_turns_flow_logs_on_to_its_aggregator_every_15_seconds() -> None:
    resource = normalize(yaml.safe_load(cluster.felix_configuration_yaml()))
    assert resource["metadata"]["name"] == "default"
    settings = resolve({}, resource["spec"], {})
    assert settings.flow_logs_enabled
    assert settings.flow_logs_goldmane_server == goldmane.COLLECTOR
    assert settings.flow_logs_flush_interval == 15.0
    assert settings.log_severity_screen == "Info"
