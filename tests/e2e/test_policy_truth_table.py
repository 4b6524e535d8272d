"""Kubernetes NetworkPolicy truth tables, in the style of the upstream network-policy
conformance tests: pods a, b and c in namespaces x, y and z (labelled `ns: <name>`, pods
`pod: <name>`) spread over two nodes, each serving TCP and UDP on 80 and 81 under the
named ports upstream uses. Each case applies its NetworkPolicies with `calico-lab apply`,
waits for every Felix, probes every pod → every pod (and → the external host on TCP 80)
with real packets on TCP 80, TCP 81, UDP 80 and UDP 81, and compares every cell with what
an evaluator written here from the Kubernetes API's definitions expects.

The evaluator below reads the same YAML the lab is given and knows nothing of pycalico's
policy code: it is the independent half of the comparison.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml

from pycalico.lab import probe
from pycalico.lab.settle import settle
from pycalico.lab.state import ROOT, LabState
from tests.support.lab_driver import LAB, lab

pytestmark = pytest.mark.e2e

NAMESPACES = ("x", "y", "z")
PODS = ("a", "b", "c")
CHECKS = (("tcp", 80), ("tcp", 81), ("udp", 80), ("udp", 81))
EXTERNAL = "external"
# The external host serves TCP 80 only: its other cells would be refused, not blocked.
EXTERNAL_CHECKS = (("tcp", 80),)
# UDP probes of each round leave from fresh source ports (see probe.matrices); every
# source sends at most len(CHECKS) * 9 of them per round.
UDP_PORTS = itertools.count(20000, 64)


# --- the lab -----------------------------------------------------------------------------


def namespace_doc(name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}


def pod_doc(key: str, labels: dict[str, str]) -> dict[str, Any]:
    namespace, name = key.split("/")
    index = NAMESPACES.index(namespace) * len(PODS) + PODS.index(name)
    ports = [
        {"containerPort": port, "protocol": proto, "name": f"serve-{port}-{proto.lower()}"}
        for proto in ("TCP", "UDP")
        for port in (80, 81)
    ]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            # Alternating nodes: same-node and cross-node pairs within and across namespaces.
            "nodeName": f"node{index % 2 + 1}",
            "containers": [{"name": "cont-80-81", "image": "agnhost", "ports": ports}],
        },
    }


def doc_key(doc: dict[str, Any]) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace", ""), meta["name"]


BASELINE = [namespace_doc(ns, {"ns": ns}) for ns in NAMESPACES] + [
    pod_doc(f"{ns}/{p}", {"pod": p}) for ns in NAMESPACES for p in PODS
]
BASELINE_BY_KEY = {doc_key(d): d for d in BASELINE}


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


@dataclass
class World:
    """The module's lab and what the current case changed in it."""

    name: str
    applied: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    @property
    def state(self) -> LabState:
        return LabState.load(self.name)

    def ips(self) -> dict[str, str]:
        return {key: pod.ip for key, pod in self.state.pods.items()}

    def transition(self, docs: list[dict[str, Any]], tolerant: bool = False) -> None:
        """Make `docs` (policies, relabelled namespaces and pods) what is in force: delete
        the policies of the previous step that are gone, put back the labels it changed,
        apply the rest, and wait until every Felix has it all."""
        wanted = {doc_key(d): d for d in docs}
        gone = [(k, d) for k, d in self.applied.items() if k not in wanted]
        # Deleting needs only the name: a document the lab refused still names what to delete.
        stale = [
            {
                "apiVersion": "networking.k8s.io/v1",
                "kind": "NetworkPolicy",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"podSelector": {}},
            }
            for (kind, namespace, name), _ in gone
            if kind == "NetworkPolicy"
        ]
        restore = [BASELINE_BY_KEY[k] for k, _ in gone if k[0] != "NetworkPolicy"]
        if stale:
            out = subprocess.run(
                [LAB, "delete", "-f", "-", "--name", self.name],
                input=dump(stale),
                capture_output=True,
                text=True,
                check=False,
            )
            # Cleaning up after a failed apply: a policy that never got in is not found.
            problems = [
                line
                for line in out.stderr.splitlines()
                if not (tolerant and line.startswith("Error from server (NotFound)"))
            ]
            assert out.returncode == 0 or not problems, f"delete failed: {out.stderr}"
            for d in stale:
                self.applied.pop(doc_key(d))
        self.applied.update(wanted)  # before applying: a failed apply is still cleaned up
        if restore or docs:
            lab("apply", "-f", "-", "--name", self.name, stdin=dump(restore + docs))
        for d in restore:
            self.applied.pop(doc_key(d))
        settle(self.state)


