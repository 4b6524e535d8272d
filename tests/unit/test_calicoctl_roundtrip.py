"""YAML/JSON round trips and every input shape calicoctl accepts.

`get -o yaml` (or json) → `apply -f` → `get` again must give the same bytes except for
resourceVersion: a user editing a dump touches only what they mean to. The fixture holds
one object of each kind with the awkward cases of both encoders: strings that look like
numbers, booleans, null or comments; HTML characters (Go's JSON escapes them); unicode;
a multi-line value; floats; selectors with both quote kinds; named ports and ranges.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.calicoctl_harness import (
    InProcess,
    multi,
    pool_yaml,
    resource_yaml,
    without_resource_versions,
)

EVERY_KIND = """\
apiVersion: projectcalico.org/v3
kind: IPPool
metadata:
  name: pool-v4
  labels: {"version": "4", "enabled": "true", "note": "yes"}
  annotations:
    html: "<a href='x'>&amp;</a>"
    unicode: "héllo ✓"
    multi: "line1\\nline2"
    empty: ""
    num: "0123"
    colon: "a: b"
    hash: "# c"
    "null": "null"
    tilde: "~"
spec:
  cidr: 10.244.0.0/16
  ipipMode: CrossSubnet
  natOutgoing: true
  blockSize: 24
  nodeSelector: "!has(edge) && zone in {'a', 'b'}"
  allowedUses: [Workload]
---
apiVersion: projectcalico.org/v3
kind: IPPool
metadata: {name: pool-v6}
spec: {cidr: "fd00:10:244::/64", vxlanMode: Always, disableBGPExport: true, assignmentMode: Manual}
---
apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100, defaultAction: Pass}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.block-icmp}
spec:
  tier: security
  order: 10.5
  selector: role == 'db'
  namespaceSelector: has(projectcalico.org/name)
  types: [Ingress, Egress]
  ingress:
  - action: Deny
    protocol: ICMP
    icmp: {type: 8, code: 0}
    source: {nets: [10.0.0.0/8], notNets: [10.1.0.0/16], selector: "app == \\"x\\""}
  - action: Allow
    protocol: TCP
    destination: {ports: [80, "8000:8080", http]}
  egress:
  - action: Log
  - action: Pass
    ipVersion: 6
    protocol: UDP
    destination: {notPorts: [53]}
---
apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: allow-web, namespace: prod}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    source: {namespaceSelector: global(), serviceAccounts: {names: [sa1]}}
    destination: {ports: [443]}
---
apiVersion: projectcalico.org/v3
kind: Node
metadata: {name: node-1, labels: {"kubernetes.io/hostname": node-1}}
spec:
  bgp:
    ipv4Address: 192.168.1.10/24
    ipv6Address: "fd00::10/64"
    asNumber: 65001
    routeReflectorClusterID: 224.0.0.1
  addresses: [{address: 192.168.1.10, type: InternalIP}]
  orchRefs: [{nodeName: node-1, orchestrator: k8s}]
---
apiVersion: projectcalico.org/v3
kind: BGPPeer
metadata: {name: rr}
spec: {peerIP: "192.168.1.1:179", asNumber: 4200000000, nodeSelector: has(rr)}
---
apiVersion: projectcalico.org/v3
kind: BGPConfiguration
metadata: {name: default}
spec:
  logSeverityScreen: Info
  nodeToNodeMeshEnabled: false
  asNumber: 63400
  serviceClusterIPs: [{cidr: 10.96.0.0/12}]
  communities: [{name: c1, value: "65001:100"}]
  prefixAdvertisements: [{cidr: 10.244.0.0/16, communities: [c1, "65001:200"]}]
