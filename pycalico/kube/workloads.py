"""Pods, Deployments and DaemonSets checked as kube-apiserver checks them (pure), as far as a
CNI-driven cluster needs them: a pod's labels, annotations, node, container ports and service
account, a Deployment's replicas, a workload's selector and pod template (hashed as the
Deployment controller hashes it).

Every other field the apiserver knows is accepted. What a cluster cannot do on top of that
(the lab has no host network, for one) it says in an `Admission`, refused with the
apiserver's own errors, as an admission policy would refuse it; the pod spec fields it
accepts without acting on them (the lab's scheduler reads no node selector) it names there
too, and each one a manifest sets becomes a warning on its template.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pycalico.api import checks
from pycalico.api.endpoints import PORT_PROTOCOLS
from pycalico.kube.validation import Checker, check_top_level

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
class Admission:
    """What a cluster refuses on top of the apiserver's checks, as an admission policy does
    (PodSecurity's baseline level refuses both): the reason each is refused, "" to allow it."""

    host_network: str
    host_port: str
    # Pod spec fields accepted without effect, each with the words that say why (after the
    # field's path): `("nodeSelector", "is ignored: ...")`.
    unenforced: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ContainerPort:
    port: int
    protocol: str = "TCP"
    name: str = ""
    served: bool = True  # init containers have finished: their ports are only named


@dataclass
class PodTemplate:
    """What Calico takes from a pod: its labels and annotations, its node, its container ports
    and its service account."""

    labels: dict[str, str]
    annotations: dict[str, str] = field(default_factory=dict)
    node: str = ""  # "" = the scheduler picks one
    ports: list[ContainerPort] = field(default_factory=list)
    service_account: str = DEFAULT_SERVICE_ACCOUNT
    warnings: list[str] = field(default_factory=list)  # the unenforced fields it sets

    def endpoint_ports(self) -> list[dict[str, Any]]:
        """The WorkloadEndpoint's named ports, as Calico maps them (lower-case protocol)."""
        return [
            {"name": p.name, "protocol": p.protocol.lower(), "port": p.port}
            for p in self.ports
            if p.name
        ]


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    template: PodTemplate


@dataclass(frozen=True)
class Deployment:
    name: str
    namespace: str
    template: PodTemplate
    replicas: int
    template_hash: str


def pod(raw: dict[str, Any], admission: Admission) -> Pod:
    """Check a v1 Pod document; every problem is one KubeInvalid."""
    c = Checker()
    check_top_level(c, raw, ("status",))
    meta = c.metadata(raw.get("metadata"), namespaced=True)
    template = _pod_spec(c, raw.get("spec"), "spec", meta, admission)
    c.raise_if_any("Pod", meta["name"])
    return Pod(meta["name"], meta["namespace"], template)


def _pod_spec(
    c: Checker, value: Any, path: str, meta: dict[str, Any], admission: Admission
) -> PodTemplate:
    spec = c.mapping(value, path, POD_SPEC_FIELDS)
    if spec.get("hostNetwork") and admission.host_network:
        c.forbidden(f"{path}.hostNetwork", admission.host_network)
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
                port = _container_port(c, raw_port, f"{where}.ports[{j}]", served, admission)
                if port is None:
                    continue
                if port.name and port.name in port_names:
                    c.duplicate(f"{where}.ports[{j}].name", port.name)
                port_names.add(port.name)
                ports.append(port)
    warnings = [f"{path}.{name} {why}" for name, why in admission.unenforced if spec.get(name)]
    return PodTemplate(meta["labels"], meta["annotations"], node, ports, account, warnings)


def _container_port(
    c: Checker, raw: Any, path: str, served: bool, admission: Admission
) -> ContainerPort | None:
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
    if entry.get("hostPort") and admission.host_port:
        c.forbidden(f"{path}.hostPort", admission.host_port)
    return ContainerPort(number, protocol, name, served)


def deployment(raw: dict[str, Any], admission: Admission) -> Deployment:
    """Check an apps/v1 Deployment document; every problem is one KubeInvalid."""
    c = Checker()
    check_top_level(c, raw, ("status",))
    meta = c.metadata(raw.get("metadata"), namespaced=True)
    spec = c.mapping(raw.get("spec"), "spec", DEPLOYMENT_SPEC_FIELDS)
    replicas = c.integer(spec.get("replicas"), "spec.replicas")
    if replicas is None:
        replicas = 1
    elif replicas < 0:
        c.invalid("spec.replicas", replicas, "must be greater than or equal to 0")
    template, template_doc = _selected_template(c, spec, "deployment", admission)
    c.raise_if_any("Deployment", meta["name"])
    return Deployment(
        meta["name"], meta["namespace"], template, replicas, template_hash(template_doc)
    )


@dataclass(frozen=True)
class DaemonSet:
    name: str
    namespace: str
    template: PodTemplate
    template_hash: str  # its pods' controller-revision-hash


DAEMONSET_SPEC_FIELDS = (
    "selector",
    "template",
    "updateStrategy",
    "minReadySeconds",
    "revisionHistoryLimit",
)


def daemonset(raw: dict[str, Any], admission: Admission) -> DaemonSet:
    """Check an apps/v1 DaemonSet document; every problem is one KubeInvalid."""
    c = Checker()
    check_top_level(c, raw, ("status",))
    meta = c.metadata(raw.get("metadata"), namespaced=True)
    spec = c.mapping(raw.get("spec"), "spec", DAEMONSET_SPEC_FIELDS)
    template, template_doc = _selected_template(c, spec, "daemonset", admission)
    c.raise_if_any("DaemonSet", meta["name"])
    return DaemonSet(meta["name"], meta["namespace"], template, template_hash(template_doc))


def _selected_template(
    c: Checker, spec: dict[str, Any], kind: str, admission: Admission
) -> tuple[PodTemplate, Any]:
    """The pod template of a workload's spec, which its selector must select."""
    if spec.get("selector") is None:
        c.required("spec.selector")
    selector = c.label_selector(spec.get("selector"), "spec.selector")
    if spec.get("selector") is not None and not (
        selector.get("matchLabels") or selector.get("matchExpressions")
    ):
        c.invalid("spec.selector", selector, f"empty selector is invalid for {kind}")
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
        admission,
    )
    if not c.errors and not _selects(selector, labels):
        c.invalid(
            "spec.template.metadata.labels", labels, "`selector` does not match template `labels`"
        )
    return template, template_doc


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