def leftover_namespaces(name: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True)
    return [n for n in out.stdout.split() if n.startswith(f"{name}-")]


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    name = f"e{uuid.uuid4().hex[:5]}"
    try:
        lab("up", "--name", name, "--nodes", "2")
        lab("apply", "-f", "-", "--name", name, stdin=dump(BASELINE))
        state = LabState.load(name)
        assert sorted(state.pods) == [f"{ns}/{p}" for ns in NAMESPACES for p in PODS]
        assert {pod.node for pod in state.pods.values()} == {"node1", "node2"}
        # Every pod answers all four checks: an empty probe cell means blocked, not refused.
        assert {pod.serve for pod in state.pods.values()} == {"80,81,80/udp,81/udp"}
        settle(state)
        yield World(name)
    finally:
        lab("down", "--name", name, check=False)
        assert leftover_namespaces(name) == [], "down left namespaces behind"
        assert not os.path.exists(os.path.join(ROOT, name))


@pytest.fixture
def fresh(world: World) -> Iterator[World]:
    """The lab as the baseline left it; whatever the case applies is undone even when the
    case fails."""
    if world.applied:  # a previous case's cleanup failed: once more, or stop here
        world.transition([], tolerant=True)
    try:
        yield world
    finally:
        world.transition([], tolerant=True)


# --- the independent expectation ---------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    """One end of a probe: a pod (namespace, labels, named ports) or the external host."""

    key: str
    ip: str
    namespace: str | None = None  # None: not a pod
    labels: dict[str, str] = field(default_factory=dict)
    namespace_labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, tuple[str, int]] = field(default_factory=dict)  # name -> (PROTO, port)


def endpoints(docs: list[dict[str, Any]], ips: dict[str, str]) -> dict[str, Endpoint]:
    """The pods as the baseline and the step's relabelled Namespace and Pod documents say,
    plus the external host."""
    objects = dict(BASELINE_BY_KEY)
    objects.update({doc_key(d): d for d in docs if d["kind"] in ("Namespace", "Pod")})
    namespace_labels = {}
    for (kind, _, name), doc in objects.items():
        if kind == "Namespace":
            labels = dict(doc["metadata"].get("labels") or {})
            labels["kubernetes.io/metadata.name"] = name  # set by the API server
            namespace_labels[name] = labels
    found = {EXTERNAL: Endpoint(EXTERNAL, probe.EXTERNAL_IP)}
    for (kind, namespace, name), doc in objects.items():
        if kind != "Pod":
            continue
        named = {
            p["name"]: (p.get("protocol", "TCP"), p["containerPort"])
            for c in doc["spec"]["containers"]
            for p in c.get("ports") or []
            if p.get("name")
        }
        key = f"{namespace}/{name}"
        found[key] = Endpoint(
            key,
            ips[key],
            namespace,
            dict(doc["metadata"].get("labels") or {}),
            namespace_labels[namespace],
            named,
        )
    return found


def selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels and matchExpressions all hold ({} is everything)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, op, values = expression["key"], expression["operator"], expression.get("values")
        if op == "In":
            holds = key in labels and labels[key] in values
        elif op == "NotIn":
            holds = key not in labels or labels[key] not in values
        elif op == "Exists":
            holds = key in labels
        elif op == "DoesNotExist":
            holds = key not in labels
        else:
            raise ValueError(f"unknown operator {op}")
        if not holds:
            return False
    return True


def peer_matches(peer: dict[str, Any], policy_namespace: str, other: Endpoint) -> bool:
    """A NetworkPolicyPeer: an ipBlock (cidr minus except), or pods chosen by podSelector
    (default: all) in the namespaces chosen by namespaceSelector (default: the policy's)."""
    if "ipBlock" in peer:
        block, ip = peer["ipBlock"], ipaddress.ip_address(other.ip)
        excepted = any(ip in ipaddress.ip_network(e) for e in block.get("except") or [])
        return ip in ipaddress.ip_network(block["cidr"]) and not excepted
    if other.namespace is None:
        return False  # selectors choose pods only
    if "namespaceSelector" in peer:
        in_namespace = selector_matches(peer["namespaceSelector"], other.namespace_labels)
    else:
        in_namespace = other.namespace == policy_namespace
    if not in_namespace:
        return False
    return "podSelector" not in peer or selector_matches(peer["podSelector"], other.labels)


def port_matches(ports: list[dict[str, Any]], proto: str, port: int, server: Endpoint) -> bool:
    """NetworkPolicyPorts (none: every port): protocol (default TCP), then a number, a
    number..endPort, a name of one of the server pod's container ports of that protocol,
    or no port (all of the protocol)."""
    if not ports:
        return True
    for entry in ports:
        protocol = entry.get("protocol", "TCP")
        if protocol.lower() != proto:
            continue
        value = entry.get("port")
        if value is None:
            return True
        if isinstance(value, str):
            if server.ports.get(value) == (protocol, port):
                return True
        elif value <= port <= entry.get("endPort", value):
            return True
    return False


