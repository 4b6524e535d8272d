"""Calico v3 resources as the library takes them: built from kind, name and spec, normalized."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pycalico.api.resource import normalize

V3 = "projectcalico.org/v3"


def normalized(
    kind: str,
    name: str,
    spec: Mapping[str, Any],
    namespace: str | None = None,
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """One resource, validated and with its defaults filled in (ValidationErrors if bad)."""
    meta: dict[str, Any] = {"name": name}
    if namespace is not None:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return normalize({"apiVersion": V3, "kind": kind, "metadata": meta, "spec": dict(spec)})

