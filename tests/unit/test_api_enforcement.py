"""Nothing a user sets is silently ignored: what pycalico does not enforce is named, by
calicoctl when it writes it, by Felix in its log, and by `calicoctl policy explain`."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pycalico.api import enforcement
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.sqlite import SqliteBackend
from pycalico.felix.calc import settings
from pycalico.felix.calc.snapshot import SnapshotReader
from tests.support.calicoctl_harness import InProcess, multi, resource_yaml


def _doc(kind: str, spec: dict[str, Any], name: str = "x", **meta: str) -> dict[str, Any]:
    return {"kind": kind, "metadata": {"name": name, **meta}, "spec": spec}


def test_the_felix_fields_called_enforced_are_exactly_the_settings_felix_reads() -> None:
    keys = {f.metadata["key"] for f in dataclasses.fields(settings.Settings) if f.metadata}
    assert keys == enforcement.FELIX_ENFORCED


@pytest.mark.parametrize(
    ("doc", "fields"),
    [
        (_doc("GlobalNetworkPolicy", {"doNotTrack": True, "applyOnForward": True}), []),
        (_doc("GlobalNetworkPolicy", {"preDNAT": True, "applyOnForward": True}), []),
        (
            _doc(
                "NetworkPolicy",
                {
                    "ingress": [
                        {"action": "Allow"},
                        {"action": "Allow", "http": {"methods": ["GET"]}},
                    ]
                },
                namespace="ns",
            ),
            ["spec.ingress[1].http"],
        ),
        (
            _doc("Profile", {"egress": [{"action": "Allow", "http": {"paths": [{"exact": "/"}]}}]}),
            ["spec.egress[0].http"],
        ),
        (_doc("HostEndpoint", {"node": "n1", "interfaceName": "eth0"}), []),
        (_doc("BGPFilter", {}), ["kind"]),
        (
            _doc(
                "KubeControllersConfiguration",
                {"controllers": {"node": {"hostEndpoint": {"autoCreate": "Enabled"}}}},
            ),
            [],
        ),
        (
            _doc(
                "KubeControllersConfiguration",
                {
                    "logSeverityScreen": "Info",  # what kube-controllers starts with
                    "controllers": {
                        "node": {
                            "syncLabels": "Disabled",
                            "hostEndpoint": {
                                "autoCreate": "Enabled",
                                "templates": [{"generateName": "t", "interfaceCIDRs": ["::/0"]}],
                            },
                        },
                    },
                },
            ),
            ["spec.controllers.node.syncLabels", "spec.controllers.node.hostEndpoint.templates"],
        ),
        (
            _doc("BGPPeer", {"peerIP": "192.0.2.1", "asNumber": 64512, "password": {}}),
            ["spec.password"],
        ),
        (
            _doc(
                "BGPPeer",
                {
                    "peerIP": "192.0.2.1",
                    "failureDetectionMode": "None",
                    "restartMode": "GracefulRestart",
                    "birdGatewayMode": "Recursive",
                },
            ),
            [],
        ),
        (
            _doc("BGPPeer", {"failureDetectionMode": "BFDIfDirectlyConnected"}),
            ["spec.failureDetectionMode"],
        ),
        (
            _doc("BGPConfiguration", {"communities": [{"name": "a", "value": "1:2"}]}),
            ["spec.communities"],
        ),
        (_doc("BGPConfiguration", {"asNumber": 64512, "nodeToNodeMeshEnabled": True}), []),
        (_doc("IPPool", {"cidr": "10.0.0.0/16", "natOutgoing": True}), []),
    ],
)
def test_what_a_resource_asks_for_that_pycalico_does_not_do_is_named(
    doc: dict[str, Any], fields: list[str]
) -> None:
    assert enforcement.unenforced(doc) == fields


def test_felix_configuration_warns_of_set_fields_felix_does_not_read_only() -> None:
    spec = {
        "logSeverityScreen": "Debug",  # read
        "reportingInterval": "0s",  # what calico-node writes: no reports, as pycalico
        "bpfLogLevel": "",  # filled in on every write
        "bpfConnectTimeLoadBalancing": "TCP",
        "bpfKubeProxyIptablesCleanupEnabled": False,  # bpf*: moot while bpfEnabled is off
        "chainInsertMode": "Append",
        "failsafeInboundHostPorts": [{"protocol": "TCP", "port": 22}],
    }
    assert enforcement.unenforced(_doc("FelixConfiguration", spec, "default")) == [
        "spec.chainInsertMode",
    ]


def test_bpf_fields_are_named_once_the_ebpf_dataplane_is_asked_for() -> None:
    spec = {"bpfEnabled": True, "bpfLogLevel": "Debug"}
    assert enforcement.unenforced(_doc("FelixConfiguration", spec)) == [
        "spec.bpfEnabled",
        "spec.bpfLogLevel",
    ]


def test_the_warning_is_one_line_naming_the_resource_and_its_fields() -> None:
    doc = _doc("NetworkPolicy", {}, "web", namespace="prod")
    assert enforcement.describe(doc, ["spec.ingress[0].http"]) == (
        "NetworkPolicy prod/web: pycalico does not enforce spec.ingress[0].http"
    )
    assert enforcement.describe(_doc("BGPFilter", {}, "f1"), ["kind"]) == (
        "BGPFilter f1 is not enforced by pycalico: "
        "BGP filters are not applied to BIRD's import and export"
    )


@pytest.mark.parametrize(
    ("doc", "lines"),
    [
        (
            _doc("StagedNetworkPolicy", {"selector": "all()"}, "lockdown", namespace="shop"),
            [],
        ),
        (
            _doc("StagedGlobalNetworkPolicy", {"stagedAction": "Delete"}, "default.deny-all"),
            [],
        ),
        (
            _doc(
                "StagedNetworkPolicy",
                {"stagedAction": "Learn", "selector": "all()"},
                "lockdown",
                namespace="shop",
            ),
            [f"StagedNetworkPolicy shop/lockdown: stagedAction Learn {enforcement.AS_SET}"],
        ),
        (
            _doc("StagedGlobalNetworkPolicy", {"stagedAction": "Ignore"}, "default.deny-all"),
            [
                "StagedGlobalNetworkPolicy default.deny-all: "
                f"stagedAction Ignore {enforcement.AS_SET}"
            ],
        ),
        (
            _doc(
                "NetworkPolicy", {"ingress": [{"action": "Allow", "http": {}}]}, "w", namespace="p"
            ),
            [],
        ),
        (
            _doc(
                "NetworkPolicy",
                {"ingress": [{"action": "Allow", "http": {"methods": ["GET"]}}]},
                "web",
                namespace="prod",
            ),
            ["NetworkPolicy prod/web: pycalico does not enforce spec.ingress[0].http"],
        ),
        (_doc("GlobalNetworkPolicy", {"selector": "all()"}), []),
    ],
)
def test_the_warnings_for_a_written_resource_name_staged_learn_and_ignore_as_evaluated_as_set(
    doc: dict[str, Any], lines: list[str]
) -> None:
    assert enforcement.warnings(doc) == lines


def test_calicoctl_writes_the_resource_and_warns_naming_the_unenforced_fields(
    ctl: InProcess,
) -> None:
    text = multi(
        resource_yaml(
            "GlobalNetworkPolicy",
            "web",
            {
                "selector": "all()",
                "ingress": [{"action": "Allow"}, {"action": "Allow", "http": {"methods": ["GET"]}}],
            },
        ),
        resource_yaml("GlobalNetworkPolicy", "plain", {"selector": "all()"}),
    )
    rc, out, err = ctl.run("apply", "-f", "-", stdin=text)
    assert rc == 0 and out == "Successfully applied 2 'GlobalNetworkPolicy' resource(s)\n"
    assert err.splitlines() == [
        "Warning: GlobalNetworkPolicy web: pycalico does not enforce spec.ingress[1].http"
    ]
    assert ctl.run("get", "globalnetworkpolicy", "web", "-o", "yaml")[1].count("GET")


def test_calicoctl_says_nothing_of_what_pycalico_enforces(ctl: InProcess) -> None:
    rc, _, err = ctl.run(
        "create",
        "-f",
        "-",
        stdin=resource_yaml("FelixConfiguration", "default", {"logSeverityScreen": "Debug"}),
    )
    assert rc == 0 and err == ""


def test_felix_snapshot_names_each_unenforced_resource_it_reads(ctl: InProcess) -> None:
    applied = ctl.run(
        "apply",
        "-f",
        "-",
        stdin=multi(
            resource_yaml("HostEndpoint", "h1", {"node": "n1", "interfaceName": "eth0"}),
            resource_yaml(
                "GlobalNetworkPolicy",
                "pd",
                {
                    "preDNAT": True,
                    "applyOnForward": True,
                    "selector": "all()",
                    "types": ["Ingress"],
                    "ingress": [{"action": "Allow", "http": {"paths": [{"prefix": "/a"}]}}],
                },
            ),
            resource_yaml("FelixConfiguration", "node.n1", {"chainInsertMode": "Append"}),
            resource_yaml("GlobalNetworkPolicy", "ok", {"selector": "all()"}),
        ),
    )
    assert applied.rc == 0
    mirror = Mirror("/calico/")
    with SqliteBackend(ctl.store) as backend:
        mirror.load(backend)
    assert sorted(SnapshotReader("n1").read(mirror).unenforced) == [
        "FelixConfiguration node.n1: pycalico does not enforce spec.chainInsertMode",
        "GlobalNetworkPolicy pd: pycalico does not enforce spec.ingress[0].http",
    ]


def _wep(name: str, ip: str) -> str:
    return resource_yaml(
        "WorkloadEndpoint",
        f"n1-k8s-{name}-eth0",
        {
            "node": "n1",
            "orchestrator": "k8s",
            "workload": name,
            "pod": name,
            "endpoint": "eth0",
            "ipNetworks": [f"{ip}/32"],
            "interfaceName": f"cali{name}",
            "profiles": ["kns.prod"],
        },
        namespace="prod",
        labels={"app": name, "projectcalico.org/namespace": "prod"},
    )


def test_policy_explain_marks_a_deciding_policy_with_what_is_not_enforced(
    ctl: InProcess,
) -> None:
    policy = resource_yaml(
        "NetworkPolicy",
        "web",
        {
            "selector": "app == 'b'",
            "types": ["Ingress"],
            "ingress": [{"action": "Allow", "protocol": "TCP", "http": {"methods": ["GET"]}}],
        },
        namespace="prod",
    )
    profile = resource_yaml(
        "Profile", "kns.prod", {"ingress": [{"action": "Allow"}], "egress": [{"action": "Allow"}]}
    )
    docs = multi(profile, _wep("a", "10.0.0.1"), _wep("b", "10.0.0.2"), policy)
    assert ctl.run("apply", "-f", "-", stdin=docs).rc == 0
    rc, out, _ = ctl.run("policy", "explain", "--from=prod/a", "--to=prod/b", "--port=80")
    assert rc == 0
    assert "by policy default/prod/web rule 0 (not enforced: spec.ingress[0].http)" in out
