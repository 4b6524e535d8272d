"""Felix's host protection: host endpoints, failsafes, and the raw and pre-DNAT hooks, as
nftables text (golden files), plus the calculation that decides what applies where.

Each `golden/felix/<case>.yaml` holds v3 resources, the node, its interfaces with their
addresses and FelixConfiguration `default`; `<case>.nft` next to it is the whole table Felix
writes (and, as comments at its end, the warnings it logs). After an intended change,
regenerate with `PYCALICO_REGEN_GOLDEN=1 pytest tests/unit/test_felix_host_endpoints.py`
and review the diff. tests/integration/test_felix_host_endpoints.py loads every golden
table into a kernel.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from pycalico.api.resource import normalize
from pycalico.felix.calc.desired import Calculator
from pycalico.felix.calc.settings import resolve
from pycalico.felix.dataplane.nftables import full_script
from pycalico.felix.rules import failsafes
from pycalico.felix.rules.failsafes import ProtoPort
from pycalico.policy import calc, model
from tests.support.felix_case import GOLDEN, desired, golden_cases, host_links, load, snapshot

CASES = golden_cases()
REGENERATE = os.environ.get("PYCALICO_REGEN_GOLDEN") == "1"


def golden_text(case: str) -> str:
    wanted = desired(load(case))
    warnings = "".join(f"# warning: {w}\n" for w in wanted.policy_warnings)
    return full_script(wanted.ruleset) + warnings


@pytest.mark.parametrize("case", CASES)
def test_the_table_felix_writes_matches_the_golden_file(case: str) -> None:
    text = golden_text(case)
    expected = GOLDEN / f"{case}.nft"
    if REGENERATE:
        expected.write_text(text)
    assert text == expected.read_text()


def test_without_a_host_endpoint_on_the_node_no_host_hook_exists() -> None:
    case = load("named_eth0")
    case["resources"] = [
        r for r in case["resources"] if r["metadata"]["name"] != "node1-eth0"
    ]  # node2's endpoint stays: it is not this node's
    rules = desired(case).ruleset
    assert set(rules.base_chains) == {
        "filter-FORWARD",
        "filter-INPUT",
        "nat-outgoing",
        "raw-PREROUTING",
        "raw-OUTPUT",
    }
    assert not [name for name in rules.chains if "host-endpoint" in name or "failsafe" in name]
    assert rules.chains["filter-INPUT"] == ('iifname "cali*" goto filter-cali-wl-to-host',)


def test_a_named_endpoint_on_a_missing_interface_governs_nothing() -> None:
    case = load("named_eth0")
    case["interfaces"] = {"lo": ["127.0.0.1"], "ens3": ["192.168.56.11"]}
    assert "filter-OUTPUT" not in desired(case).ruleset.chains


def test_a_global_policy_with_do_not_track_or_pre_dnat_never_applies_to_workloads() -> None:
    """Calico's untracked and pre-DNAT policies are for host endpoints only; a selector
    that also matches pods must leave the pods' chains alone."""
    case = load("named_eth0")
    for flag in ("doNotTrack", "preDNAT"):
        case["resources"].append(
            {
                "kind": "GlobalNetworkPolicy",
                "metadata": {"name": f"all-{flag.lower()}"},
                "spec": {
                    "selector": "all()",
                    flag: True,
                    "applyOnForward": True,
                    "ingress": [{"action": "Deny"}],
                },
            }
        )
    rules = desired(case).ruleset
    assert not [line for line in rules.chains["filter-cali-tw-caliweb"] if "cali-pi-" in line]
    assert "raw-cali-pi-default/all-donottrack" in rules.chains
    assert "mangle-cali-pi-default/all-prednat" in rules.chains
    assert "filter-cali-pi-default/all-donottrack" not in rules.chains


def test_named_endpoint_beats_the_all_interfaces_one_and_the_earliest_name_wins() -> None:
    heps = [
        _hep("b-by-ip", "", ["192.0.2.1"]),
        _hep("a-by-ip", "", ["192.0.2.1", "2001:db8::1"]),
        _hep("z-named", "eth1", []),
        _hep("all", "*", []),
        _hep("elsewhere", "eth0", [], node="node2"),
    ]
    found = calc.resolve_host_endpoints(
        heps,
        "node1",
        {
            "eth0": frozenset({"192.0.2.1"}),
            "eth1": frozenset(),
            "eth2": frozenset({"2001:db8::1"}),
            "cali1": frozenset({"192.0.2.1"}),
        },
    )
    assert {iface: hep.key for iface, hep in found.items()} == {
        "eth0": "a-by-ip",
        "eth1": "z-named",
        "eth2": "a-by-ip",
        "*": "all",
    }


def _hep(name: str, iface: str, ips: list[str], node: str = "node1") -> model.HostEndpoint:
    spec: dict[str, Any] = {"node": node, "expectedIPs": ips}
    if iface:
        spec["interfaceName"] = iface
    return model.host_endpoint(
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "HostEndpoint",
                "metadata": {"name": name},
                "spec": spec,
            }
        ),
        {},
    )


def test_host_endpoint_stages_split_policies_as_felix_does() -> None:
    state = desired(load("untracked_forward"))
    rules = state.ruleset
    storage = [line for line in rules.chains["filter-cali-thfw-eth1"] if "jump" in line]
    assert storage == ["meta mark & 0x20000 == 0 jump filter-cali-po-default/no-forwarded-udp"]
    assert any("notrack" in line for line in rules.chains["raw-cali-fh-eth1"])
    assert "raw-cali-fh-any-interface-at-all" not in rules.chains
    assert state.policy_warnings == (
        "DoNotTrack policy is not supported for a HEP with `interfaceName: *` "
        "(HostEndpoint node1-all); ignoring it",
    )


