"""The lab's datastore, written as kube-controllers and kubelet would: namespace and
service-account profiles, converted NetworkPolicies, pod label changes on the endpoint.

Calls run on a thread that has joined the first node's network namespace, where the
datastore (an etcd cluster inside the lab, or the lab's SQLite file) is reachable with the
node's own settings; calicoctl runs there too, as `calico-lab exec NODE -- calicoctl` does.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable
from typing import Any, TypeVar

from pycalico.cni.endpoint import Workload
from pycalico.datastore.resources import (
    ResourceClient,
    ResourceError,
    ResourceExists,
    ResourceNotFound,
)
from pycalico.kube import conversions
from pycalico.lab.state import LabError, LabState, Pod

T = TypeVar("T")
CALICO_LABEL_PREFIX = "projectcalico.org/"


def session(state: LabState, work: Callable[[ResourceClient], T]) -> T:
    """`work(client)` against the lab's datastore; datastore failures are LabErrors."""
    from pycalico.datastore.backend import DatastoreError
    from pycalico.datastore.config import config_from_env, open_backend
    from pycalico.lab.cluster import node_env
    from pycalico.lab.namespaces import ns_name
    from pycalico.netns import in_netns

    node = state.nodes[0]
    config = config_from_env(node_env(state, node))

    def run() -> T:
        backend = open_backend(config)
        try:
            return work(ResourceClient(backend))
        finally:
            backend.close()

    try:
        return in_netns(f"/run/netns/{ns_name(state.name, node)}", run)
    except (ResourceError, DatastoreError, ValueError) as exc:  # ConfigError is a ValueError
        raise LabError(f"datastore: {exc}") from None


def put(client: ResourceClient, resource: dict[str, Any]) -> str:
    """Create or update a resource: `created`, `configured` or `unchanged`, as kubectl says."""
    from pycalico.api.registry import by_kind_name

    kind = by_kind_name(resource["kind"])
    meta = resource["metadata"]
    current = client.get(kind, meta["name"], meta.get("namespace"))
    if current is None:
        client.create(kind, resource)
        return "created"
    if current["spec"] == resource["spec"] and current["metadata"].get("labels") == meta.get(
        "labels"
    ):
        return "unchanged"
    version = current["metadata"]["resourceVersion"]
    client.update(kind, {**resource, "metadata": {**meta, "resourceVersion": version}})
    return "configured"


def remove(client: ResourceClient, kind_name: str, name: str, namespace: str = "") -> bool:
    """Delete a resource; False if there was none."""
    from pycalico.api.registry import by_kind_name

    try:
        client.delete(by_kind_name(kind_name), name, namespace or None)
    except ResourceNotFound:
        return False
    return True


def exists(client: ResourceClient, kind_name: str, name: str, namespace: str = "") -> bool:
    from pycalico.api.registry import by_kind_name

    return client.get(by_kind_name(kind_name), name, namespace or None) is not None


def ensure_namespace(client: ResourceClient, namespace: str, accounts: set[str]) -> None:
    """The profiles every namespace has once Kubernetes knows it: `kns.<ns>`, and `ksa.<ns>.<sa>`
    for each service account its pods use. Existing ones (and their labels) are kept."""
    wanted = [
        conversions.namespace_profile(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
        )
    ] + [
        conversions.service_account_profile(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": account, "namespace": namespace},
            }
        )
        for account in sorted(accounts)
    ]
    for profile in wanted:
        if not exists(client, "Profile", profile["metadata"]["name"]):
            # A pod added beside this one (pods start in parallel) may have made it first.
            with contextlib.suppress(ResourceExists):
                put(client, profile)


def delete_namespace_objects(client: ResourceClient, namespace: str) -> None:
    """What goes with a namespace: its converted NetworkPolicies and its profiles."""
    from pycalico.api.registry import by_kind_name

    policies, _ = client.list(by_kind_name("NetworkPolicy"), namespace)
    for policy in policies:
        if policy["metadata"]["name"].startswith(conversions.POLICY_PREFIX):
            remove(client, "NetworkPolicy", policy["metadata"]["name"], namespace)
    profiles, _ = client.list(by_kind_name("Profile"))
    prefix = conversions.service_account_profile_name(namespace, "")
    for profile in profiles:
        if profile["metadata"]["name"].startswith(prefix):
            remove(client, "Profile", profile["metadata"]["name"])
    remove(client, "Profile", conversions.namespace_profile_name(namespace))


def relabel_endpoint(client: ResourceClient, pod: Pod, labels: dict[str, str]) -> None:
    """Give a pod's WorkloadEndpoint new pod labels, keeping Calico's own (what the
    workloadendpoint controller of kube-controllers does when a pod is relabelled)."""
    from pycalico.api.registry import by_kind_name
    from pycalico.api.resource import normalize

    namespace, _, name = pod.name.partition("/")
    wep_name = Workload(pod.node, "k8s", namespace, name, pod.container_id, "eth0").wep_name
    kind = by_kind_name("WorkloadEndpoint")
    current = client.get(kind, wep_name, namespace)
    if current is None:
        raise LabError(f"pod {pod.name} has no WorkloadEndpoint {wep_name}")
    meta = current["metadata"]
    ours = {k: v for k, v in meta.get("labels", {}).items() if k.startswith(CALICO_LABEL_PREFIX)}
    # The endpoint as read, resourceVersion included: a concurrent change is a conflict.
    client.update(kind, normalize({**current, "metadata": {**meta, "labels": {**labels, **ours}}}))


def calicoctl(state: LabState, verb: str, text: str) -> str:
    """`calicoctl <verb> -f -` on the first node; its output, or a LabError with its error."""
    from pycalico.lab.cluster import node_env
    from pycalico.lab.namespaces import ns_name

    node = state.nodes[0]
    out = subprocess.run(
        ["ip", "netns", "exec", ns_name(state.name, node), "calicoctl", verb, "-f", "-"],
        env=node_env(state, node),
        input=text,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise LabError(out.stderr.strip() or out.stdout.strip() or f"calicoctl {verb} failed")
    return out.stdout
