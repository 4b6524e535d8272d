"""Policy in the lab: real packets obey Calico policy, and `calicoctl policy explain` agrees."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support.lab_driver import calicoctl, check_explain_agrees_with_packets, lab

pytestmark = pytest.mark.e2e

WEB_FROM_CLIENT = """apiVersion: projectcalico.org/v3
kind: NetworkPolicy
metadata: {name: web-from-client, namespace: default}
spec:
  selector: app == 'web'
  ingress:
  - action: Allow
    protocol: TCP
    source: {selector: app == 'client'}
    destination: {ports: [80]}
"""
QUIET_OTHERS = """apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: quiet-others}
spec:
  order: 10
  selector: app == 'other'
  types: [Egress]
  egress:
  - action: Deny
    destination: {nets: [203.0.113.0/24]}
  - action: Allow
"""


def test_policy_decides_real_packets_and_explain_agrees(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2")
    for pod, node, app in (
        ("client", "node1", "client"),
        ("web", "node2", "web"),
        ("other", "node1", "other"),
    ):
        lab(
            "pod",
            "add",
            pod,
            "--node",
            node,
            "--labels",
            f"app={app}",
            "--serve",
            "80,81",
            "--name",
            name,
        )
    before = check_explain_agrees_with_packets(name, 80)
    assert all(all(row.values()) for row in before.values())  # no policy: all open

    calicoctl(name, "apply", "-f", "-", stdin=WEB_FROM_CLIENT)
    calicoctl(name, "apply", "-f", "-", stdin=QUIET_OTHERS)
    at_80 = check_explain_agrees_with_packets(name, 80)
    assert at_80["default/client"]["default/web"] and not at_80["default/other"]["default/web"]
    assert not at_80["default/other"]["external"] and at_80["default/client"]["external"]
    at_81 = check_explain_agrees_with_packets(name, 81)
    assert not at_81["default/client"]["default/web"]  # only port 80 is allowed to web
    assert at_81["default/web"]["default/client"]  # client has no policy: its profile allows


CALICO_FEATURES = """apiVersion: projectcalico.org/v3
kind: Tier
metadata: {name: security}
spec: {order: 100}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: security.guard-c}
spec:
  tier: security
  selector: app == 'c'
  ingress:
  - action: Deny
    protocol: ICMP
    icmp: {type: 8}
  - action: Pass
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b-first}
spec:
  order: 1
  selector: app == 'b'
  ingress:
  - action: Log
  - action: Deny
    source: {selector: app == 'c'}
  - action: Allow
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: b-second}
spec:
  order: 2
  selector: app == 'b'
  ingress:
  - action: Allow
    source: {selector: app == 'c'}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkPolicy
metadata: {name: a-stays-inside}
spec:
  selector: app == 'a'
  types: [Egress]
  egress:
  - action: Deny
    destination: {notNets: [10.244.0.0/16]}
  - action: Allow
"""


def test_tiers_pass_order_deny_before_allow_icmp_and_not_nets(make_lab: Callable[..., str]) -> None:
    name = make_lab("--nodes", "2")
    for pod, node in (("a", "node1"), ("b", "node2"), ("c", "node1")):
        lab(
            "pod",
            "add",
            pod,
            "--node",
            node,
            "--labels",
            f"app={pod}",
            "--serve",
            "80",
            "--name",
            name,
        )
    calicoctl(name, "apply", "-f", "-", stdin=CALICO_FEATURES)
    ping = check_explain_agrees_with_packets(name, 0, "icmp")
    assert not ping["default/a"]["default/c"] and not ping["default/b"]["default/c"]  # tier deny
    assert not ping["default/c"]["default/b"]  # order 1 denies before order 2 allows
    assert ping["default/a"]["default/b"] and ping["default/c"]["default/a"]
    tcp = check_explain_agrees_with_packets(name, 80)
    assert tcp["default/a"]["default/c"]  # passed by the security tier, then the profile
    assert not tcp["default/c"]["default/b"] and tcp["default/a"]["default/b"]
    assert not tcp["default/a"]["external"] and tcp["default/c"]["external"]  # notNets