def policy_types(spec: dict[str, Any]) -> list[str]:
    """As the API server defaults them: Ingress, plus Egress if there are egress rules."""
    if spec.get("policyTypes"):
        return list(spec["policyTypes"])
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def direction_allows(
    policies: list[dict[str, Any]],
    subject: Endpoint,
    direction: str,
    other: Endpoint,
    proto: str,
    port: int,
    server: Endpoint,
) -> bool:
    """Whether `subject`'s policies let the traffic through in one direction: not isolated
    (no policy of its namespace selects it for the direction), or some rule of one of those
    that do allows it (the union)."""
    if subject.namespace is None:
        return True  # the external host has no policy
    rules_key, peers_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    isolated = False
    for policy in policies:
        spec = policy["spec"]
        if policy["metadata"]["namespace"] != subject.namespace:
            continue
        if not selector_matches(spec["podSelector"], subject.labels):
            continue
        if direction not in policy_types(spec):
            continue
        isolated = True
        for rule in spec.get(rules_key) or []:
            peers = rule.get(peers_key) or []  # none: every peer
            if peers and not any(
                peer_matches(p, policy["metadata"]["namespace"], other) for p in peers
            ):
                continue
            if port_matches(rule.get("ports") or [], proto, port, server):
                return True
    return not isolated


def expected(
    policies: list[dict[str, Any]], src: Endpoint, dst: Endpoint, proto: str, port: int
) -> bool:
    """The source's egress and the destination's ingress must both allow it."""
    return direction_allows(policies, src, "Egress", dst, proto, port, dst) and direction_allows(
        policies, dst, "Ingress", src, proto, port, dst
    )


# --- the cases ---------------------------------------------------------------------------


def knp(namespace: str, name: str, spec: str) -> str:
    """A networking.k8s.io/v1 NetworkPolicy with the given spec (YAML)."""
    body = textwrap.indent(textwrap.dedent(spec).strip(), "  ")
    return (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\n"
        f"metadata:\n  name: {name}\n  namespace: {namespace}\nspec:\n{body}\n"
    )


def relabel_pod(key: str, labels: dict[str, str]) -> str:
    return dump([pod_doc(key, labels)])


def relabel_namespace(name: str, labels: dict[str, str]) -> str:
    return dump([namespace_doc(name, labels)])


@dataclass
class Case:
    id: str
    steps: list[list[str]]  # each: the documents in force (YAML; `@x/b` = x/b's IP)


def case(id: str, *docs: str) -> Case:
    return Case(id, [list(docs)])


def steps(id: str, *documents: list[str]) -> Case:
    return Case(id, list(documents))


DENY_ALL_INGRESS_X = knp("x", "deny-all", "podSelector: {}\npolicyTypes: [Ingress]")
ALLOW_ALL_INGRESS_X = knp("x", "allow-all", "podSelector: {}\ningress:\n- {}")
DENY_ALL_EGRESS_X = knp("x", "deny-all-egress", "podSelector: {}\npolicyTypes: [Egress]")