def test_the_all_interfaces_endpoint_forwards_by_default_without_apply_on_forward() -> None:
    rules = desired(load("untracked_forward")).ruleset
    assert rules.chains["filter-cali-fhfw-any-interface-at-all"][-2:] == (
        'meta mark set meta mark | 0x10000 comment "Allow forwarded traffic by default"',
        'return comment "Return for accepted forward traffic"',
    )


def test_forwarding_is_allowed_in_a_direction_no_apply_on_forward_policy_covers() -> None:
    rules = desired(load("untracked_forward")).ruleset
    assert rules.chains["filter-cali-fhfw-eth1"][-1] == (
        'return comment "Return for accepted forward traffic"'
    )
    assert rules.chains["filter-cali-thfw-eth1"][-1] == (
        "meta mark & 0x20000 == 0 drop "
        'comment "End of tier default. Drop if no policies passed packet"'
    )


def test_failsafe_ports_parse_as_felix_reads_them_from_the_environment() -> None:
    assert failsafes.parse("tcp:22, udp:68,179 ,tcp:10.0.0.0/8:2379,udp:[fd00::/64]:53") == (
        ProtoPort("tcp", 22),
        ProtoPort("udp", 68),
        ProtoPort("tcp", 179),
        ProtoPort("tcp", 2379, "10.0.0.0/8"),
        ProtoPort("udp", 53, "fd00::/64"),
    )
    assert failsafes.parse("none") == ()
    for bad, reason in (
        ("sctp:22", "unknown protocol: sctp"),
        ("tcp:x", "ports should be integers"),
        ("tcp:70000", "ports must be in range 0-65535"),
        ("a:b:c:d", "ports should be"),
        ("tcp:nonsense:22", "invalid CIDR or IP nonsense"),
    ):
        with pytest.raises(ValueError, match=reason):
            failsafes.parse(bad)


def test_failsafe_settings_come_from_env_then_felix_configuration_then_calicos_defaults() -> None:
    assert resolve({}, {}, {}).failsafe_inbound_host_ports == failsafes.DEFAULT_INBOUND
    assert [p.port for p in failsafes.DEFAULT_OUTBOUND] == [
        53,
        67,
        179,
        2379,
        2380,
        5473,
        6443,
        6666,
        6667,
    ]
    configured = resolve({}, {"failsafeInboundHostPorts": [{"port": 22}]}, {})
    assert configured.failsafe_inbound_host_ports == (ProtoPort("tcp", 22),)
    assert resolve({}, {"failsafeOutboundHostPorts": []}, {}).failsafe_outbound_host_ports == ()
    env = resolve(
        {"FELIX_FAILSAFEINBOUNDHOSTPORTS": "udp:5353"}, {"failsafeInboundHostPorts": []}, {}
    )
    assert env.failsafe_inbound_host_ports == (ProtoPort("udp", 5353),)
    bad = resolve({"FELIX_FAILSAFEINBOUNDHOSTPORTS": "icmp:1"}, {}, {})
    assert bad.failsafe_inbound_host_ports == failsafes.DEFAULT_INBOUND
    assert bad.warnings == (
        "ignoring FELIX_FAILSAFEINBOUNDHOSTPORTS='icmp:1': unknown protocol: icmp",
    )


def _targets_missing(chains: dict[str, tuple[str, ...]]) -> set[str]:
    """Chains jumped to or gone to that the ruleset does not have (nft would refuse it)."""
    wanted = {
        words[i + 1]
        for lines in chains.values()
        for line in lines
        for words in [line.split()]
        for i, word in enumerate(words[:-1])
        if word in ("jump", "goto")
    }
    return wanted - chains.keys()


@pytest.mark.parametrize("case", CASES)
def test_every_chain_jumped_to_exists(case: str) -> None:
    assert _targets_missing(desired(load(case)).ruleset.chains) == set()


def test_a_host_endpoints_missing_profile_is_skipped_as_a_workloads_is() -> None:
    """A profile named but not (yet) there must not make nft refuse the whole table."""
    case = load("named_eth0")
    for resource in case["resources"]:
        if resource["metadata"]["name"] == "node1-eth0":
            resource["spec"]["profiles"] = ["not-there", "kns.default"]
    rules = desired(case).ruleset
    assert _targets_missing(rules.chains) == set()
    assert "jump filter-cali-pri-kns.default" in rules.chains["filter-cali-fh-eth0"]


def test_a_pods_label_change_renders_no_host_endpoint_chain_again() -> None:
    """A Felix's next apply after a workload's label change hands the dataplane the same
    host endpoint and failsafe chains, not equal copies: nothing of the host endpoint is
    rendered or compared line by line again."""
    case = load("named_eth0")
    calculator = Calculator(case["node"])
    settings = resolve(case.get("env", {}), case.get("felix", {}), {})
    links = host_links(case["interfaces"])
    before = calculator.calculate(snapshot(case["resources"]), settings, links).ruleset
    for resource in case["resources"]:
        if resource["kind"] == "WorkloadEndpoint":
            resource["metadata"]["labels"] = {"app": "db"}
    after = calculator.calculate(snapshot(case["resources"]), settings, links).ruleset
    host = [name for name in before.chains if "-cali-fh-" in name or "-cali-th-" in name]
    host += [name for name in before.chains if "-cali-failsafe-" in name]
    assert len(host) >= 4
    assert [name for name in host if after.chains[name] is not before.chains[name]] == []
