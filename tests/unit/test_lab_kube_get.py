"""`calico-lab get pods|nodes` in kubectl's columns, and ages as kubectl prints them."""

from __future__ import annotations

import pytest

from pycalico.lab.kube_get import NodeRow, human_duration, nodes_table, pods_table
from pycalico.lab.state import Pod

NOW = 1_000_000.0


def pod(name: str, node: str, ip: str, age: float) -> Pod:
    return Pod(name, node, "netns", "cid", ip=ip, created=NOW - age)


PODS = [
    pod("default/web-7d4b9", "node1", "10.244.1.5", 14),
    pod("azhe/client3", "node2", "10.244.2.7", 3 * 60 + 29),
]


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (-5, "<invalid>"),
        (-1, "0s"),
        (14, "14s"),
        (119, "119s"),
        (209, "3m29s"),
        (300, "5m"),
        (3600, "60m"),
        (3 * 3600 + 60, "3h1m"),
        (10 * 3600, "10h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (9 * 365 * 86400, "9y"),
    ],
)
def test_ages_as_kubectl_prints_them(seconds: float, shown: str) -> None:
    assert human_duration(seconds) == shown


def test_pods_of_one_namespace_in_kubectls_columns() -> None:
    table, message = pods_table(PODS, "default", False, False, NOW)
    assert message == ""
    assert [line.split() for line in table.splitlines()] == [
        ["NAME", "READY", "STATUS", "RESTARTS", "AGE"],
        ["web-7d4b9", "1/1", "Running", "0", "14s"],
    ]


def test_wide_adds_ip_node_and_kubectls_empty_columns() -> None:
    table, _ = pods_table(PODS, "default", False, True, NOW)
    header, row = table.splitlines()
    assert header.split() == [
        "NAME",
        "READY",
        "STATUS",
        "RESTARTS",
        "AGE",
        "IP",
        "NODE",
        "NOMINATED",
        "NODE",
        "READINESS",
        "GATES",
    ]
    assert row.split() == [
        "web-7d4b9",
        "1/1",
        "Running",
        "0",
        "14s",
        "10.244.1.5",
        "node1",
        "<none>",
        "<none>",
    ]


def test_all_namespaces_puts_the_namespace_first() -> None:
    table, _ = pods_table(PODS, "default", True, False, NOW)
    lines = [line.split() for line in table.splitlines()]
    assert lines[0][0] == "NAMESPACE"
    assert lines[1][:2] == ["azhe", "client3"] and lines[2][:2] == ["default", "web-7d4b9"]


def test_no_pods_in_a_namespace_is_kubectls_message() -> None:
    assert pods_table(PODS, "kube-system", False, False, NOW) == (
        "",
        "No resources found in kube-system namespace.\n",
    )


def test_nodes_wide() -> None:
    rows = [NodeRow("node1", True, "192.168.56.10", NOW - 60), NodeRow("node2", False, "x", NOW)]
    table = nodes_table(rows, True, NOW, "v0.1.0", "Debian GNU/Linux 12 (bookworm)", "6.1.0")
    lines = table.splitlines()
    assert lines[0].split() == [
        "NAME",
        "STATUS",
        "ROLES",
        "AGE",
        "VERSION",
        "INTERNAL-IP",
        "EXTERNAL-IP",
        "OS-IMAGE",
        "KERNEL-VERSION",
        "CONTAINER-RUNTIME",
    ]
    assert lines[1].split()[:7] == [
        "node1",
        "Ready",
        "<none>",
        "60s",
        "v0.1.0",
        "192.168.56.10",
        "<none>",
    ]
    assert "Debian GNU/Linux 12 (bookworm)" in lines[1]
    assert lines[2].split()[1] == "NotReady"
