"""The Kubernetes objects `calico-lab apply -f` understands, checked as kube-apiserver checks
them (by pycalico.kube), before anything is applied (pure: no lab state, no I/O).

v1 Namespace, ServiceAccount and Pod, apps/v1 Deployment, networking.k8s.io/v1
NetworkPolicy (converted to Calico's `knp.default.<name>` by pycalico.kube.conversions), and
any projectcalico.org/v3 document (left to calicoctl); apps/v1 DaemonSets too (a pod on every
node, or only on the node its template's nodeName names). A v1 Service is read and skipped
with a warning: Services are kube-proxy's, which Calico does not provide and the lab does
not have. Pods are namespaces, not containers: a container's image and command are accepted
and not run; its declared TCP and UDP container ports are served by the lab's echo server.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pycalico.ctl.inputs import Document
from pycalico.kube import conversions, workloads
from pycalico.kube.workloads import PodTemplate
from pycalico.lab.state import LabError

CALICO_APIS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
SERVED_PROTOCOLS = ("TCP", "UDP")  # what the lab's echo server answers
# What the lab cannot do, refused along with the apiserver's own checks, and the placement
# fields it accepts without acting on them, warned about.
_PLACED_BY_LOAD = (
    "is ignored: the lab puts a pod on the node with the fewest pods (a DaemonSet's on "
    "every node) unless spec.nodeName names one"
)
ADMISSION = workloads.Admission(
    host_network="the lab runs every pod on the pod network",
    host_port="the lab does not map host ports",
    unenforced=(
        ("nodeSelector", _PLACED_BY_LOAD),
        ("affinity", _PLACED_BY_LOAD),
        ("topologySpreadConstraints", _PLACED_BY_LOAD),
        ("tolerations", "has no effect: the lab's nodes have no taints"),
        ("schedulingGates", "is ignored: the lab starts every pod at once"),
    ),
)


def serve(template: PodTemplate) -> str:
    """The echo server's port list for a pod (`80,53/udp`)."""
    specs = [
        f"{p.port}" if p.protocol == "TCP" else f"{p.port}/udp"
        for p in template.ports
        if p.served and p.protocol in SERVED_PROTOCOLS
    ]
    return ",".join(dict.fromkeys(specs))


@dataclass
class Manifest:
    """One checked object. `resource` is the Calico resource it becomes, if any."""

    kind: str  # Namespace, ServiceAccount, Pod, Deployment, DaemonSet, NetworkPolicy,
    # Calico, or Skipped (read, not applied: `warning` says why)
    name: str
    namespace: str = ""  # "" for cluster-scoped objects
    resource: dict[str, Any] = field(default_factory=dict)
    template: PodTemplate | None = None
    replicas: int = 0
    template_hash: str = ""
    raw: Any = None
    warning: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def kind_phrase(self) -> str:
        """How kubectl names the kind in its output (`deployment.apps/web created`)."""
        if self.kind == "Calico":
            return str(self.resource["kind"])
        if self.kind == "Skipped":
            return str(self.raw.get("kind", "")).lower()
        return {
            "Deployment": "deployment.apps",
            "DaemonSet": "daemonset.apps",
            "NetworkPolicy": "networkpolicy.networking.k8s.io",
        }.get(self.kind, self.kind.lower())


def read(docs: list[Document]) -> list[Manifest]:
    """Every document checked; the first bad one (with how many more) is one LabError."""
    manifests, failures = [], []
    for doc in docs:
        try:
            manifests.append(manifest(doc.raw))
        except ValueError as exc:  # KubeInvalid among them
            failures.append(f"{_where(doc)}: {exc}")
    if failures:
        more = f" (and {len(failures) - 1} more invalid documents)" if len(failures) > 1 else ""
        raise LabError(failures[0] + more)
    return manifests


def _where(doc: Document) -> str:
    raw = doc.raw if isinstance(doc.raw, dict) else {}
    meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
    what = " ".join(str(p) for p in (raw.get("kind"), meta.get("name")) if p)
    return f"{doc.source} document {doc.index}" + (f" ({what})" if what else "")


