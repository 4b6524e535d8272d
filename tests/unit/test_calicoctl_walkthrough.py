"""The calicoctl session the seeds and the reference walk through, checked line by line.

Each test drives calicoctl in process (see calicoctl_harness) against its own store and
asserts the exact columns, values and messages Calico prints.
"""

from __future__ import annotations

import json
import re

from pycalico.ctl.session import CLIENT_VERSION
from tests.support.calicoctl_harness import InProcess, multi, pool_yaml, resource_yaml

WIDE_HEADER = [
    "NAME",
    "CIDR",
    "NAT",
    "IPIPMODE",
    "VXLANMODE",
    "DISABLED",
    "DISABLEBGPEXPORT",
    "SELECTOR",
    "ASSIGNMENTMODE",
]
DEFAULT_POOL = pool_yaml(
    "default-ipv4-ippool", "10.244.0.0/16", ipipMode="Always", natOutgoing=True
)


def table(out: str) -> list[list[str]]:
    """Rows of a table as cells; tables end with one blank line, which is checked here."""
    assert out.endswith("\n\n"), repr(out)
    return [line.split() for line in out[:-2].split("\n")]


def test_default_pool_walkthrough_switches_ipip_to_vxlan(ctl: InProcess) -> None:
    pool_file = ctl.write("pool.yaml", DEFAULT_POOL)
    assert ctl.ok("apply", "-f", pool_file).out == "Successfully applied 1 'IPPool' resource(s)\n"

    assert table(ctl.ok("get", "ippool").out) == [
        ["NAME", "CIDR", "SELECTOR"],
        ["default-ipv4-ippool", "10.244.0.0/16", "all()"],
    ]
    assert table(ctl.ok("get", "ippool", "-o", "wide").out) == [
        WIDE_HEADER,
        [
            "default-ipv4-ippool",
            "10.244.0.0/16",
            "true",
            "Always",
            "Never",
            "false",
            "false",
            "all()",
            "Automatic",
        ],
    ]

    listed = json.loads(ctl.ok("get", "ippool", "-o", "json").out)
    assert list(listed) == ["kind", "apiVersion", "metadata", "items"]
    assert listed["kind"] == "IPPoolList"
    assert listed["apiVersion"] == "projectcalico.org/v3"
    assert listed["metadata"]["resourceVersion"].isdigit()
    [item] = listed["items"]
    assert list(item) == ["kind", "apiVersion", "metadata", "spec"]
    # Go struct order of IPPoolSpec; disabled/disableBGPExport are false and omitted.
    assert list(item["spec"]) == [
        "cidr",
        "vxlanMode",
        "ipipMode",
        "natOutgoing",
        "blockSize",
        "nodeSelector",
        "allowedUses",
        "assignmentMode",
    ]
    assert item["spec"]["blockSize"] == 26
    assert item["spec"]["allowedUses"] == ["Workload", "Tunnel"]
    assert set(item["metadata"]) == {"name", "uid", "resourceVersion", "creationTimestamp"}

    # What the seeds do: dump the pool, edit the modes, apply the file back.
    dumped = ctl.ok("get", "ippool", "default-ipv4-ippool", "-o", "yaml").out
    assert dumped.startswith("apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n")
    assert "  ipipMode: Always\n" in dumped and "  vxlanMode: Never\n" in dumped
    edited = dumped.replace("ipipMode: Always", "ipipMode: Never").replace(
        "vxlanMode: Never", "vxlanMode: Always"
    )
    edited_file = ctl.write("pool-vxlan.yaml", edited)
    assert ctl.ok("apply", "-f", edited_file).out == "Successfully applied 1 'IPPool' resource(s)\n"
    row = table(ctl.ok("get", "ippool", "-o", "wide").out)[1]
    assert row[3:5] == ["Never", "Always"]
    assert row[2] == "true"  # the rest of the spec survived the edit


def test_nodes_wide_shows_global_asn_in_parentheses(ctl: InProcess) -> None:
    nodes = multi(
        resource_yaml("Node", "node-1", {"bgp": {"ipv4Address": "192.168.1.10/24"}}),
        resource_yaml(
            "Node", "node-2", {"bgp": {"ipv4Address": "192.168.1.11/24", "asNumber": 65001}}
        ),
    )
    assert ctl.ok("apply", "-f", "-", stdin=nodes).out == (
        "Successfully applied 2 'Node' resource(s)\n"
    )
    assert table(ctl.ok("get", "nodes").out) == [["NAME"], ["node-1"], ["node-2"]]
    wide = ctl.ok("get", "nodes", "-o", "wide").out
    assert table(wide) == [
        ["NAME", "ASN", "IPV4", "IPV6"],
        ["node-1", "(64512)", "192.168.1.10/24"],
        ["node-2", "65001", "192.168.1.11/24"],
    ]
    # The parenthesised value is the cluster-wide AS number once one is configured.
    ctl.ok(
        "apply", "-f", "-", stdin=resource_yaml("BGPConfiguration", "default", {"asNumber": 63400})
    )
    assert table(ctl.ok("get", "nodes", "-o", "wide").out)[1][1] == "(63400)"


