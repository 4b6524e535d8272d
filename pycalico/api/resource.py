"""Turn one decoded document into a canonical v3 resource (validated, defaulted, ordered)."""

from __future__ import annotations

from typing import Any

from pycalico.api import checks
from pycalico.api.kind import Kind
from pycalico.api.meta import NAME_FIELD, OBJECT_META, label_errors
from pycalico.api.registry import UnknownKind, by_kind_name
from pycalico.api.schema import FieldError, ValidationErrors

API_VERSION = "projectcalico.org/v3"
# The CRD form carries the same spec; accepting it lets users paste `kubectl get -o yaml`.
CRD_API_VERSION = "crd.projectcalico.org/v1"
TOP_LEVEL = ("apiVersion", "kind", "metadata", "spec", "status")
# ObjectMeta keys that only make sense inside Kubernetes and are dropped from the CRD form.
_K8S_ONLY_META = ("generation", "managedFields", "selfLink")


class UnknownResourceType(ValueError):
    def __init__(self, kind: Any, api_version: Any) -> None:
        super().__init__(f"Unknown resource type ({kind}) and/or version ({api_version})")


def kind_of(doc: Any) -> Kind:
    if not isinstance(doc, dict):
        raise ValueError(f"a resource must be a mapping, not {type(doc).__name__}")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if kind is None:
        raise ValueError("missing 'kind'")
    if api_version is None:
        raise ValueError("missing 'apiVersion' (expected projectcalico.org/v3)")
    if api_version not in (API_VERSION, CRD_API_VERSION) or not isinstance(kind, str):
        raise UnknownResourceType(kind, api_version)
    try:
        return by_kind_name(kind)
    except UnknownKind:
        raise UnknownResourceType(kind, api_version) from None


def normalize(doc: Any, default_namespace: str = "default") -> dict[str, Any]:
    """Validate a whole document and return the canonical resource.

    Raises ValueError subclasses with one-line messages: UnknownResourceType, FieldError,
    ValidationErrors.
    """
    kind = kind_of(doc)
    errors: list[FieldError] = [
        FieldError(key, doc[key], "unknown field") for key in doc if key not in TOP_LEVEL
    ]
    if "status" in doc and kind.status is None:
        errors.append(FieldError("status", doc["status"], "unknown field"))
    metadata: dict[str, Any] = {}
    raw_meta = doc.get("metadata")
    try:
        metadata = OBJECT_META.normalize(raw_meta, "metadata")
    except ValidationErrors as exc:
        errors.extend(exc.errors)
        if isinstance(raw_meta, dict) and isinstance(raw_meta.get("name"), str):
            metadata = {"name": raw_meta["name"]}  # still check the name on its own
    if doc["apiVersion"] == CRD_API_VERSION:
        for key in _K8S_ONLY_META:
            metadata.pop(key, None)
    name = metadata.get("name")
    raw_name = raw_meta.get("name") if isinstance(raw_meta, dict) else None
    if isinstance(name, str) and name:
        reasons = kind.name_check(name) or []
        errors.extend(
            FieldError("metadata.name", name, reason, NAME_FIELD)
            for reason in ([reasons] if isinstance(reasons, str) else reasons)
        )
    elif raw_name in (None, ""):  # a name of the wrong type was reported already
        errors.append(FieldError("metadata.name", "", "name is required", NAME_FIELD))
    errors.extend(label_errors(metadata))
    if kind.namespaced:
        metadata.setdefault("namespace", default_namespace)
        reason = checks.dns1123_label(metadata["namespace"])
        if reason:
            errors.append(FieldError("metadata.namespace", metadata["namespace"], reason))
        metadata = {k: metadata[k] for k in OBJECT_META.by_name if k in metadata}
    elif "namespace" in metadata:
        errors.append(
            FieldError(
                "metadata.namespace", metadata["namespace"], f"{kind.name} is not namespaced"
            )
        )
    resource: dict[str, Any] = {"kind": kind.name, "apiVersion": API_VERSION, "metadata": metadata}
    try:
        resource["spec"] = kind.spec.normalize(doc.get("spec"), "spec")
        if kind.status is not None and doc.get("status") is not None:
            resource["status"] = kind.status.normalize(doc["status"], "status")
    except ValidationErrors as exc:
        errors.extend(exc.errors)
    if not errors:
        for check in kind.checks:
            errors.extend(check(resource))
    if not errors and kind.derived_labels is not None:
        labels = {**metadata.get("labels", {}), **kind.derived_labels(resource)}
        metadata["labels"] = dict(sorted(labels.items()))
        resource["metadata"] = {k: metadata[k] for k in OBJECT_META.by_name if k in metadata}
    if errors:
        raise ValidationErrors(errors)
    return resource


def identity_of(kind: str, name: str, namespace: str | None = None) -> str:
    """How Calico names a resource in messages: `Kind(name)` or `Kind(ns/name)`."""
    return f"{kind}({namespace}/{name})" if namespace else f"{kind}({name})"


def identity(resource: dict[str, Any]) -> str:
    meta = resource["metadata"]
    return identity_of(resource["kind"], meta["name"], meta.get("namespace"))
