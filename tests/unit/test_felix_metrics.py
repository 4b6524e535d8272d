"""Felix's metrics by Calico's names: what an apply leaves behind, read per scrape."""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from typing import Any

from prometheus_client.registry import CollectorRegistry

from pycalico.api.resource import normalize
from pycalico.felix.calc.desired import Calculator, Desired, HostLinks
from pycalico.felix.calc.mtu import Link
from pycalico.felix.calc.routes import NodeInfo, PoolInfo, Workload
from pycalico.felix.calc.settings import resolve
from pycalico.felix.calc.snapshot import Snapshot
from pycalico.felix.dataplane.rule_counters import RuleKey
from pycalico.felix.metrics import FelixMetrics, RuleCounters
from pycalico.metrics import exposition
from pycalico.policy import calc as policy_calc
from pycalico.policy import model

NET = ipaddress.ip_network
HOST = HostLinks((Link("eth0", 1500, True),), (("192.0.2.11", "eth0"),))
KNS = model.profile(
    normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "Profile",
            "metadata": {"name": "kns.x"},
            "spec": {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]},
        }
    )
)


def _wep(name: str, ip: str, node: str, **labels: str) -> model.Endpoint:
    return model.endpoint(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "WorkloadEndpoint",
                "metadata": {"name": f"{node}-k8s-{name}-eth0", "namespace": "x", "labels": labels},
                "spec": {
                    "node": node,
                    "orchestrator": "k8s",
                    "pod": name,
                    "endpoint": "eth0",
                    "interfaceName": f"cali{name}",
                    "ipNetworks": [f"{ip}/32"],
                    "profiles": ["kns.x"],
                },
            }
        ),
        {"kns.x": KNS},
    )


def _policy(name: str, spec: dict[str, Any]) -> model.Policy:
    return model.policy(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": name},
                "spec": spec,
            }
        )
    )


WEB = _policy(
    "web",
    {
        "selector": "app == 'web'",
        "ingress": [
            {"action": "Allow", "source": {"selector": "role == 'db'"}},
            {"action": "Deny", "source": {"selector": "role == 'batch'"}},
        ],
    },
)
NOWHERE = _policy(
    "nowhere", {"selector": "app == 'none'", "ingress": [{"action": "Allow", "source": {}}]}
)
SECURITY = policy_calc.Tier("security", 100)


def snapshot(generation: int = 1) -> Snapshot:
    return Snapshot(
        revision=5,
        generation=generation,
        nodes={
            "node1": NodeInfo("node1", ipaddress.ip_interface("192.0.2.11/24"), "10.246.1.0"),
            "node2": NodeInfo("node2", ipaddress.ip_interface("192.0.2.12/24"), "10.246.2.0"),
        },
        pools=[PoolInfo(NET("10.246.0.0/16"), "Never", "Never")],
        workloads=[Workload("10.246.1.5/32", "caliweb")],
        block_owners={NET("10.246.1.0/26"): "node1", NET("10.246.2.0/26"): "node2"},
        policy=policy_calc.Inputs(
            [
                _wep("web", "10.246.1.5", "node1", app="web"),
                _wep("db", "10.246.2.5", "node2", role="db"),
            ],
            [WEB, NOWHERE],
            {"kns.x": KNS},
            {"default": policy_calc.Tier("default", 1_000_000), "security": SECURITY},
        ),
    )


def desired(snap: Snapshot) -> Desired:
    return Calculator("node1").calculate(snap, resolve({}, {}, {}), HOST)


def scrape(metrics: FelixMetrics) -> dict[str, float]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(metrics)
    values = {}
    for line in exposition.text(registry).decode().splitlines():
        if not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
    return values


def test_an_apply_gives_felixs_gauges_of_the_cluster_and_of_this_host() -> None:
    metrics = FelixMetrics("node1")
    snap = snapshot()
    metrics.applied(True, 0.5, snap, desired(snap))
    got = scrape(metrics)
    assert got["felix_cluster_num_hosts"] == 2
    assert got["felix_cluster_num_workload_endpoints"] == 2
    assert got["felix_cluster_num_policies"] == 2
    assert got["felix_cluster_num_profiles"] == 1
    assert got["felix_cluster_num_tiers"] == 2
    assert got["felix_active_local_endpoints"] == 1
    # Only `web` selects the local endpoint; its rules use two selectors.
    assert got["felix_active_local_policies"] == 1
    assert got["felix_active_local_selectors"] == 2
    assert got['felix_host{host="node1"}'] == 1
    assert got["felix_resync_state"] == 3
    assert got['felix_route_table_num_routes{table="IPv4:254"}'] >= 1
    assert got['felix_nft_chains{ip_version="inet"}'] >= 4
    assert got['felix_nft_rules{ip_version="inet"}'] > got['felix_nft_chains{ip_version="inet"}']


def test_before_any_apply_felix_is_waiting_and_has_no_cluster_figures() -> None:
    got = scrape(FelixMetrics("node1"))
    assert got["felix_resync_state"] == 1
    assert got["felix_resyncs_started"] == 0
    assert "felix_cluster_num_hosts" not in got
    assert math.isnan(got['felix_int_dataplane_apply_time_seconds{quantile="0.5"}'])


def test_the_initial_resync_is_timed_apart_from_the_apply_summary() -> None:
    metrics = FelixMetrics("node1")
    snap = snapshot()
    plan = desired(snap)
    metrics.applied(True, 4.0, snap, plan)
    for seconds in (0.1, 0.2, 0.3):
        metrics.applied(True, seconds, snap, plan)
    got = scrape(metrics)
    assert got["felix_int_dataplane_initial_resync_time_seconds"] == 4.0
    assert got["felix_int_dataplane_apply_time_seconds_count"] == 3
    assert got['felix_int_dataplane_apply_time_seconds{quantile="0.5"}'] == 0.2
    assert got['felix_int_dataplane_apply_time_seconds{quantile="0.99"}'] == 0.3