def test_bgpconfiguration_columns(ctl: InProcess) -> None:
    config = resource_yaml(
        "BGPConfiguration",
        "default",
        {"logSeverityScreen": "Info", "nodeToNodeMeshEnabled": False, "asNumber": 63400},
    )
    assert ctl.ok("apply", "-f", "-", stdin=config).out == (
        "Successfully applied 1 'BGPConfiguration' resource(s)\n"
    )
    assert table(ctl.ok("get", "bgpconfig").out) == [
        ["NAME", "LOGSEVERITY", "MESHENABLED", "ASNUMBER"],
        ["default", "Info", "false", "63400"],
    ]


def test_bgppeer_node_column_and_delete_by_file(ctl: InProcess) -> None:
    peers = {
        "global-peer": {"peerIP": "192.168.1.1", "asNumber": 64567},
        "node-peer": {"peerIP": "192.168.1.2", "asNumber": 64568, "node": "node-1"},
        "rack-peer": {"peerIP": "192.168.1.3", "asNumber": 64569, "nodeSelector": "rack == 'a'"},
    }
    files = {
        name: ctl.write(f"{name}.yaml", resource_yaml("BGPPeer", name, spec))
        for name, spec in peers.items()
    }
    for path in files.values():
        assert ctl.ok("apply", "-f", path).out == "Successfully applied 1 'BGPPeer' resource(s)\n"
    out = ctl.ok("get", "bgppeer").out
    assert out.splitlines()[0].split() == ["NAME", "PEERIP", "NODE", "ASN"]
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line}
    assert rows["global-peer"].split() == ["global-peer", "192.168.1.1", "(global)", "64567"]
    assert rows["node-peer"].split() == ["node-peer", "192.168.1.2", "node-1", "64568"]
    # A selector is shown as written, spaces included, so compare on the raw line.
    assert "rack == 'a'" in rows["rack-peer"]

    result = ctl.ok("delete", "-f", files["global-peer"])
    assert result.out == "Successfully deleted 1 'BGPPeer' resource(s)\n"
    remaining = [r[0] for r in table(ctl.ok("get", "bgppeers").out)[1:]]
    assert remaining == ["node-peer", "rack-peer"]


def test_policies_namespace_column_only_with_n_or_all_namespaces(ctl: InProcess) -> None:
    policies = multi(
        resource_yaml(
            "GlobalNetworkPolicy",
            "allow-dns",
            {
                "order": 100,
                "selector": "all()",
                "egress": [{"action": "Allow", "protocol": "UDP", "destination": {"ports": [53]}}],
            },
        ),
        resource_yaml("NetworkPolicy", "web", {"selector": "app == 'web'"}, namespace="prod"),
        resource_yaml("NetworkPolicy", "db", {"order": 5}, namespace="default"),
    )
    assert ctl.ok("apply", "-f", "-", stdin=policies).out == "Successfully applied 3 resource(s)\n"

    assert table(ctl.ok("get", "gnp").out) == [["NAME", "TIER"], ["allow-dns", "default"]]
    assert table(ctl.ok("get", "gnp", "-o", "wide").out) == [
        ["NAME", "TIER", "ORDER", "SELECTOR"],
        ["allow-dns", "default", "100", "all()"],
    ]
    # Cluster-scoped kinds never get a NAMESPACE column, even with -A.
    assert table(ctl.ok("get", "gnp", "-A").out)[0] == ["NAME", "TIER"]

    # Without -n/-A: the default namespace, no NAMESPACE column.
    assert table(ctl.ok("get", "np").out) == [["NAME", "TIER"], ["db", "default"]]
    assert table(ctl.ok("get", "networkpolicy", "-n", "prod").out) == [
        ["NAMESPACE", "NAME", "TIER"],
        ["prod", "web", "default"],
    ]
    assert table(ctl.ok("get", "policy", "-A").out) == [
        ["NAMESPACE", "NAME", "TIER"],
        ["default", "db", "default"],
        ["prod", "web", "default"],
    ]
    wide = ctl.ok("get", "np", "-A", "-o", "wide").out
    assert wide.splitlines()[0].split() == ["NAMESPACE", "NAME", "TIER", "ORDER", "SELECTOR"]
    assert "app == 'web'" in wide
    assert ctl.ok("get", "np", "-n", "empty-ns").out.splitlines()[0].split() == [
        "NAMESPACE",
        "NAME",
        "TIER",
    ]


