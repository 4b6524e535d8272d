"""The seeds' Kubernetes YAML and kubectl verbs against a lab: pods, namespaces and
NetworkPolicies land in the datastore as Calico's kube-controllers and CNI put them.
(Whether the policies block traffic is the policy suite's business, not this one's.)"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from pycalico.lab.state import LabState
from tests.support.lab_driver import LAB, calicoctl, lab, lab_run
from tests.support.seed_manifests import SEED_DEPLOYMENT, SEED_NP, SEED_NP2

pytestmark = pytest.mark.e2e

K8S = "projectcalico.org/orchestrator == 'k8s'"


def calicoctl_yaml(name: str, *args: str) -> list[dict[str, Any]]:
    out = calicoctl(name, *args, "-o", "yaml")
    return yaml.safe_load(out)["items"]


def endpoints(name: str) -> dict[str, dict[str, Any]]:
    """WorkloadEndpoints by NS/POD."""
    return {
        f"{w['metadata']['namespace']}/{w['spec']['pod']}": w
        for w in calicoctl_yaml(name, "get", "workloadendpoints", "-A")
    }


def profiles(name: str) -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p for p in calicoctl_yaml(name, "get", "profiles")}


def listening(name: str, pod: str) -> str:
    return lab("exec", pod, "--name", name, "--", "ss", "-Hltnu")


def failing(*args: str, stdin: str | None = None) -> str:
    out = subprocess.run([LAB, *args], input=stdin, capture_output=True, text=True, check=False)
    assert out.returncode != 0, out.stdout
    assert "Traceback" not in out.stderr
    return out.stderr


def test_seed_requirements_objects_land_as_calico_writes_them(
    make_lab: Callable[..., str], tmp_path: Path
) -> None:
    name = make_lab("--nodes", "2")
    assert lab("create", "deployment", "web", "--image=nginx", "--name", name) == (
        "deployment.apps/web created\n"
    )
    for client, namespace in (("client1", "default"), ("client2", "default"), ("client3", "azhe")):
        # As seed 003 types it: kubectl run client1 --image=busybox -- sleep 36000
        command = ("--", "sleep", "36000")
        out = lab("run", client, "--image=busybox", "-n", namespace, "--name", name, *command)
        assert out == f"pod/{client} created\n"
    np_file = tmp_path / "np.yaml"
    np_file.write_text(SEED_NP)
    assert lab("apply", "-f", str(np_file), "--name", name) == (
        "networkpolicy.networking.k8s.io/test-network-policy created\n"
    )
    assert lab("apply", "-f", "-", "--name", name, stdin=SEED_NP2) == (
        "networkpolicy.networking.k8s.io/deny-from-other-namespaces created\n"
    )
    assert lab("apply", "-f", str(np_file), "--name", name) == (
        "networkpolicy.networking.k8s.io/test-network-policy unchanged\n"
    )

    weps = endpoints(name)
    [web] = [key for key in weps if key.startswith("default/web-")]
    assert sorted(weps) == sorted(["azhe/client3", "default/client1", "default/client2", web])
    for key, wep in weps.items():
        namespace = key.partition("/")[0]
        labels = wep["metadata"]["labels"]
        assert labels["projectcalico.org/namespace"] == namespace
        assert labels["projectcalico.org/orchestrator"] == "k8s"
        assert labels["projectcalico.org/serviceaccount"] == "default"
        assert wep["spec"]["orchestrator"] == "k8s"
        assert wep["spec"]["profiles"] == [f"kns.{namespace}", f"ksa.{namespace}.default"]
    assert weps["default/client1"]["metadata"]["labels"]["run"] == "client1"
    assert weps["azhe/client3"]["metadata"]["labels"]["run"] == "client3"
    web_labels = weps[web]["metadata"]["labels"]
    assert web_labels["app"] == "web"
    assert web.startswith(f"default/web-{web_labels['pod-template-hash']}-")
    assert ":80 " in listening(name, web)  # create deployment's pods serve TCP 80

    found = profiles(name)
    for namespace in ("default", "azhe"):
        assert found[f"kns.{namespace}"]["spec"]["labelsToApply"] == {
            "pcns.kubernetes.io/metadata.name": namespace,
            "pcns.projectcalico.org/name": namespace,
        }
        assert found[f"kns.{namespace}"]["spec"]["ingress"] == [
            {"action": "Allow", "source": {}, "destination": {}}
        ]
        assert f"ksa.{namespace}.default" in found

    policies = {
        p["metadata"]["name"]: p for p in calicoctl_yaml(name, "get", "networkpolicy", "-A")
    }
    assert sorted(policies) == [
        "knp.default.deny-from-other-namespaces",
        "knp.default.test-network-policy",
    ]
    np1 = policies["knp.default.test-network-policy"]
    assert np1["metadata"]["namespace"] == "default"
    assert np1["spec"]["order"] == 1000
    assert np1["spec"]["selector"] == f"{K8S} && app == 'web'"
    assert np1["spec"]["types"] == ["Ingress"]
    assert np1["spec"]["ingress"] == [
        {
            "action": "Allow",
            "protocol": "TCP",
            "source": {"selector": f"{K8S} && run == 'client1'"},
            "destination": {"ports": [80]},
        }
    ]
    np2 = policies["knp.default.deny-from-other-namespaces"]
    assert np2["spec"]["selector"] == K8S
    assert np2["spec"]["ingress"] == [
        {"action": "Allow", "source": {"selector": K8S}, "destination": {}}
    ]

    assert lab("delete", "-f", str(np_file), "--name", name) == (
        'networkpolicy.networking.k8s.io "test-network-policy" deleted\n'
    )
    assert [p["metadata"]["name"] for p in calicoctl_yaml(name, "get", "networkpolicy", "-A")] == [
        "knp.default.deny-from-other-namespaces"
    ]


MANIFESTS = """\
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {team: a}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: backend, namespace: shop, labels: {role: be}}
---
apiVersion: v1
kind: Pod
metadata:
  name: api
  namespace: shop
  labels: {app: api}