def manifest(raw: Any) -> Manifest:
    if not isinstance(raw, dict):
        raise ValueError("a manifest must be a mapping")
    api, kind = raw.get("apiVersion"), raw.get("kind")
    if api in CALICO_APIS:
        from pycalico.api.resource import normalize

        resource = normalize(raw)
        meta = resource["metadata"]
        return Manifest("Calico", meta["name"], meta.get("namespace", ""), resource, raw=raw)
    if (api, kind) == ("v1", "Namespace"):
        profile = conversions.namespace_profile(raw)
        name = profile["metadata"]["name"].removeprefix(conversions.NAMESPACE_PROFILE_PREFIX)
        return Manifest("Namespace", name, resource=profile)
    if (api, kind) == ("v1", "ServiceAccount"):
        profile = conversions.service_account_profile(raw)
        meta = raw.get("metadata") or {}
        return Manifest("ServiceAccount", meta["name"], meta.get("namespace") or "default", profile)
    if (api, kind) == (conversions.NETWORKING_API, "NetworkPolicy"):
        policy = conversions.network_policy(raw)
        name = policy["metadata"]["name"].removeprefix(conversions.POLICY_PREFIX)
        return Manifest("NetworkPolicy", name, policy["metadata"]["namespace"], policy)
    if (api, kind) == ("v1", "Pod"):
        pod = workloads.pod(raw, ADMISSION)
        return Manifest("Pod", pod.name, pod.namespace, template=pod.template)
    if (api, kind) == ("apps/v1", "Deployment"):
        checked = workloads.deployment(raw, ADMISSION)
        return Manifest(
            "Deployment",
            checked.name,
            checked.namespace,
            template=checked.template,
            replicas=checked.replicas,
            template_hash=checked.template_hash,
        )
    if (api, kind) == ("apps/v1", "DaemonSet"):
        ds = workloads.daemonset(raw, ADMISSION)
        return Manifest(
            "DaemonSet",
            ds.name,
            ds.namespace,
            template=ds.template,
            template_hash=ds.template_hash,
        )
    if (api, kind) == ("v1", "Service"):
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), dict) else {}
        name = str(meta.get("name") or "")
        return Manifest(
            "Skipped",
            name,
            str(meta.get("namespace") or "default"),
            raw=raw,
            warning=f"Warning: service/{name} skipped: Services are kube-proxy's, which "
            "Calico does not provide and the lab does not have",
        )
    raise ValueError(
        f'no matches for kind "{kind}" in version "{api}" (the lab knows v1 Namespace, '
        "ServiceAccount and Pod, apps/v1 Deployment and DaemonSet, networking.k8s.io/v1 "
        "NetworkPolicy and projectcalico.org/v3 resources)"
    )


def run_pod(
    name: str,
    namespace: str,
    image: str,
    labels: dict[str, str] | None,
    node: str,
    port: int | None,
) -> dict[str, Any]:
    """The Pod `kubectl run NAME --image=IMAGE [--port=P] [--labels=...]` creates: labelled
    `run=NAME` unless labels are given, one container named after the pod."""
    container: dict[str, Any] = {"name": name, "image": image}
    if port is not None:
        container["ports"] = [{"containerPort": port}]
    spec: dict[str, Any] = {"containers": [container]}
    if node:
        spec["nodeName"] = node
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"run": name}},
        "spec": spec,
    }


def deployment(name: str, namespace: str, image: str, replicas: int, port: int) -> dict[str, Any]:
    """The Deployment `kubectl create deployment NAME --image=IMAGE --replicas=N --port=P`
    creates: `app=NAME` on it, its selector and its pods; the container named after the
    image. The lab declares port 80 unless told otherwise, since its pods serve only what
    they declare (an nginx container would answer on 80 undeclared)."""
    labels = {"app": name}
    container_name = re.sub(
        "[^a-z0-9-]", "-", image.rsplit("/", 1)[-1].split("@")[0].split(":")[0].lower()
    ).strip("-")
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "containers": [
                        {
                            "name": container_name or name,
                            "image": image,
                            "ports": [{"containerPort": port}],
                        }
                    ]
                },
            },
        },
    }
