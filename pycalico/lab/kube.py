"""The Kubernetes objects `calico-lab apply -f` understands, checked as kube-apiserver checks
them, before anything is applied (pure: no lab state, no I/O).

v1 Namespace, ServiceAccount and Pod, apps/v1 Deployment, networking.k8s.io/v1
NetworkPolicy (converted to Calico's `knp.default.<name>` by pycalico.kube.conversions), and
any projectcalico.org/v3 document (left to calicoctl). Pods are namespaces, not containers:
a container's image and command are accepted and not run; its declared TCP and UDP
container ports are served by the lab's echo server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pycalico.api import checks
from pycalico.api.endpoints import PORT_PROTOCOLS
from pycalico.ctl.inputs import Document
from pycalico.kube import conversions
from pycalico.kube.validation import Checker, check_top_level
from pycalico.lab.state import LabError

CALICO_APIS = ("projectcalico.org/v3", "crd.projectcalico.org/v1")
SERVED_PROTOCOLS = ("TCP", "UDP")  # what the lab's echo server answers
DEFAULT_SERVICE_ACCOUNT = "default"  # the apiserver's ServiceAccount admission default
# The characters Kubernetes draws generated names and pod-template hashes from.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

POD_SPEC_FIELDS = (
    "activeDeadlineSeconds",
    "affinity",
    "automountServiceAccountToken",
    "containers",
    "dnsConfig",
    "dnsPolicy",
    "enableServiceLinks",
    "ephemeralContainers",
    "hostAliases",
    "hostIPC",
    "hostNetwork",
    "hostPID",
    "hostUsers",
    "hostname",
    "imagePullSecrets",
    "initContainers",
    "nodeName",
    "nodeSelector",
    "os",
    "overhead",
    "preemptionPolicy",
    "priority",
    "priorityClassName",
    "readinessGates",
    "resourceClaims",
    "resources",
    "restartPolicy",
    "runtimeClassName",
    "schedulerName",
    "schedulingGates",
    "securityContext",
    "serviceAccount",
    "serviceAccountName",
    "setHostnameAsFQDN",
    "shareProcessNamespace",
    "subdomain",
    "terminationGracePeriodSeconds",
    "tolerations",
    "topologySpreadConstraints",
    "volumes",
)
CONTAINER_FIELDS = (
    "args",
    "command",
    "env",
    "envFrom",
    "image",
    "imagePullPolicy",
    "lifecycle",
    "livenessProbe",
    "name",
    "ports",
    "readinessProbe",
    "resizePolicy",
    "resources",
    "restartPolicy",
    "securityContext",
    "startupProbe",
    "stdin",
    "stdinOnce",
    "terminationMessagePath",
    "terminationMessagePolicy",
    "tty",
    "volumeDevices",
    "volumeMounts",
    "workingDir",
)
DEPLOYMENT_SPEC_FIELDS = (
    "replicas",
    "selector",
    "template",
    "strategy",
    "minReadySeconds",
    "revisionHistoryLimit",
    "paused",
    "progressDeadlineSeconds",
)


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    served: bool = True  # init containers have finished: their ports are only named


@dataclass
class PodTemplate:
    """What a pod is in the lab: its labels, where it runs, what it serves and names."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    node: str = ""  # "" = the lab schedules it
    ports: list[ContainerPort] = field(default_factory=list)
    service_account: str = DEFAULT_SERVICE_ACCOUNT

    def endpoint_ports(self) -> list[dict[str, Any]]:
        """The WorkloadEndpoint's named ports, as Calico maps them (lower-case protocol)."""
        return [
            {"name": p.name, "protocol": p.protocol.lower(), "port": p.port}
            for p in self.ports
            if p.name
        ]

    def serve(self) -> str:
        """The echo server's port list (`80,53/udp`)."""
        specs = [
            f"{p.port}" if p.protocol == "TCP" else f"{p.port}/udp"
            for p in self.ports
            if p.served and p.protocol in SERVED_PROTOCOLS
        ]
        return ",".join(dict.fromkeys(specs))


