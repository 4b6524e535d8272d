"""Checking Kubernetes objects as kube-apiserver does, in its words (pure).

Strict decoding (unknown fields are errors, as `kubectl apply` with server-side field
validation reports them), ObjectMeta, labels and label selectors, port names. Every problem
is collected as one `field.Error`-style line; `KubeInvalid` joins them into one line:
`The NetworkPolicy "x" is invalid: spec.ingress[0].ports[0].port: Invalid value: 0: ...`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from pycalico.api import checks

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# ObjectMeta fields a manifest (or `kubectl get -o yaml` output) may carry.
OBJECT_META_FIELDS = (
    "name",
    "generateName",
    "namespace",
    "labels",
    "annotations",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "ownerReferences",
    "finalizers",
    "managedFields",
    "selfLink",
)
_PORT_NAME_CHARS = re.compile(r"[-a-z0-9]+")


class KubeInvalid(ValueError):
    """An object kube-apiserver would refuse; one line naming every bad field."""

    def __init__(self, kind: str, name: str, errors: list[str]) -> None:
        self.errors = errors
        text = errors[0] if len(errors) == 1 else "[" + ", ".join(errors) + "]"
        super().__init__(f'The {kind} "{name}" is invalid: {text}')


def show(value: Any) -> str:
    """A value as the apiserver quotes it: strings in double quotes, numbers bare."""
    return json.dumps(value, separators=(",", ":"), default=str)


class Checker:
    """Collects field errors while an object is walked."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def invalid(self, path: str, value: Any, detail: str) -> None:
        self.errors.append(f"{path}: Invalid value: {show(value)}: {detail}")

    def required(self, path: str, detail: str = "") -> None:
        self.errors.append(f"{path}: Required value" + (f": {detail}" if detail else ""))

    def forbidden(self, path: str, detail: str) -> None:
        self.errors.append(f"{path}: Forbidden: {detail}")

    def unsupported(self, path: str, value: Any, supported: Iterable[str]) -> None:
        allowed = ", ".join(show(s) for s in supported)
        self.errors.append(f"{path}: Unsupported value: {show(value)}: supported values: {allowed}")

    def duplicate(self, path: str, value: Any) -> None:
        self.errors.append(f"{path}: Duplicate value: {show(value)}")

    def mapping(self, value: Any, path: str, fields: Iterable[str]) -> dict[str, Any]:
        """`value` as an object with only `fields`; null is an empty object."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.invalid(path, value, "must be an object")
            return {}
        known = set(fields)
        for key in value:
            if key not in known:
                where = f"{path}.{key}" if path else str(key)
                self.errors.append(f'unknown field "{where}"')
        return value

    def listing(self, value: Any, path: str) -> list[Any]:
        if value is None:
            return []
        if not isinstance(value, list):
            self.invalid(path, value, "must be a list")
            return []
        return value

    def string(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            self.invalid(path, value, "must be a string")
            return None
        return value

    def integer(self, value: Any, path: str) -> int | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            self.invalid(path, value, "must be an integer")
            return None
        return value

    def string_map(self, value: Any, path: str) -> dict[str, str]:
        if value is None:
            return {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            self.invalid(path, value, "must be a map of strings to strings")
            return {}
        return value

    def labels(self, value: Any, path: str) -> dict[str, str]:
        labels = self.string_map(value, path)
        for key, val in labels.items():
            self.label_key(key, path)
            reason = checks.label_value(val)
            if reason:
                self.invalid(f"{path}", val, reason)
        return labels

    def label_key(self, key: str, path: str) -> None:
        reason = checks.label_key(key)
        if reason:
            self.invalid(path, key, reason)

    def port_name(self, name: str, path: str) -> None:
        """An IANA service name, as a named container port must be."""
        if len(name) > 15:
            self.invalid(path, name, "must be no more than 15 characters")
        if not _PORT_NAME_CHARS.fullmatch(name):
            self.invalid(
                path, name, "must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"
            )
        if not re.search("[a-z]", name):
            self.invalid(path, name, "must contain at least one letter (a-z)")
        if "--" in name:
            self.invalid(path, name, "must not contain consecutive hyphens")
        if name.startswith("-") or name.endswith("-"):
            self.invalid(path, name, "must not begin or end with a hyphen")

    def port_number(self, value: int, path: str) -> None:
        if not 1 <= value <= 65535:
            self.invalid(path, value, "must be between 1 and 65535, inclusive")

    def label_selector(self, value: Any, path: str) -> dict[str, Any]:
        """A metav1.LabelSelector (matchLabels and matchExpressions)."""
        selector = self.mapping(value, path, ("matchLabels", "matchExpressions"))
        self.labels(selector.get("matchLabels"), f"{path}.matchLabels")
        for i, raw in enumerate(self.listing(selector.get("matchExpressions"), path)):
            where = f"{path}.matchExpressions[{i}]"
            expr = self.mapping(raw, where, ("key", "operator", "values"))
            if expr.get("key") in (None, ""):
                self.required(f"{where}.key")
            else:
                key = self.string(expr["key"], f"{where}.key")
                if key is not None:
                    self.label_key(key, f"{where}.key")
            operator = self.string(expr.get("operator"), f"{where}.operator")
            values = self.listing(expr.get("values"), f"{where}.values")
            for j, val in enumerate(values):
                text = self.string(val, f"{where}.values[{j}]")
                reason = None if text is None else checks.label_value(text)
                if reason:
                    self.invalid(f"{where}.values[{j}]", text, reason)
            if operator in ("In", "NotIn") and not values:
                self.required(
                    f"{where}.values", "must be specified when `operator` is 'In' or 'NotIn'"
                )
            elif operator in ("Exists", "DoesNotExist") and values:
                self.forbidden(
                    f"{where}.values",
                    "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
                )
            elif operator not in SELECTOR_OPERATORS:
                self.invalid(f"{where}.operator", operator, "not a valid selector operator")
        return selector

    def metadata(
        self, value: Any, namespaced: bool, name_rule: str = "subdomain"
    ) -> dict[str, Any]:
        """ObjectMeta: a name (DNS-1123 subdomain or label), the namespace, labels and
        annotations; returns the fields with the namespace defaulted to `default`."""
        meta = self.mapping(value, "metadata", OBJECT_META_FIELDS)
        name = self.string(meta.get("name"), "metadata.name")
        if not name:
            self.required("metadata.name", "name or generateName is required")
        else:
            check = checks.dns1123_label if name_rule == "label" else checks.dns1123_subdomain
            reason = check(name)
            if reason:
                self.invalid("metadata.name", name, _k8s_name_reason(reason))
        namespace = self.string(meta.get("namespace"), "metadata.namespace")
        if namespace is not None and not namespaced:
            self.forbidden("metadata.namespace", "not allowed on this type")
        if namespace:
            reason = checks.dns1123_label(namespace)
            if reason:
                self.invalid("metadata.namespace", namespace, _k8s_name_reason(reason))
        labels = self.labels(meta.get("labels"), "metadata.labels")
        annotations = self.string_map(meta.get("annotations"), "metadata.annotations")
        for key in annotations:
            self.label_key(key, "metadata.annotations")
        out: dict[str, Any] = {"name": name or "", "labels": labels, "annotations": annotations}
        if namespaced:
            out["namespace"] = namespace or "default"
        return out

    def raise_if_any(self, kind: str, name: str) -> None:
        if self.errors:
            raise KubeInvalid(kind, name, self.errors)


def _k8s_name_reason(reason: str) -> str:
    """Calico's `name must consist of ...` is the apiserver's wording without `name `."""
    return reason.removeprefix("name ")


def check_top_level(c: Checker, doc: dict[str, Any], extra: Iterable[str] = ()) -> None:
    c.mapping(doc, "", ("apiVersion", "kind", "metadata", "spec", *extra))