def test_policy_reads_carry_the_tier_label(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=resource_yaml("GlobalNetworkPolicy", "p", {}))
    got = json.loads(ctl.ok("get", "gnp", "p", "-o", "json").out)
    assert got["metadata"].get("labels") == {"projectcalico.org/tier": "default"}


def test_label_set_update_overwrite_remove_messages(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=pool_yaml("pool-a", "10.1.0.0/16"))
    assert ctl.ok("label", "ippool", "pool-a", "team=blue").out == (
        "Successfully set label team on ippool pool-a\n"
    )
    # calicoctl echoes the type as typed; the same value again is an update, not a clash.
    assert ctl.ok("label", "ipps", "pool-a", "team=blue").out == (
        "Successfully updated label team on ipps pool-a\n"
    )
    clash = ctl.run("label", "ippool", "pool-a", "team=red")
    assert (clash.rc, clash.out) == (1, "")
    assert clash.err == (
        "failed to update label of ippool pool-a, key team is already present. "
        "please use '--overwrite' to set a new value.\n"
    )
    assert ctl.ok("label", "ippool", "pool-a", "team=red", "--overwrite").out == (
        "Successfully updated label team on ippool pool-a\n"
    )
    labels = json.loads(ctl.ok("get", "ippool", "pool-a", "-o", "json").out)["metadata"]["labels"]
    assert labels == {"team": "red"}
    # Selecting on the new label finds the pool.
    assert table(ctl.ok("get", "ippool", "-l", "team == 'red'").out)[1][0] == "pool-a"
    assert table(ctl.ok("get", "ippool", "-l", "team == 'blue'").out) == [
        ["NAME", "CIDR", "SELECTOR"]
    ]

    assert ctl.ok("label", "ippool", "pool-a", "team", "--remove").out == (
        "Successfully removed label team from ippool pool-a\n"
    )
    again = ctl.run("label", "ippool", "pool-a", "team", "--remove")
    assert (again.rc, again.err) == (
        1,
        "cannot remove label of ippool pool-a, key team does not exist\n",
    )
    meta = json.loads(ctl.ok("get", "ippool", "pool-a", "-o", "json").out)["metadata"]
    assert "labels" not in meta
    missing = ctl.run("label", "ippool", "nope", "a=b")
    assert (missing.rc, missing.err) == (1, "ippool nope not found\n")


def test_patch_message_and_effect(ctl: InProcess) -> None:
    ctl.ok("apply", "-f", "-", stdin=DEFAULT_POOL)
    result = ctl.ok("patch", "ippool", "default-ipv4-ippool", "-p", '{"spec":{"disabled":true}}')
    assert result.out == "Successfully patched 1 'IPPool' resource\n"
    row = table(ctl.ok("get", "ippool", "-o", "wide").out)[1]
    assert row[5] == "true"
    # A null removes the field (merge patch), which brings back the default.
    ctl.ok("patch", "ipp", "default-ipv4-ippool", "-p", '{"spec":{"ipipMode":null}}')
    assert table(ctl.ok("get", "ippool", "-o", "wide").out)[1][3] == "Never"


def test_version_output_lines(ctl: InProcess) -> None:
    client_only = ctl.ok("version", "--client").out.splitlines()
    assert client_only[0] == f"Client Version:    {CLIENT_VERSION}"
    assert re.fullmatch(r"Git commit:        \S+", client_only[1])
    assert len(client_only) == 2

    lines = ctl.ok("version").out.splitlines()
    assert lines[:2] == client_only
    assert lines[2:] == ["Cluster Version:   unknown", "Cluster Type:      unknown"]

    info = resource_yaml(
        "ClusterInformation",
        "default",
        {"calicoVersion": "v3.30.7", "clusterType": "k8s,bgp,kubeadm", "datastoreReady": True},
    )
    ctl.seed(info)
    assert ctl.ok("version").out.splitlines()[2:] == [
        "Cluster Version:   v3.30.7",
        "Cluster Type:      k8s,bgp,kubeadm",
    ]


def test_version_mismatch_blocks_commands_until_allowed(ctl: InProcess) -> None:
    ctl.seed(resource_yaml("ClusterInformation", "default", {"calicoVersion": "v9.9.9-12-gabc"}))
    refused = ctl.run("get", "ippools")
    assert (refused.rc, refused.out) == (1, "")
    # Calico's message is four lines; it is the one multi-line error calicoctl prints.
    assert refused.err == (
        f"Version mismatch.\nClient Version:   {CLIENT_VERSION}\n"
        "Cluster Version:  v9.9.9-12-gabc\nUse --allow-version-mismatch to override.\n"
    )
    assert ctl.ok("--allow-version-mismatch", "get", "ippools").out.startswith("NAME")