@dataclass
class Manifest:
    """One checked object. `resource` is the Calico resource it becomes, if any."""

    kind: str  # Namespace, ServiceAccount, Pod, Deployment, NetworkPolicy, or Calico
    name: str
    namespace: str = ""  # "" for cluster-scoped objects
    resource: dict[str, Any] = field(default_factory=dict)
    template: PodTemplate | None = None
    replicas: int = 0
    template_hash: str = ""
    raw: Any = None

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}" if self.namespace else self.name

    @property
    def kind_phrase(self) -> str:
        """How kubectl names the kind in its output (`deployment.apps/web created`)."""
        if self.kind == "Calico":
            return str(self.resource["kind"])
        return {
            "Deployment": "deployment.apps",
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
        return _pod(raw)
    if (api, kind) == ("apps/v1", "Deployment"):
        return _deployment(raw)
    raise ValueError(
        f'no matches for kind "{kind}" in version "{api}" (the lab knows v1 Namespace, '
        "ServiceAccount and Pod, apps/v1 Deployment, networking.k8s.io/v1 NetworkPolicy "
        "and projectcalico.org/v3 resources)"
    )


def _pod(raw: dict[str, Any]) -> Manifest:
    c = Checker()
    check_top_level(c, raw, ("status",))
    meta = c.metadata(raw.get("metadata"), namespaced=True)
    template = _pod_spec(c, raw.get("spec"), "spec", meta)
    c.raise_if_any("Pod", meta["name"])
    return Manifest("Pod", meta["name"], meta["namespace"], template=template)


def _pod_spec(c: Checker, value: Any, path: str, meta: dict[str, Any]) -> PodTemplate:
    spec = c.mapping(value, path, POD_SPEC_FIELDS)
    if spec.get("hostNetwork"):
        c.forbidden(f"{path}.hostNetwork", "the lab runs every pod on the pod network")
    node = c.string(spec.get("nodeName"), f"{path}.nodeName") or ""
    account = (
        c.string(spec.get("serviceAccountName"), f"{path}.serviceAccountName")
        or c.string(spec.get("serviceAccount"), f"{path}.serviceAccount")
        or DEFAULT_SERVICE_ACCOUNT
    )
    containers = c.listing(spec.get("containers"), f"{path}.containers")
    if not containers:
        c.required(f"{path}.containers")
    ports: list[ContainerPort] = []
    names: set[str] = set()
    port_names: set[str] = set()
    for key, served in (("containers", True), ("initContainers", False)):
        for i, raw in enumerate(c.listing(spec.get(key), f"{path}.{key}")):
            where = f"{path}.{key}[{i}]"
            container = c.mapping(raw, where, CONTAINER_FIELDS)
            name = c.string(container.get("name"), f"{where}.name")
            if not name:
                c.required(f"{where}.name")
            elif name in names:
                c.duplicate(f"{where}.name", name)
            elif reason := checks.dns1123_label(name):
                c.invalid(f"{where}.name", name, reason.removeprefix("name "))
            names.add(name or "")
            if not c.string(container.get("image"), f"{where}.image"):
                c.required(f"{where}.image")
            for j, raw_port in enumerate(c.listing(container.get("ports"), f"{where}.ports")):
                port = _container_port(c, raw_port, f"{where}.ports[{j}]", served)
                if port is None:
                    continue
                if port.name and port.name in port_names:
                    c.duplicate(f"{where}.ports[{j}].name", port.name)
                port_names.add(port.name)
                ports.append(port)
    return PodTemplate(meta["labels"], meta["annotations"], node, ports, account)


def _container_port(c: Checker, raw: Any, path: str, served: bool) -> ContainerPort | None:
    entry = c.mapping(raw, path, ("containerPort", "protocol", "name", "hostPort", "hostIP"))
    number = c.integer(entry.get("containerPort"), f"{path}.containerPort")
    if number is None:
        if entry.get("containerPort") is None:
            c.required(f"{path}.containerPort")
        return None
    c.port_number(number, f"{path}.containerPort")
    protocol = c.string(entry.get("protocol"), f"{path}.protocol") or "TCP"
    if protocol not in PORT_PROTOCOLS:
        c.unsupported(f"{path}.protocol", protocol, sorted(PORT_PROTOCOLS))
    name = c.string(entry.get("name"), f"{path}.name") or ""
    if name:
        c.port_name(name, f"{path}.name")
    if entry.get("hostPort"):
        c.forbidden(f"{path}.hostPort", "the lab does not map host ports")
    return ContainerPort(number, protocol, name, served)


def _deployment(raw: dict[str, Any]) -> Manifest:
    c = Checker()
    check_top_level(c, raw, ("status",))
    meta = c.metadata(raw.get("metadata"), namespaced=True)
    spec = c.mapping(raw.get("spec"), "spec", DEPLOYMENT_SPEC_FIELDS)
    replicas = c.integer(spec.get("replicas"), "spec.replicas")
    if replicas is None:
        replicas = 1
    elif replicas < 0:
        c.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    if spec.get("selector") is None:
        c.required("spec.selector")
    selector = c.label_selector(spec.get("selector"), "spec.selector")
    if spec.get("selector") is not None and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        c.invalid("spec.selector", selector, "empty selector is invalid for deployment")
    if spec.get("template") is None:
        c.required("spec.template")
    template_doc = c.mapping(spec.get("template"), "spec.template", ("metadata", "spec"))
    template_meta = c.mapping(
        template_doc.get("metadata"), "spec.template.metadata", ("name", "labels", "annotations")
    )
    labels = c.labels(template_meta.get("labels"), "spec.template.metadata.labels")
    annotations = c.string_map(
        template_meta.get("annotations"), "spec.template.metadata.annotations"
    )
    template = _pod_spec(
        c,
        template_doc.get("spec"),
        "spec.template.spec",
        {"labels": labels, "annotations": annotations},
    )
    if not c.errors and not _selects(selector, labels):
        c.invalid(
            "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
        )
    c.raise_if_any("Deployment", meta["name"])
    return Manifest(
        "Deployment",
        meta["name"],
        meta["namespace"],
        template=template,
        replicas=replicas,
        template_hash=template_hash(template_doc),
    )


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for expr in selector.get("matchExpressions") or []:
        key, values = expr["key"], expr.get("values") or []
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[expr["operator"]]
        if not held:
            return False
    return True


def template_hash(template: Any) -> str:
    """A pod-template-hash as the Deployment controller spells it: FNV-1a (32 bit) of the
    template, its decimal digits mapped onto Kubernetes' name alphabet."""
    digest = 0x811C9DC5
    for byte in json.dumps(template, sort_keys=True).encode():
        digest = ((digest ^ byte) * 0x01000193) & 0xFFFFFFFF
    return "".join(NAME_ALPHABET[ord(ch) % len(NAME_ALPHABET)] for ch in str(digest))


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