spec:
  nodeName: node2
  serviceAccountName: backend
  containers:
  - name: api
    image: nginx
    ports:
    - {name: http, containerPort: 8080}
    - {name: dns, containerPort: 53, protocol: UDP}
    - {containerPort: 9090}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: from-team-a, namespace: shop}
spec:
  podSelector: {matchLabels: {app: api}}
  ingress:
  - from:
    - namespaceSelector: {matchLabels: {team: a}}
      podSelector: {matchExpressions: [{key: role, operator: In, values: [web, cli]}]}
    ports:
    - {port: http}
    - {port: 8000, endPort: 8010}
  egress:
  - to:
    - ipBlock: {cidr: 10.0.0.0/8, except: [10.1.0.0/16]}
---
apiVersion: projectcalico.org/v3
kind: GlobalNetworkSet
metadata: {name: outside, labels: {zone: ext}}
spec: {nets: [203.0.113.0/24]}
"""


def test_apply_and_delete_namespaces_pods_named_ports_policies_and_calico_objects(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "2")
    assert lab("apply", "-f", "-", "--name", name, stdin=MANIFESTS).splitlines() == [
        "Successfully applied 1 'GlobalNetworkSet' resource(s)",
        "namespace/shop created",
        "serviceaccount/backend created",
        "networkpolicy.networking.k8s.io/from-team-a created",
        "pod/api created",
    ]
    wep = endpoints(name)["shop/api"]
    assert wep["spec"]["node"] == "node2"
    assert wep["spec"]["ports"] == [
        {"name": "http", "port": 8080, "protocol": "tcp"},
        {"name": "dns", "port": 53, "protocol": "udp"},
    ]
    assert wep["spec"]["profiles"] == ["kns.shop", "ksa.shop.backend"]
    assert wep["spec"]["serviceAccountName"] == "backend"
    assert wep["metadata"]["labels"] == {
        "app": "api",
        "projectcalico.org/namespace": "shop",
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/serviceaccount": "backend",
    }
    served = listening(name, "shop/api")
    assert all(port in served for port in (":8080 ", ":53 ", ":9090 "))
    found = profiles(name)
    assert found["kns.shop"]["spec"]["labelsToApply"]["pcns.team"] == "a"
    assert found["ksa.shop.backend"]["spec"]["labelsToApply"] == {
        "pcsa.projectcalico.org/name": "backend",
        "pcsa.role": "be",
    }
    [policy] = calicoctl_yaml(name, "get", "networkpolicy", "-n", "shop")
    assert policy["metadata"]["name"] == "knp.default.from-team-a"
    assert policy["spec"]["types"] == ["Ingress", "Egress"]
    assert policy["spec"]["ingress"][0]["source"] == {
        "selector": f"{K8S} && role in {{ 'web', 'cli' }}",
        "namespaceSelector": "team == 'a'",
    }
    assert policy["spec"]["ingress"][0]["destination"] == {"ports": ["http", "8000:8010"]}
    assert policy["spec"]["egress"][0]["destination"] == {
        "nets": ["10.0.0.0/8"],
        "notNets": ["10.1.0.0/16"],
    }
    [netset] = calicoctl_yaml(name, "get", "globalnetworksets")
    assert netset["metadata"]["labels"] == {"zone": "ext"}

    # A label change reaches the endpoint; Calico's own labels stay.
    relabelled = MANIFESTS.replace("labels: {app: api}", "labels: {app: api, tier: back}")
    assert "pod/api configured" in lab("apply", "-f", "-", "--name", name, stdin=relabelled)
    labels = endpoints(name)["shop/api"]["metadata"]["labels"]
    assert labels["tier"] == "back" and labels["projectcalico.org/serviceaccount"] == "backend"

    out = lab("delete", "-f", "-", "--name", name, stdin=MANIFESTS)
    assert out.splitlines() == [
        'pod "api" deleted',
        'networkpolicy.networking.k8s.io "from-team-a" deleted',
        'serviceaccount "backend" deleted',
        'namespace "shop" deleted',
        "Successfully deleted 1 'GlobalNetworkSet' resource(s)",
    ]
    assert endpoints(name) == {}
    assert not {"kns.shop", "ksa.shop.backend"} & set(profiles(name))
    assert calicoctl_yaml(name, "get", "networkpolicy", "-A") == []
    assert "shop/api" not in LabState.load(name).pods
    error = failing("delete", "-f", "-", "--name", name, stdin=MANIFESTS)
    assert 'pods "api" not found' in error and "GlobalNetworkSet(outside)" in error


def test_seed_deployment_scales_and_bad_input_applies_nothing(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "2")
    assert lab("apply", "-f", "-", "--name", name, stdin=SEED_DEPLOYMENT) == (
        "deployment.apps/busybox-deployment created\n"
    )
    weps = endpoints(name)
    assert len(weps) == 2
    assert {w["spec"]["node"] for w in weps.values()} == {"node1", "node2"}
    assert all(w["metadata"]["labels"]["app"] == "busybox" for w in weps.values())
    scaled = SEED_DEPLOYMENT.replace("replicas: 2", "replicas: 3")
    assert "configured" in lab("apply", "-f", "-", "--name", name, stdin=scaled)
    assert len(endpoints(name)) == 3

    # One bad document: a clear line, a non-zero exit, and nothing of the batch applied.
    batch = "apiVersion: v1\nkind: Namespace\nmetadata: {name: fresh}\n---\n" + SEED_NP.replace(
        "port: 80", "port: 80\n      endPort: 70"
    )
    error = failing("apply", "-f", "-", "--name", name, stdin=batch)
    assert error.count("\n") == 1
    assert "endPort: Invalid value: 70: must be greater than or equal to `port`" in error
    assert "kns.fresh" not in profiles(name)
    error = failing("run", "c", "--node", "node7", "--name", name)
    assert 'no node "node7"' in error
    assert "default/c" not in endpoints(name)
    assert "already exists" in failing("create", "deployment", "busybox-deployment", "--name", name)


PINNED_DAEMONSET = """\
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: pinned, labels: {app: pinned}}
spec:
  selector: {matchLabels: {app: pinned}}
  template:
    metadata: {labels: {app: pinned}}
    spec:
      nodeName: node2
      nodeSelector: {disktype: ssd}
      containers: [{name: c, image: busybox}]
"""


def test_a_daemonset_with_a_node_name_runs_only_there_and_an_ignored_selector_is_warned_of(
    make_lab: Callable[..., str],
) -> None:
    name = make_lab("--nodes", "2")
    out = lab_run("apply", "-f", "-", "--name", name, stdin=PINNED_DAEMONSET)
    assert (out.returncode, out.stdout) == (0, "daemonset.apps/pinned created\n")
    assert out.stderr.splitlines() == [
        "Warning: daemonset.apps/pinned: spec.template.spec.nodeSelector is ignored: the lab "
        "puts a pod on the node with the fewest pods (a DaemonSet's on every node) unless "
        "spec.nodeName names one"
    ]
    assert [w["spec"]["node"] for w in endpoints(name).values()] == ["node2"]
    again = lab_run("apply", "-f", "-", "--name", name, stdin=PINNED_DAEMONSET)
    assert again.stdout == "daemonset.apps/pinned unchanged\n"