def test_failures_and_resyncs_are_counted_as_felixs_go_counters() -> None:
    metrics = FelixMetrics("node1")
    first, reloaded = snapshot(generation=1), snapshot(generation=2)
    metrics.applied(True, 0.1, first, desired(first))
    metrics.applied(False, 0.1, first, None)
    metrics.applied(True, 0.1, first, desired(first))
    metrics.applied(False, 0.1, reloaded, None)
    got = scrape(metrics)
    assert got["felix_int_dataplane_failures"] == 2
    assert got["felix_resyncs_started"] == 2
    assert "felix_int_dataplane_failures_total" not in got


def _hep(name: str, node: str, interface: str) -> model.HostEndpoint:
    return model.host_endpoint(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "HostEndpoint",
                "metadata": {"name": name, "labels": {"host": "yes"}},
                "spec": {"node": node, "interfaceName": interface, "expectedIPs": []},
            }
        ),
        {},
    )


def test_host_endpoints_count_in_the_cluster_and_locally_with_their_policies() -> None:
    metrics = FelixMetrics("node1")
    base = snapshot()
    host_policy = _policy(
        "host-ssh",
        {
            "selector": "host == 'yes'",
            "ingress": [{"action": "Allow", "protocol": "TCP", "destination": {"ports": [22]}}],
        },
    )
    snap = dataclasses.replace(
        base,
        policy=dataclasses.replace(
            base.policy,
            policies=[*base.policy.policies, host_policy],
            host_endpoints=[_hep("node1-eth0", "node1", "eth0"), _hep("n2", "node2", "eth0")],
        ),
    )
    metrics.applied(True, 0.1, snap, desired(snap))
    got = scrape(metrics)
    assert got["felix_cluster_num_host_endpoints"] == 2
    assert got["felix_active_local_endpoints"] == 2  # the pod and this node's eth0
    assert got["felix_active_local_policies"] == 2  # web, and host-ssh on eth0


def test_a_policy_that_stops_selecting_the_host_leaves_the_active_count() -> None:
    metrics = FelixMetrics("node1")
    snap = snapshot()
    moved = dataclasses.replace(
        snap,
        policy=dataclasses.replace(
            snap.policy, policies=[dataclasses.replace(WEB, selector="app == 'other'"), NOWHERE]
        ),
    )
    metrics.applied(True, 0.1, moved, desired(moved))
    got = scrape(metrics)
    assert got["felix_active_local_policies"] == 0
    assert got["felix_active_local_selectors"] == 0
    assert got["felix_cluster_num_policies"] == 2


def test_rule_counters_keep_growing_across_a_rewrite_of_their_chain() -> None:
    counters = RuleCounters()
    key = RuleKey("pi", "default/web", 0)
    assert counters.update({key: (5, 500)}) == {key: (5, 500)}
    assert counters.update({key: (7, 700)}) == {key: (7, 700)}
    assert counters.update({key: (2, 200)}) == {key: (9, 900)}  # rewritten: 0, then 2
    assert counters.update({key: (3, 300)}) == {key: (10, 1000)}
    assert counters.update({}) == {}  # gone from the table: forgotten
    assert counters.update({key: (1, 100)}) == {key: (1, 100)}


def test_per_rule_counters_are_read_once_per_scrape_and_labelled_by_policy_and_rule() -> None:
    readings: list[list[str]] = []

    def read(chains: list[str]) -> dict[RuleKey, tuple[int, int]]:
        readings.append(chains)
        return {
            RuleKey("pi", WEB.id, 0): (12, 1200),
            RuleKey("pi", WEB.id, 1): (3, 180),
            RuleKey("pri", "kns.x", 0): (4, 400),
            RuleKey("pi", "default/gone", 0): (1, 1),  # a policy the snapshot no longer has
        }

    metrics = FelixMetrics("node1", read_counters=read)
    snap = snapshot()
    metrics.applied(True, 0.1, snap, desired(snap))
    got = scrape(metrics)
    # One reading, of the policy's and the profile's chains only.
    assert readings == [
        ["filter-cali-pi-default/web", "filter-cali-pri-kns.x", "filter-cali-pro-kns.x"]
    ]
    web = 'direction="ingress",kind="GlobalNetworkPolicy",name="web",namespace=""'
    assert got[f'pycalico_policy_rule_packets_total{{action="Allow",{web},rule_index="0",'
               'tier="default"}'] == 12  # fmt: skip
    assert got[f'pycalico_policy_rule_bytes_total{{action="Deny",{web},rule_index="1",'
               'tier="default"}'] == 180  # fmt: skip
    profile = (
        'pycalico_policy_rule_packets_total{action="Allow",direction="ingress",kind="Profile",'
        'name="kns.x",namespace="",rule_index="0",tier=""}'
    )
    assert got[profile] == 4
    assert not [name for name in got if "gone" in name]
    scrape(metrics)
    assert len(readings) == 2


def test_counters_that_cannot_be_read_leave_the_rest_of_the_scrape() -> None:
    def read(chains: list[str]) -> dict[RuleKey, tuple[int, int]]:
        raise PermissionError(1, "Operation not permitted")

    metrics = FelixMetrics("node1", read_counters=read)
    snap = snapshot()
    metrics.applied(True, 0.1, snap, desired(snap))
    got = scrape(metrics)
    assert got["felix_cluster_num_hosts"] == 2
    assert not [name for name in got if name.startswith("pycalico_policy_rule")]
