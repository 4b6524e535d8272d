"""Calico v3 resources as the library takes them: built from kind, name and spec and
normalized, or stored from YAML straight into an SQLite store."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pycalico.api.codec import parse_documents
from pycalico.api.registry import by_kind_name
from pycalico.api.resource import normalize
from pycalico.datastore.resources import ResourceClient
from pycalico.datastore.sqlite import SqliteBackend

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


def workload_endpoint(
    pod: str, ips: list[str], namespace: str = "default", node: str = "node1"
) -> dict[str, Any]:
    """A pod's WorkloadEndpoint on `node`, interface `cali<pod>`, with `ips` as host routes."""
    return normalized(
        "WorkloadEndpoint",
        f"{node}-k8s-{pod}-eth0",
        {
            "node": node,
            "orchestrator": "k8s",
            "pod": pod,
            "endpoint": "eth0",
            "interfaceName": f"cali{pod}",
            "ipNetworks": [f"{ip}/{32 if '.' in ip else 128}" for ip in ips],
        },
        namespace,
    )


def store_documents(path: Path, text: str) -> None:
    """Every resource in the YAML `text` applied to the SQLite store at `path` through the
    library, in this process: the objects `calicoctl apply` would write, without its cost."""
    with SqliteBackend(path, create=True) as backend:
        client = ResourceClient(backend)
        for doc in parse_documents(text, "seed"):
            resource = normalize(doc)
            client.apply(by_kind_name(resource["kind"]), resource)
