"""Whether calico-node runs the flow aggregator and where (CALICO_GOLDMANE_COLLECTOR and
CALICO_GOLDMANE_API), every bad value refused in one line."""

from __future__ import annotations

import pytest

from pycalico.node.aggregator_config import (
    AggregatorConfig,
    AggregatorConfigError,
    aggregator_config,
)


@pytest.mark.parametrize("env", [{}, {"CALICO_GOLDMANE_COLLECTOR": ""}])
def test_without_a_collector_address_there_is_no_aggregator(env: dict[str, str]) -> None:
    assert aggregator_config(env) is None


@pytest.mark.parametrize(
    ("env", "config"),
    [
        (
            {"CALICO_GOLDMANE_COLLECTOR": "192.0.2.1:7443"},
            AggregatorConfig("192.0.2.1:7443", "127.0.0.1:8080"),
        ),
        (
            {"CALICO_GOLDMANE_COLLECTOR": "0.0.0.0:7443", "CALICO_GOLDMANE_API": "[::1]:8080"},
            AggregatorConfig("0.0.0.0:7443", "[::1]:8080"),
        ),
        (
            {"CALICO_GOLDMANE_COLLECTOR": "[fd00::1]:7443", "CALICO_GOLDMANE_API": ""},
            AggregatorConfig("[fd00::1]:7443", "127.0.0.1:8080"),
        ),
        (
            {
                "CALICO_GOLDMANE_COLLECTOR": "127.0.0.1:8080",
                "CALICO_GOLDMANE_API": "127.0.0.2:8080",
            },
            AggregatorConfig("127.0.0.1:8080", "127.0.0.2:8080"),
        ),
    ],
)
def test_the_addresses_given_are_where_calico_goldmane_listens(
    env: dict[str, str], config: AggregatorConfig
) -> None:
    found = aggregator_config(env)
    assert found == config
    assert found.args() == ["--collector", config.collector, "--listen", config.api]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CALICO_GOLDMANE_COLLECTOR": "goldmane.calico-system:7443"},
            "CALICO_GOLDMANE_COLLECTOR=goldmane.calico-system:7443 is not HOST:PORT",
        ),
        ({"CALICO_GOLDMANE_COLLECTOR": "7443"}, "CALICO_GOLDMANE_COLLECTOR=7443 is not HOST:PORT"),
        ({"CALICO_GOLDMANE_COLLECTOR": "10.0.0.1:0"}, "is not HOST:PORT"),
        ({"CALICO_GOLDMANE_COLLECTOR": "10.0.0.1:65536"}, "is not HOST:PORT"),
        ({"CALICO_GOLDMANE_COLLECTOR": "10.0.0.1:http"}, "is not HOST:PORT"),
        ({"CALICO_GOLDMANE_COLLECTOR": "fd00::1:7443"}, "is not HOST:PORT"),
        ({"CALICO_GOLDMANE_COLLECTOR": "[10.0.0.1]:7443"}, "is not HOST:PORT"),
        (
            {"CALICO_GOLDMANE_COLLECTOR": "10.0.0.1:7443", "CALICO_GOLDMANE_API": ":8080"},
            "CALICO_GOLDMANE_API=:8080 is not HOST:PORT",
        ),
        ({"CALICO_GOLDMANE_API": "127.0.0.1:8080"}, "CALICO_GOLDMANE_API is set but"),
        (
            {"CALICO_GOLDMANE_COLLECTOR": "127.0.0.1:8080"},
            "CALICO_GOLDMANE_COLLECTOR=127.0.0.1:8080 and CALICO_GOLDMANE_API=127.0.0.1:8080 "
            "cannot both listen",
        ),
        (
            {"CALICO_GOLDMANE_COLLECTOR": "0.0.0.0:9000", "CALICO_GOLDMANE_API": "[::1]:9000"},
            "cannot both listen",
        ),
    ],
)
def test_a_bad_value_is_refused_in_one_line_naming_it(env: dict[str, str], message: str) -> None:
    with pytest.raises(AggregatorConfigError) as caught:
        aggregator_config(env)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)