CASES = [
    case("no-policy-everything-allowed"),
    case("default-deny-ingress", DENY_ALL_INGRESS_X),
    case("default-deny-ingress-policy-types-defaulted", knp("x", "deny", "podSelector: {}")),
    case("empty-ingress-list-denies", knp("x", "deny", "podSelector: {}\ningress: []")),
    case("default-deny-egress", DENY_ALL_EGRESS_X),
    case(
        "default-deny-all",
        knp("x", "deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"),
    ),
    case("allow-all-ingress", ALLOW_ALL_INGRESS_X),
    case("deny-all-and-allow-all-ingress-union", DENY_ALL_INGRESS_X, ALLOW_ALL_INGRESS_X),
    case(
        "deny-all-and-allow-all-egress-union",
        DENY_ALL_EGRESS_X,
        knp("x", "allow-all-egress", "podSelector: {}\npolicyTypes: [Egress]\negress:\n- {}"),
    ),
    case(
        "empty-from-and-ports-lists-allow-everything",
        knp("x", "allow", "podSelector: {}\ningress:\n- from: []\n  ports: []"),
    ),
    case(
        "allow-from-same-namespace",
        knp("x", "same-ns", "podSelector: {}\ningress:\n- from:\n  - podSelector: {}"),
    ),
    case(
        "allow-ingress-for-a-target-from-a-pod",
        knp(
            "x",
            "a-from-b",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "allow-from-namespace-by-label",
        knp(
            "x",
            "from-y",
            """
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Ingress]
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
            """,
        ),
    ),
    case(
        "allow-from-namespace-by-default-name-label",
        knp(
            "x",
            "from-z",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels:
                    kubernetes.io/metadata.name: z
            """,
        ),
    ),
    case(
        "allow-from-all-namespaces",
        knp(
            "x",
            "from-all-ns",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - namespaceSelector: {}
            """,
        ),
    ),
    case(
        "allow-from-pod-label-in-any-namespace",
        knp(
            "x",
            "from-any-b",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector: {}
                podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "pod-and-namespace-selector-together",
        knp(
            "x",
            "from-y-b",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
                podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "pod-or-namespace-selector-two-peers",
        knp(
            "x",
            "from-y-or-b",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
              - podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "several-pod-and-namespace-peers",
        knp(
            "x",
            "peers",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
                podSelector:
                  matchExpressions:
                  - {key: pod, operator: In, values: [a, c]}
              - namespaceSelector:
                  matchLabels: {ns: z}
                podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "namespace-match-expressions-in",
        knp(
            "x",
            "ns-in",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: In, values: [y, z]}
            """,
        ),
    ),
    case(
        "namespace-match-expressions-not-in",
        knp(
            "x",
            "ns-not-in",
            """
            podSelector:
              matchLabels: {pod: c}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: NotIn, values: [y]}
            """,
        ),
    ),
    case(
        "namespace-match-expressions-exists",
        knp(
            "y",
            "ns-exists",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: Exists}
            """,
        ),
    ),
    case(
        "namespace-match-expressions-does-not-exist",
        knp(
            "y",
            "ns-does-not-exist",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: ns, operator: DoesNotExist}
            """,
        ),
    ),
    case(
        "namespace-default-label-match-expressions",
        knp(
            "z",
            "not-from-x",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchExpressions:
                  - {key: kubernetes.io/metadata.name, operator: NotIn, values: [x]}
            """,
        ),
    ),
    case(
        "pod-match-expressions-in",
        knp(
            "x",
            "pod-in",
            """
            podSelector: {}
            ingress:
            - from:
              - podSelector:
                  matchExpressions:
                  - {key: pod, operator: In, values: [a, b]}
            """,
        ),
    ),
    case(
        "pod-match-expressions-not-in-any-namespace",
        knp(
            "x",
            "pod-not-in",
            """
            podSelector:
              matchLabels: {pod: b}
            ingress:
            - from:
              - namespaceSelector: {}
                podSelector:
                  matchExpressions:
                  - {key: pod, operator: NotIn, values: [a]}
            """,
        ),
    ),
    case(
        "match-labels-and-expressions-together",
        knp(
            "x",
            "labels-and-expressions",
            """
            podSelector:
              matchExpressions:
              - {key: pod, operator: NotIn, values: [a]}
            ingress:
            - from:
              - namespaceSelector: {}
                podSelector:
                  matchLabels: {pod: b}
                  matchExpressions:
                  - {key: pod, operator: In, values: [a, b]}
                  - {key: tier, operator: DoesNotExist}
            """,
        ),
    ),
    case(
        "target-selector-matching-nothing-has-no-effect",
        knp(
            "x",
            "selects-nothing",
            """
            podSelector:
              matchExpressions:
              - {key: pod, operator: DoesNotExist}
            policyTypes: [Ingress, Egress]
            """,
        ),
    ),
    case(
        "ports-tcp-80-only",
        knp("x", "port-80", "podSelector: {}\ningress:\n- ports:\n  - port: 80"),
    ),
    case(
        "port-81-by-name",
        knp(
            "x",
            "named-81",
            """
            podSelector: {}
            ingress:
            - ports:
              - port: serve-81-tcp
            """,
        ),
    ),
    case(
        "named-port-from-namespace",
        knp(
            "x",
            "named-81-from-y",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
              ports:
              - protocol: TCP
                port: serve-81-tcp
            """,
        ),
    ),
    case(
        "named-port-on-udp",
        knp(
            "x",
            "named-udp-80",
            """
            podSelector: {}
            ingress:
            - ports:
              - protocol: UDP
                port: serve-80-udp
            """,
        ),
    ),
    case(
        "named-port-of-another-protocol-matches-nothing",
        knp(
            "x",
            "named-mismatch",
            """
            podSelector: {}
            ingress:
            - ports:
              - protocol: TCP
                port: serve-80-udp
            """,
        ),
    ),
    case(
        "any-port-of-one-protocol",
        knp("x", "udp-only", "podSelector: {}\ningress:\n- ports:\n  - protocol: UDP"),
    ),
    case(
        "udp-81-does-not-allow-tcp-81",
        knp(
            "y",
            "udp-81",
            """
            podSelector: {}
            ingress:
            - ports:
              - protocol: UDP
                port: 81
            """,
        ),
    ),
    case(
        "sctp-is-not-tcp",
        knp(
            "x",
            "sctp-80",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - ports:
              - protocol: SCTP
                port: 80
            """,
        ),
    ),
    case(
        "end-port-range-80-81",
        knp(
            "x",
            "range",
            """
            podSelector: {}
            ingress:
            - ports:
              - port: 80
                endPort: 81
            """,
        ),
    ),
    case(
        "end-port-range-on-udp-from-81",
        knp(
            "x",
            "udp-range",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector: {}
              ports:
              - protocol: UDP
                port: 81
                endPort: 90
            """,
        ),
    ),
    case(
        "end-port-range-ending-at-80",
        knp(
            "x",
            "range-to-80",
            """
            podSelector: {}
            ingress:
            - ports:
              - port: 75
                endPort: 80
            """,
        ),
    ),
    case(
        "several-ports",
        knp(
            "x",
            "ports",
            """
            podSelector: {}
            ingress:
            - ports:
              - port: 81
              - protocol: UDP
                port: 80
            """,
        ),
    ),
    case(
        "rules-with-different-peers-and-ports",
        knp(
            "x",
            "two-rules",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
              ports:
              - port: 80
            - from:
              - namespaceSelector:
                  matchLabels: {ns: z}
              ports:
              - protocol: UDP
                port: 81
            """,
        ),
    ),
    case(
        "ip-block-one-pod",
        knp(
            "x",
            "from-y-b-ip",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - ipBlock:
                  cidr: @y/b/32
            """,
        ),
    ),
    case(
        "ip-block-with-except",
        knp(
            "x",
            "pool-except",
            """
            podSelector: {}
            ingress:
            - from:
              - ipBlock:
                  cidr: @pool
                  except: [@y/b/32, @z/c/32]
            """,
        ),
    ),
    case(
        "ip-in-except-allowed-by-another-block",
        knp(
            "x",
            "overlap",
            """
            podSelector: {}
            ingress:
            - from:
              - ipBlock:
                  cidr: @pool
                  except: [@y/b/32]
              - ipBlock:
                  cidr: @y/b/32
            """,
        ),
    ),
    case(
        "egress-to-cidr",
        knp(
            "x",
            "to-y-a-ip",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to:
              - ipBlock:
                  cidr: @y/a/32
            """,
        ),
    ),
    case(
        "egress-everywhere-except-the-pod-pool",
        knp(
            "x",
            "internet-only",
            """
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
            - to:
              - ipBlock:
                  cidr: 0.0.0.0/0
                  except: [@pool]
            """,
        ),
    ),
    case(
        "egress-to-a-namespace",
        knp(
            "x",
            "to-y",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector:
                  matchLabels: {ns: y}
            """,
        ),
    ),
    case(
        "egress-to-pod-by-label",
        knp(
            "x",
            "to-b",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to:
              - podSelector:
                  matchLabels: {pod: b}
            """,
        ),
    ),
    case(
        "egress-to-pod-label-in-any-namespace",
        knp(
            "x",
            "a-to-any-c",
            """
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector: {}
                podSelector:
                  matchLabels: {pod: c}
            """,
        ),
    ),
    case(
        "egress-on-one-named-port",
        knp(
            "x",
            "egress-named-81",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - ports:
              - port: serve-81-tcp
            """,
        ),
    ),
    case(
        "egress-any-udp",
        knp(
            "z",
            "egress-udp",
            """
            podSelector:
              matchLabels: {pod: b}
            policyTypes: [Egress]
            egress:
            - ports:
              - protocol: UDP
            """,
        ),
    ),
    case(
        "egress-end-port-range-on-udp",
        knp(
            "y",
            "egress-udp-range",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - ports:
              - protocol: UDP
                port: 81
                endPort: 100
            """,
        ),
    ),
    case(
        "egress-named-udp-port-to-a-namespace",
        knp(
            "z",
            "egress-named-udp",
            """
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector:
                  matchLabels: {ns: x}
              ports:
              - protocol: UDP
                port: serve-80-udp
            """,
        ),
    ),
    case(
        "egress-denied-ingress-allowed",
        knp(
            "x",
            "a-no-egress",
            "podSelector:\n  matchLabels: {pod: a}\npolicyTypes: [Egress]",
        ),
        ALLOW_ALL_INGRESS_X,
    ),
    case(
        "client-egress-deny-beats-server-ingress-allow",
        DENY_ALL_EGRESS_X,
        knp(
            "y",
            "from-x",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: x}
            """,
        ),
    ),
    case(
        "ingress-and-egress-together",
        knp(
            "x",
            "both",
            """
            podSelector:
              matchLabels: {pod: a}
            policyTypes: [Ingress, Egress]
            ingress:
            - from:
              - podSelector:
                  matchLabels: {pod: b}
            egress:
            - to:
              - namespaceSelector:
                  matchLabels: {ns: y}
              ports:
              - port: 80
              - protocol: UDP
            """,
        ),
    ),
    case(
        "egress-policy-type-only-ignores-ingress-rules",
        knp(
            "x",
            "egress-type",
            """
            podSelector: {}
            policyTypes: [Egress]
            ingress:
            - from:
              - podSelector:
                  matchLabels: {pod: b}
            egress:
            - to:
              - namespaceSelector: {}
            """,
        ),
    ),
    case(
        "policy-types-defaulted-with-egress-rules",
        knp(
            "x",
            "defaulted",
            """
            podSelector:
              matchLabels: {pod: b}
            egress:
            - to:
              - namespaceSelector:
                  matchLabels: {ns: z}
            """,
        ),
    ),
    case(
        "stacked-policies-with-overlapping-selectors",
        knp(
            "x",
            "all-from-b",
            "podSelector: {}\ningress:\n- from:\n  - podSelector:\n      matchLabels: {pod: b}",
        ),
        knp(
            "x",
            "a-from-y",
            """
            podSelector:
              matchLabels: {pod: a}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: y}
            """,
        ),
    ),
    case(
        "ingress-and-egress-policies-in-different-namespaces",
        knp(
            "x",
            "x-to-z",
            """
            podSelector: {}
            policyTypes: [Egress]
            egress:
            - to:
              - namespaceSelector:
                  matchLabels: {ns: z}
            """,
        ),
        knp(
            "z",
            "z-from-x-a",
            """
            podSelector: {}
            ingress:
            - from:
              - namespaceSelector:
                  matchLabels: {ns: x}
                podSelector:
                  matchLabels: {pod: a}
            """,
        ),
    ),
    case(
        "policy-in-another-namespace-has-no-effect",
        knp("default", "deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]"),
    ),
    case(
        "policy-selects-only-pods-of-its-namespace",
        knp("y", "a-deny", "podSelector:\n  matchLabels: {pod: a}\npolicyTypes: [Ingress]"),
    ),
    case(
        "deny-all-ingress-everywhere",
        *(knp(ns, "deny-all", "podSelector: {}\npolicyTypes: [Ingress]") for ns in NAMESPACES),
    ),
    steps(
        "update-policy-in-place",
        [knp("x", "moving", "podSelector: {}\ningress:\n- from:\n  - podSelector: {}")],
        [
            knp(
                "x",
                "moving",
                """
                podSelector: {}
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels: {ns: y}
                """,
            )
        ],
        [
            knp(
                "x",
                "moving",
                """
                podSelector:
                  matchLabels: {pod: c}
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels: {ns: y}
                  ports:
                  - protocol: UDP
                    port: serve-81-udp
                """,
            )
        ],
    ),
    steps(
        "deleting-policies-restores-access",
        [knp("x", "deny-all", "podSelector: {}\npolicyTypes: [Ingress, Egress]")],
        [],
    ),
    steps(
        "ingress-from-updated-pod",
        [
            knp(
                "x",
                "from-clients",
                """
                podSelector: {}
                ingress:
                - from:
                  - namespaceSelector: {}
                    podSelector:
                      matchLabels: {role: client}
                """,
            )
        ],
        [
            knp(
                "x",
                "from-clients",
                """
                podSelector: {}
                ingress:
                - from:
                  - namespaceSelector: {}
                    podSelector:
                      matchLabels: {role: client}
                """,
            ),
            relabel_pod("y/b", {"pod": "b", "role": "client"}),
        ],
    ),
    steps(
        "ingress-denied-to-updated-pod",
        [knp("x", "servers", "podSelector:\n  matchLabels: {role: server}\ningress: []")],
        [
            knp("x", "servers", "podSelector:\n  matchLabels: {role: server}\ningress: []"),
            relabel_pod("x/c", {"pod": "c", "role": "server"}),
        ],
    ),
    steps(
        "ingress-from-updated-namespace",
        [
            knp(
                "x",
                "from-blue",
                """
                podSelector:
                  matchLabels: {pod: a}
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels: {team: blue}
                """,
            )
        ],
        [
            knp(
                "x",
                "from-blue",
                """
                podSelector:
                  matchLabels: {pod: a}
                ingress:
                - from:
                  - namespaceSelector:
                      matchLabels: {team: blue}
                """,
            ),
            relabel_namespace("z", {"ns": "z", "team": "blue"}),
        ],
    ),
]


# --- running a case ----------------------------------------------------------------------


def substitute(text: str, ips: dict[str, str], pool: str) -> str:
    """`@x/b` is pod x/b's IP, `@pool` the lab's pod CIDR."""
    text = text.replace("@pool", pool)
    return re.sub(r"@([a-z]/[a-z])", lambda m: ips[m.group(1)], text)


MAX_LISTED = 12


def cell(expect: bool, seen: bool) -> str:
    if expect == seen:
        return "ok" if seen else "--"
    return "LEAK" if seen else "MISSING"


def mismatch_report(
    step: int,
    texts: list[str],
    tables: dict[tuple[str, int], dict[str, dict[str, bool]]],
    expectations: dict[tuple[str, int], dict[str, dict[str, bool]]],
) -> str:
    lines = [f"step {step}: documents in force:", *(t.rstrip() for t in texts)]
    lines.append("cells: ok / -- agree; MISSING = expected allowed, blocked; LEAK = expected")
    lines.append("blocked, got through")
    for check, table in tables.items():
        wrong = [
            (src, dst)
            for src, row in table.items()
            for dst, seen in row.items()
            if seen != expectations[check][src][dst]
        ]
        if not wrong:
            continue
        columns = sorted(
            {d for row in table.values() for d in row}, key=lambda d: (d == EXTERNAL, d)
        )
        rows = [[f"{check[0]}/{check[1]}", *columns]]
        for src, row in table.items():
            cells = [
                cell(expectations[check][src][d], row[d]) if d in row else "." for d in columns
            ]
            rows.append([src, *cells])
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines.append("")
        lines.extend(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
        )
        lines.extend(
            f"  {check[0]}/{check[1]} {src} -> {dst}: expected "
            f"{'allowed' if expectations[check][src][dst] else 'blocked'}, saw "
            f"{'allowed' if table[src][dst] else 'blocked'}"
            for src, dst in wrong[:MAX_LISTED]
        )
        if len(wrong) > MAX_LISTED:
            lines.append(f"  ... and {len(wrong) - MAX_LISTED} more (see the table)")
    return "\n".join(lines)


@pytest.mark.parametrize("truth", CASES, ids=[c.id for c in CASES])
def test_truth_table(fresh: World, truth: Case) -> None:
    ips = fresh.ips()
    pool = fresh.state.pool
    failures = []
    for number, step in enumerate(truth.steps, 1):
        texts = [substitute(t, ips, pool) for t in step]
        docs = [d for t in texts for d in yaml.safe_load_all(t) if d]
        fresh.transition(docs)
        world = endpoints(docs, ips)
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        seen = probe.matrices(fresh.state, CHECKS, udp_source_port=next(UDP_PORTS))
        tables: dict[tuple[str, int], dict[str, dict[str, bool]]] = {}
        expectations: dict[tuple[str, int], dict[str, dict[str, bool]]] = {}
        for (proto, port), matrix in seen.items():
            keep = (proto, port) in EXTERNAL_CHECKS
            tables[(proto, port)] = {
                src: {dst: bool(v) for dst, v in row.items() if keep or dst != EXTERNAL}
                for src, row in matrix.items()
            }
            expectations[(proto, port)] = {
                src: {dst: expected(policies, world[src], world[dst], proto, port) for dst in row}
                for src, row in tables[(proto, port)].items()
            }
        if tables != expectations:
            failures.append(mismatch_report(number, texts, tables, expectations))
    assert not failures, "\n\n".join(failures)


# --- the evaluator against answers worked out by hand (no lab) ---------------------------

FAKE_IPS = {
    f"{ns}/{p}": f"10.244.{i}.{j + 1}"
    for i, ns in enumerate(NAMESPACES)
    for j, p in enumerate(PODS)
}
ALL = {f"{ns}/{p}" for ns in NAMESPACES for p in PODS}
Y, Z = {"y/a", "y/b", "y/c"}, {"z/a", "z/b", "z/c"}
# (case, step, check, pod, direction, the peers it is allowed with): "to" = who reaches
# the pod, "from" = what the pod reaches (the external host included).
HAND = [
    ("default-deny-ingress", 1, ("tcp", 80), "x/b", "to", set()),
    ("default-deny-ingress", 1, ("tcp", 80), "x/b", "from", Y | Z | {EXTERNAL}),
    ("allow-from-same-namespace", 1, ("udp", 81), "x/c", "to", {"x/a", "x/b"}),
    ("pod-and-namespace-selector-together", 1, ("tcp", 80), "x/a", "to", {"y/b"}),
    ("pod-or-namespace-selector-two-peers", 1, ("tcp", 81), "x/a", "to", Y | {"x/b"}),
    ("several-pod-and-namespace-peers", 1, ("udp", 80), "x/b", "to", {"y/a", "y/c", "z/b"}),
    ("namespace-match-expressions-not-in", 1, ("tcp", 80), "x/c", "to", Z | {"x/a", "x/b"}),
    ("namespace-match-expressions-does-not-exist", 1, ("tcp", 80), "y/a", "to", set()),
    ("match-labels-and-expressions-together", 1, ("tcp", 80), "x/a", "to", ALL - {"x/a"}),
    ("match-labels-and-expressions-together", 1, ("tcp", 80), "x/c", "to", {"x/b", "y/b", "z/b"}),
    ("port-81-by-name", 1, ("tcp", 80), "x/a", "to", set()),
    ("port-81-by-name", 1, ("tcp", 81), "x/a", "to", ALL - {"x/a"}),
    ("named-port-on-udp", 1, ("udp", 80), "x/a", "to", ALL - {"x/a"}),
    ("named-port-on-udp", 1, ("udp", 81), "x/a", "to", set()),
    ("named-port-of-another-protocol-matches-nothing", 1, ("udp", 80), "x/a", "to", set()),
    ("named-port-of-another-protocol-matches-nothing", 1, ("tcp", 80), "x/a", "to", set()),
    ("sctp-is-not-tcp", 1, ("tcp", 80), "x/a", "to", set()),
    ("end-port-range-ending-at-80", 1, ("tcp", 80), "x/b", "to", ALL - {"x/b"}),
    ("end-port-range-ending-at-80", 1, ("tcp", 81), "x/b", "to", set()),
    ("end-port-range-on-udp-from-81", 1, ("udp", 81), "x/b", "to", ALL - {"x/b"}),
    ("end-port-range-on-udp-from-81", 1, ("udp", 80), "x/b", "to", set()),
    ("ip-block-with-except", 1, ("tcp", 80), "x/b", "to", ALL - {"x/b", "y/b", "z/c"}),
    ("ip-in-except-allowed-by-another-block", 1, ("tcp", 80), "x/a", "to", ALL - {"x/a"}),
    ("egress-everywhere-except-the-pod-pool", 1, ("tcp", 80), "x/a", "from", {EXTERNAL}),
    ("egress-on-one-named-port", 1, ("tcp", 80), "x/b", "from", set()),
    ("egress-on-one-named-port", 1, ("tcp", 81), "x/b", "from", ALL - {"x/b"}),
    ("egress-end-port-range-on-udp", 1, ("udp", 81), "y/c", "from", ALL - {"y/c"} | {EXTERNAL}),
    ("egress-end-port-range-on-udp", 1, ("udp", 80), "y/c", "from", set()),
    ("egress-named-udp-port-to-a-namespace", 1, ("udp", 80), "z/a", "from", {"x/a", "x/b", "x/c"}),
    ("egress-named-udp-port-to-a-namespace", 1, ("tcp", 80), "z/a", "from", set()),
    ("egress-denied-ingress-allowed", 1, ("tcp", 80), "x/a", "from", set()),
    ("egress-denied-ingress-allowed", 1, ("tcp", 80), "x/a", "to", ALL - {"x/a"}),
    ("policy-types-defaulted-with-egress-rules", 1, ("tcp", 80), "x/b", "to", set()),
    ("policy-types-defaulted-with-egress-rules", 1, ("tcp", 80), "x/b", "from", Z),
    ("egress-policy-type-only-ignores-ingress-rules", 1, ("tcp", 80), "x/a", "to", ALL - {"x/a"}),
    ("egress-policy-type-only-ignores-ingress-rules", 1, ("tcp", 80), "x/a", "from", ALL - {"x/a"}),
    ("ingress-and-egress-together", 1, ("udp", 81), "x/a", "from", Y),
    ("ingress-and-egress-together", 1, ("tcp", 81), "x/a", "from", set()),
    ("ingress-and-egress-together", 1, ("udp", 81), "x/a", "to", {"x/b"}),
    ("client-egress-deny-beats-server-ingress-allow", 1, ("tcp", 80), "y/a", "to", set()),
    ("policy-in-another-namespace-has-no-effect", 1, ("udp", 81), "x/a", "to", ALL - {"x/a"}),
    ("update-policy-in-place", 3, ("udp", 81), "x/c", "to", Y),
    ("update-policy-in-place", 3, ("udp", 80), "x/c", "to", set()),
    ("update-policy-in-place", 3, ("tcp", 80), "x/a", "to", ALL - {"x/a"}),
    ("ingress-from-updated-pod", 1, ("tcp", 80), "x/a", "to", set()),
    ("ingress-from-updated-pod", 2, ("tcp", 80), "x/a", "to", {"y/b"}),
    ("ingress-denied-to-updated-pod", 2, ("tcp", 80), "x/c", "to", set()),
    ("ingress-from-updated-namespace", 2, ("tcp", 80), "x/a", "to", Z),
]


@pytest.mark.parametrize(
    ("name", "step", "check", "pod", "direction", "peers"),
    HAND,
    ids=[f"{h[0]}-{h[1]}-{h[2][0]}{h[2][1]}-{h[4]}-{h[3]}" for h in HAND],
)
def test_evaluator_gives_the_answers_worked_out_by_hand(
    name: str, step: int, check: tuple[str, int], pod: str, direction: str, peers: set[str]
) -> None:
    [truth] = [c for c in CASES if c.id == name]
    texts = [substitute(t, FAKE_IPS, "10.244.0.0/16") for t in truth.steps[step - 1]]
    docs = [d for t in texts for d in yaml.safe_load_all(t) if d]
    world = endpoints(docs, FAKE_IPS)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    if direction == "to":  # the external host is no source in the probe matrix
        found = {
            k
            for k, e in world.items()
            if k not in (pod, EXTERNAL) and expected(policies, e, world[pod], *check)
        }
    else:
        found = {
            k for k, e in world.items() if k != pod and expected(policies, world[pod], e, *check)
        }
    assert found == peers


def test_there_are_at_least_forty_distinct_cases() -> None:
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)