---
apiVersion: projectcalico.org/v3
kind: BGPFilter
metadata: {name: f1}
spec: {exportV4: [{action: Reject, matchOperator: In, cidr: 10.0.0.0/8}]}
---
apiVersion: projectcalico.org/v3
kind: HostEndpoint
metadata: {name: node-1-eth0, labels: {role: host}}
spec:
  node: node-1
  interfaceName: eth0
  expectedIPs: [192.168.1.10]
  profiles: [projectcalico-default-allow]
  ports: [{name: ssh, protocol: TCP, port: 22}]
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: blocked, labels: {list: blocked}}
spec: {nets: [198.51.100.0/24, "2001:db8::/32"]}
---
apiVersion: projectcalico.org/v3
kind: NetworkSet
metadata: {name: partners, namespace: prod}
spec: {nets: [203.0.113.0/24]}
---
apiVersion: projectcalico.org/v3
kind: Profile
metadata: {name: frontend}
spec: {labelsToApply: {tier: frontend}, ingress: [{action: Allow}], egress: [{action: Allow}]}
---
apiVersion: projectcalico.org/v3
kind: IPReservation
metadata: {name: reserved}
spec: {reservedCIDRs: [10.244.0.0/28, 10.244.1.1]}
"""

KINDS = (
    "ippools",
    "tiers",
    "globalnetworkpolicies",
    "networkpolicies",
    "nodes",
    "bgppeers",
    "bgpconfigurations",
    "bgpfilters",
    "hostendpoints",
    "globalnetworksets",
    "networksets",
    "profiles",
    "ipreservations",
)


@pytest.fixture
def full(ctl: InProcess) -> InProcess:
    assert ctl.ok("apply", "-f", "-", stdin=EVERY_KIND).out == (
        "Successfully applied 14 resource(s)\n"
    )
    return ctl


def _get(ctl: InProcess, kind: str, fmt: str, *names: str) -> str:
    namespaces = ("-A",) if kind in ("networkpolicies", "networksets") and not names else ()
    ns = ("-n", "prod") if kind in ("networkpolicies", "networksets") and names else ()
    return ctl.ok("get", kind, *names, *namespaces, *ns, "-o", fmt).out


def _versions(dump: str) -> list[str]:
    loaded = json.loads(dump)
    return [item["metadata"]["resourceVersion"] for item in loaded["items"]]


@pytest.mark.parametrize("fmt", ["yaml", "json"])
@pytest.mark.parametrize("kind", KINDS)
def test_list_dump_applies_back_unchanged(full: InProcess, kind: str, fmt: str) -> None:
    first = _get(full, kind, fmt)
    assert "items:" in first or '"items"' in first
    before = _versions(_get(full, kind, "json"))
    path = full.write(f"{kind}.{fmt}", first)
    full.ok("apply", "-f", path)
    second = _get(full, kind, fmt)
    after = _versions(_get(full, kind, "json"))
    # The apply really wrote every item: only then is "unchanged" worth anything.
    assert len(after) == len(before) >= 1
    assert all(int(a) > int(b) for a, b in zip(after, before, strict=True))
    assert second != first
    assert without_resource_versions(second) == without_resource_versions(first)


@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_single_dump_applies_back_unchanged(full: InProcess, fmt: str) -> None:
    first = _get(full, "networkpolicies", fmt, "allow-web")
    assert "NetworkPolicyList" not in first  # one named object prints the object itself
    path = full.write(f"np.{fmt}", first)
    assert full.ok("apply", "-f", path).out == (
        "Successfully applied 1 'NetworkPolicy' resource(s)\n"
    )
    second = _get(full, "networkpolicies", fmt, "allow-web")
    assert second != first
    assert without_resource_versions(second) == without_resource_versions(first)


def test_encoder_corner_cases_survive(full: InProcess) -> None:
    yaml_out = _get(full, "ippools", "yaml", "pool-v4")
    # Strings that would read back as another type are double-quoted, as go-yaml does.
    for line in ('num: "0123"', '"null": "null"', 'tilde: "~"', 'enabled: "true"', 'note: "yes"'):
        assert f"    {line}\n" in yaml_out or f"  {line}\n" in yaml_out, line
    json_out = _get(full, "ippools", "json", "pool-v4")
    # Go's encoding/json escapes HTML characters; unicode stays as it is.
    assert '"html": "\\u003ca href=\'x\'\\u003e\\u0026amp;\\u003c/a\\u003e"' in json_out
    assert '"unicode": "héllo ✓"' in json_out
    annotations = json.loads(json_out)["metadata"]["annotations"]
    assert annotations["multi"] == "line1\nline2"
    assert annotations["html"] == "<a href='x'>&amp;</a>"
    order = json.loads(_get(full, "gnp", "json", "security.block-icmp"))["spec"]["order"]
    assert order == 10.5


def test_dump_applies_to_another_store(full: InProcess, tmp_path: Path) -> None:
    """The migration use: a dump carries resourceVersions and uids of its origin store.

    calicoctl's apply creates first, whatever resourceVersion the input has; the new
    store assigns its own uid and creation time.
    """
    dump = full.ok("get", "ippools", "-o", "yaml").out
    original = json.loads(full.ok("get", "ippools", "-o", "json").out)["items"]
    full.setenv("SQLITE_PATH", str(tmp_path / "other.db"))
    # Make the other store's revisions differ from the origin's.
    full.ok("apply", "-f", "-", stdin=pool_yaml("filler", "10.99.0.0/16"))
    full.ok("delete", "ippool", "filler")
    assert full.ok("apply", "-f", "-", stdin=dump).out == (
        "Successfully applied 2 'IPPool' resource(s)\n"
    )
    copied = json.loads(full.ok("get", "ippools", "-o", "json").out)["items"]
    assert [c["spec"] for c in copied] == [o["spec"] for o in original]
    assert [c["metadata"].get("labels") for c in copied] == [
        o["metadata"].get("labels") for o in original
    ]
    for c, o in zip(copied, original, strict=True):
        assert c["metadata"]["uid"] != o["metadata"]["uid"]


def test_create_ignores_uid_and_timestamp_from_the_file(ctl: InProcess) -> None:
    doc = resource_yaml("IPPool", "a", {"cidr": "10.1.0.0/16"}).replace(
        'metadata: {"name": "a"}',
        'metadata: {"name": "a", "uid": "not-a-uid", "creationTimestamp": "1999-01-01T00:00:00Z"}',
    )
    ctl.ok("create", "-f", "-", stdin=doc)
    meta = json.loads(ctl.ok("get", "ippool", "a", "-o", "json").out)["metadata"]
    assert meta["uid"] != "not-a-uid"
    assert meta["creationTimestamp"] != "1999-01-01T00:00:00Z"


def test_kind_list_input(ctl: InProcess) -> None:
    listed = (
        "apiVersion: projectcalico.org/v3\nkind: List\nitems:\n"
        "- apiVersion: projectcalico.org/v3\n  kind: IPPool\n  metadata: {name: a}\n"
        "  spec: {cidr: 10.1.0.0/16}\n"
        "- apiVersion: projectcalico.org/v3\n  kind: GlobalNetworkSet\n  metadata: {name: s}\n"
        "  spec: {nets: [10.9.0.0/16]}\n"
    )
    assert ctl.ok("create", "-f", "-", stdin=listed).out == "Successfully created 2 resource(s)\n"
    assert ctl.ok("get", "ippools", "-o", "name").out == "ippool.projectcalico.org/a\n"
    assert ctl.ok("get", "gnetsets", "-o", "name").out == "globalnetworkset.projectcalico.org/s\n"


def test_ippoollist_json_file_input(ctl: InProcess) -> None:
    pool_list = {
        "kind": "IPPoolList",
        "apiVersion": "projectcalico.org/v3",
        "metadata": {},
        "items": [
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPPool",
                "metadata": {"name": name},
                "spec": {"cidr": cidr},
            }
            for name, cidr in (("a", "10.1.0.0/16"), ("b", "10.2.0.0/16"))
        ],
    }
    path = ctl.write("pools.json", json.dumps(pool_list, indent=2))
    assert ctl.ok("apply", "-f", path).out == "Successfully applied 2 'IPPool' resource(s)\n"
    assert [row.split()[0] for row in ctl.ok("get", "ippools").lines()[1:-1]] == ["a", "b"]


def test_json_single_object_and_multi_document_yaml(ctl: InProcess) -> None:
    single = ctl.write(
        "one.json",
        json.dumps(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPPool",
                "metadata": {"name": "j"},
                "spec": {"cidr": "10.7.0.0/16"},
            }
        ),
    )
    assert ctl.ok("create", "-f", single).out == "Successfully created 1 'IPPool' resource(s)\n"
    # Leading separator, comments and a trailing empty document are all fine.
    text = "---\n# first pool\n" + multi(
        pool_yaml("m1", "10.11.0.0/16"), pool_yaml("m2", "10.12.0.0/16")
    )
    text += "---\n"
    assert ctl.ok("create", "-f", "-", stdin=text).out == (
        "Successfully created 2 'IPPool' resource(s)\n"
    )
    assert ctl.ok("get", "ippools", "-o", "name").out == (
        "ippool.projectcalico.org/j\nippool.projectcalico.org/m1\nippool.projectcalico.org/m2\n"
    )


def test_directory_input_and_recursion(ctl: InProcess) -> None:
    ctl.write("conf/a.yaml", pool_yaml("a", "10.1.0.0/16"))
    ctl.write("conf/b.yml", pool_yaml("b", "10.2.0.0/16"))
    ctl.write(
        "conf/c.json",
        json.dumps(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPPool",
                "metadata": {"name": "c"},
                "spec": {"cidr": "10.3.0.0/16"},
            }
        ),
    )
    ctl.write("conf/notes.txt", "not a resource: ignored by extension\n")
    ctl.write("conf/sub/d.yaml", pool_yaml("d", "10.4.0.0/16"))
    conf = str(ctl.dir / "conf")
    assert ctl.ok("apply", "-f", conf).out == "Successfully applied 3 'IPPool' resource(s)\n"
    assert ctl.ok("apply", "-f", conf, "-R").out == "Successfully applied 4 'IPPool' resource(s)\n"
    names = [row.split()[0] for row in ctl.ok("get", "ippools").lines()[1:-1]]
    assert names == ["a", "b", "c", "d"]
    # get -f and delete -f take the same directory.
    assert len(ctl.ok("get", "-f", conf, "-R").lines()) == 6
    assert ctl.ok("delete", "-f", conf).out == "Successfully deleted 3 'IPPool' resource(s)\n"
    assert [row.split()[0] for row in ctl.ok("get", "ippools").lines()[1:-1]] == ["d"]


def test_stdin_input(ctl: InProcess) -> None:
    doc = pool_yaml("from-stdin", "10.5.0.0/16")
    assert ctl.ok("create", "-f", "-", stdin=doc).out == (
        "Successfully created 1 'IPPool' resource(s)\n"
    )
    assert ctl.ok("get", "-f", "-", stdin=doc).lines()[1].split()[:2] == [
        "from-stdin",
        "10.5.0.0/16",
    ]
    assert ctl.ok("delete", "-f", "-", stdin=doc).out == (
        "Successfully deleted 1 'IPPool' resource(s)\n"
    )


def test_multiline_string_uses_literal_block_style(full: InProcess) -> None:
    yaml_out = _get(full, "ippools", "yaml", "pool-v4")
    assert "    multi: |-\n      line1\n      line2\n" in yaml_out
