"""Felix's settings: env FELIX_* > FelixConfiguration node.<name> > default > built-in."""

from __future__ import annotations

import math

import pytest

from pycalico.felix.calc.settings import Settings, resolve


def test_built_in_defaults_are_calicos() -> None:
    settings = resolve({}, {}, {})
    assert settings == Settings()
    assert settings.route_refresh_interval == 90.0
    assert settings.log_severity_screen == "Info"
    assert (settings.vxlan_port, settings.vxlan_vni) == (4789, 4096)
    assert settings.default_endpoint_to_host_action == "Drop"


def test_the_global_felix_configuration_beats_the_defaults() -> None:
    settings = resolve({}, {"routeRefreshInterval": "1m30s", "logSeverityScreen": "Debug"}, {})
    assert settings.route_refresh_interval == 90.0
    assert settings.log_severity_screen == "Debug"


def test_the_nodes_felix_configuration_beats_the_global_one() -> None:
    settings = resolve(
        {},
        {"routeRefreshInterval": "30s", "vxlanPort": 4790, "logSeverityScreen": "Error"},
        {"routeRefreshInterval": "500ms", "logSeverityScreen": "Warning"},
    )
    assert settings.route_refresh_interval == 0.5
    assert settings.log_severity_screen == "Warning"
    assert settings.vxlan_port == 4790  # the node's leaves it unset: the global one counts


def test_the_environment_beats_both_felix_configurations() -> None:
    env = {
        "FELIX_ROUTEREFRESHINTERVAL": "7",
        "FELIX_LOGSEVERITYSCREEN": "debug",
        "FELIX_IPV6SUPPORT": "false",
        "FELIX_VXLANVNI": "5000",
        "FELIX_DEFAULTENDPOINTTOHOSTACTION": "ACCEPT",
    }
    node = {"routeRefreshInterval": "1s", "logSeverityScreen": "Error", "vxlanVNI": 6000}
    settings = resolve(env, {"ipv6Support": True}, node)
    assert settings.route_refresh_interval == 7.0
    assert settings.log_severity_screen == "Debug"  # written as Calico names it
    assert settings.ipv6_support is False
    assert settings.vxlan_vni == 5000
    assert settings.default_endpoint_to_host_action == "Accept"
    assert settings.warnings == ()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("FELIX_ROUTEREFRESHINTERVAL", "soon"),
        ("FELIX_ROUTEREFRESHINTERVAL", "-1"),
        ("FELIX_VXLANPORT", "70000"),
        ("FELIX_VXLANPORT", "x"),
        ("FELIX_IPV6SUPPORT", "maybe"),
        ("FELIX_LOGSEVERITYSCREEN", "Loud"),
    ],
)
def test_an_unreadable_environment_value_is_passed_over_with_a_warning_naming_it(
    name: str, value: str
) -> None:
    settings = resolve({name: value}, {"vxlanPort": 4790, "routeRefreshInterval": "10s"}, {})
    assert settings.vxlan_port == 4790 and settings.route_refresh_interval == 10.0
    assert settings.ipv6_support is True and settings.log_severity_screen == "Info"
    assert len(settings.warnings) == 1 and name in settings.warnings[0]


def test_a_refresh_interval_of_zero_turns_resyncs_off() -> None:
    assert resolve({}, {"routeRefreshInterval": "0s"}, {}).resync_seconds == math.inf
    assert resolve({"FELIX_ROUTEREFRESHINTERVAL": "0"}, {}, {}).resync_seconds == math.inf
    assert resolve({}, {}, {}).resync_seconds == 90.0


def test_empty_datastore_values_are_unset() -> None:
    assert resolve({}, {"logSeverityScreen": ""}, {}).log_severity_screen == "Info"


def test_warnings_do_not_make_settings_differ() -> None:
    assert resolve({"FELIX_VXLANPORT": "x"}, {}, {}) == resolve({}, {}, {})


def test_a_setting_is_found_by_its_felix_configuration_name() -> None:
    settings = resolve({"FELIX_HEALTHPORT": "9199"}, {}, {})
    assert settings.value_of("healthPort") == 9199
    assert settings.value_of("prometheusMetricsPort") == 9091
