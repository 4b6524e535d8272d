"""`calico-lab apply|delete -f`, `run` and `create deployment`: checked manifests made real
in the lab, reported line by line as kubectl reports them.

Everything that can be refused is refused before anything changes: bad documents (in
pycalico.lab.kube), unknown nodes, a pod whose node, ports or service account would change,
objects named twice. Calico documents go to calicoctl first, so a datastore conflict it
finds (an overlapping IPPool, say) also stops the batch before the rest is applied.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable

from pycalico.datastore.resources import ResourceClient
from pycalico.kube import conversions
from pycalico.kube.workloads import NAME_ALPHABET, PodTemplate
from pycalico.lab import kube_store, pods
from pycalico.lab.kube import Manifest, serve
from pycalico.lab.state import Deployment, LabError, LabState, Pod

Emit = Callable[[str], None]
# kubectl's resource names in "not found" errors.
PLURALS = {
    "Pod": "pods",
    "Deployment": "deployments.apps",
    "DaemonSet": "daemonsets.apps",
    "NetworkPolicy": "networkpolicies.networking.k8s.io",
    "ServiceAccount": "serviceaccounts",
    "Namespace": "namespaces",
}


def apply(
    state: LabState,
    manifests: list[Manifest],
    emit: Emit,
    create: bool = False,
    warn: Emit = lambda message: None,
) -> None:
    """Make every manifest so (`create`: refuse objects that exist, as `kubectl run`); each
    of `warnings` is said through `warn`."""
    _check(state, manifests, create)
    for text in warnings(manifests):
        warn(text)
    calico = [m for m in manifests if m.kind == "Calico"]
    if calico:
        for line in kube_store.calicoctl(state, "apply", _documents(calico)).splitlines():
            emit(line)
    kube_store.session(state, lambda client: _apply_resources(client, manifests, emit))
    for m in manifests:
        if m.kind == "Pod":
            _apply_pod(state, m, emit)
        elif m.kind == "Deployment":
            _apply_deployment(state, m, emit)
        elif m.kind == "DaemonSet":
            _apply_daemonset(state, m, emit)


def warnings(manifests: list[Manifest]) -> list[str]:
    """One line for each document read and not applied (a Service) and for each pod template
    field set that the lab does not act on, naming the object and the field."""
    lines = []
    for m in manifests:
        if m.kind == "Skipped":
            lines.append(m.warning)
        elif m.template is not None:
            lines.extend(f"Warning: {m.kind_phrase}/{m.name}: {t}" for t in m.template.warnings)
    return lines


def _check(state: LabState, manifests: list[Manifest], create: bool) -> None:
    if not manifests:
        raise LabError("no objects passed to apply")
    seen: set[tuple[str, str]] = set()
    for m in manifests:
        ident = (m.kind_phrase, m.key)
        if ident in seen:
            raise LabError(f"{m.kind_phrase} {m.key} appears twice in the input")
        seen.add(ident)
        if m.template is not None and m.template.node and m.template.node not in state.nodes:
            raise LabError(
                f'{m.kind_phrase}/{m.name}: spec.nodeName: no node "{m.template.node}" in lab '
                f"{state.name} (nodes: {', '.join(state.nodes)})"
            )
        if create and m.kind == "Deployment" and m.key in state.deployments:
            raise LabError(f'deployments.apps "{m.name}" already exists')
        if m.kind == "Pod" and m.key in state.pods:
            if create:
                raise LabError(f'pods "{m.name}" already exists')
            _check_pod_update(state, m)


def _check_pod_update(state: LabState, m: Manifest) -> None:
    """A running pod may only be relabelled, as in Kubernetes."""
    pod, template = state.pods[m.key], m.template
    assert template is not None
    if (
        (template.node and template.node != pod.node)
        or serve(template) != pod.serve
        or template.endpoint_ports() != pod.ports
        or template.service_account != pod.service_account
    ):
        raise LabError(
            f'The Pod "{m.name}" is invalid: spec: Forbidden: pod updates may not change '
            "fields other than labels (delete the pod and apply it again)"
        )


def _documents(manifests: list[Manifest]) -> str:
    import yaml

    return yaml.safe_dump_all([m.raw for m in manifests], sort_keys=False)


def _apply_resources(client: ResourceClient, manifests: list[Manifest], emit: Emit) -> None:
    """Namespaces, service accounts and policies, and the profiles of every namespace the
    other objects land in, as kube-controllers keeps them."""
    for kind in ("Namespace", "ServiceAccount"):
        for m in manifests:
            if m.kind == kind:
                emit(f"{m.kind_phrase}/{m.name} {kube_store.put(client, m.resource)}")
    accounts: dict[str, set[str]] = {}
    for m in manifests:
        if m.namespace and m.kind not in ("Calico", "Skipped"):
            used = accounts.setdefault(m.namespace, set())
            if m.template is not None:
                used.add(m.template.service_account)
    for namespace, used in accounts.items():
        kube_store.ensure_namespace(client, namespace, used)
    for m in manifests:
        if m.kind == "NetworkPolicy":
            emit(f"{m.kind_phrase}/{m.name} {kube_store.put(client, m.resource)}")


def _apply_pod(state: LabState, m: Manifest, emit: Emit) -> None:
    template = m.template
    assert template is not None
    pod = state.pods.get(m.key)
    if pod is None:
        _add_pod(state, m.name, m, template.node or schedule(state), dict(template.labels))
        emit(f"pod/{m.name} created")
    elif pod.labels == template.labels:
        emit(f"pod/{m.name} unchanged")
    else:
        kube_store.session(state, lambda c: kube_store.relabel_endpoint(c, pod, template.labels))
        pod.labels = dict(template.labels)
        state.save()
        emit(f"pod/{m.name} configured")


def _add_pod(
    state: LabState, name: str, m: Manifest, node: str, labels: dict[str, str], owner: str = ""
) -> Pod:
    """A pod of `m`'s template on `node`, with `labels` (the template's and its owner's)."""
    template = m.template
    assert template is not None
    return pods.add(
        state,
        name,
        node,
        m.namespace,
        labels,
        serve(template),
        template.annotations,
        template.endpoint_ports(),
        template.service_account,
        owner,
    )


def schedule(state: LabState, planned: list[str] | None = None) -> str:
    """The node with the fewest pods, counting those `planned` but not started yet (the
    first such in node order)."""
    load = {node: 0 for node in state.nodes}
    for node in [pod.node for pod in state.pods.values()] + (planned or []):
        load[node] = load.get(node, 0) + 1
    return min(state.nodes, key=lambda node: load[node])


def _apply_deployment(state: LabState, m: Manifest, emit: Emit) -> None:
    record = state.deployments.get(m.key)
    owned = sorted(key for key, pod in state.pods.items() if pod.owner == m.key)
    if record is not None and record.template_hash == m.template_hash:
        if len(owned) == m.replicas and record.replicas == m.replicas:
            emit(f"{m.kind_phrase}/{m.name} unchanged")
            return
        for key in owned[m.replicas :]:
            pods.remove(state, key)
        _add_replicas(state, m, m.replicas - len(owned))
        record.replicas = m.replicas
        state.save()
        emit(f"{m.kind_phrase}/{m.name} configured")
        return
    # A new pod template replaces every pod, as a rollout would.
    for key in owned:
        pods.remove(state, key)
    state.deployments[m.key] = Deployment(m.template_hash, m.replicas)
    state.save()
    _add_replicas(state, m, m.replicas)
    emit(f"{m.kind_phrase}/{m.name} {'created' if record is None else 'configured'}")


def _pod_name(state: LabState, m: Manifest, prefix: str, taken: set[str]) -> str:
    """`prefix` and five random characters, as a controller names its pods: a name no pod
    of the lab has, nor one of the same batch (`taken`, which gets it)."""
    while True:
        name = f"{prefix}-{''.join(random.choices(NAME_ALPHABET, k=5))}"
        if f"{m.namespace}/{name}" not in state.pods and name not in taken:
            taken.add(name)
            return name


def _add_replicas(state: LabState, m: Manifest, count: int) -> None:
    assert m.template is not None
    taken: set[str] = set()
    names = [_pod_name(state, m, f"{m.name}-{m.template_hash}", taken) for _ in range(count)]
    nodes: list[str] = []
    for _ in names:  # scheduled before any starts: the pods start at once
        nodes.append(m.template.node or schedule(state, nodes))
    labels = {**m.template.labels, "pod-template-hash": m.template_hash}
    pods.start_all(
        [
            functools.partial(_add_pod, state, name, m, node, labels, m.key)
            for name, node in zip(names, nodes, strict=True)
        ]
    )


def daemon_nodes(state: LabState, template: PodTemplate) -> list[str]:
    """The nodes a DaemonSet runs a pod on: every node, or only the one its template's
    spec.nodeName names, as the DaemonSet controller decides."""
    return [template.node] if template.node else list(state.nodes)


def _apply_daemonset(state: LabState, m: Manifest, emit: Emit) -> None:
    """One pod on each of its nodes, each labelled with the template's
    controller-revision-hash as the DaemonSet controller labels them; a new template
    replaces them all."""
    assert m.template is not None
    nodes = daemon_nodes(state, m.template)
    record = state.daemonsets.get(m.key)
    owned = sorted(key for key, pod in state.pods.items() if pod.owner == m.key)
    if record is not None and record.template_hash == m.template_hash:
        covered = {state.pods[key].node for key in owned}
        if covered >= set(nodes):
            emit(f"{m.kind_phrase}/{m.name} unchanged")
            return
        _add_daemon_pods(state, m, [node for node in nodes if node not in covered])
        emit(f"{m.kind_phrase}/{m.name} configured")
        return
    for key in owned:
        pods.remove(state, key)
    state.daemonsets[m.key] = Deployment(m.template_hash, len(nodes))
    state.save()
    _add_daemon_pods(state, m, nodes)
    emit(f"{m.kind_phrase}/{m.name} {'created' if record is None else 'configured'}")


def _add_daemon_pods(state: LabState, m: Manifest, nodes: list[str]) -> None:
    template = m.template
    assert template is not None
    labels = {
        **template.labels,
        "controller-revision-hash": m.template_hash,
        "pod-template-generation": "1",
    }
    taken: set[str] = set()
    pods.start_all(
        [
            functools.partial(
                _add_pod, state, _pod_name(state, m, m.name, taken), m, node, labels, m.key
            )
            for node in nodes
        ]
    )


def delete(state: LabState, manifests: list[Manifest], emit: Emit, complain: Emit) -> int:
    """Delete what the manifests name; what is not there is complained about (exit 1)."""
    if not manifests:
        raise LabError("no objects passed to delete")
    if any(m.kind == "Namespace" and m.name == "default" for m in manifests):
        raise LabError('namespaces "default" is forbidden: this namespace may not be deleted')
    missing: list[Manifest] = []
    for m in manifests:
        if m.kind == "Skipped":
            complain(m.warning)
        elif m.kind == "Pod":
            if m.key in state.pods:
                pods.remove(state, m.key)
                emit(f'pod "{m.name}" deleted')
            else:
                missing.append(m)
        elif m.kind in ("Deployment", "DaemonSet"):
            if _delete_deployment(state, m.key, m.kind):
                emit(f'{m.kind_phrase} "{m.name}" deleted')
            else:
                missing.append(m)
    # Namespaces last: deleting one takes the service accounts and policies in it along.
    for kind in ("NetworkPolicy", "ServiceAccount", "Namespace"):
        for m in manifests:
            if m.kind == kind:
                if _delete_resource(state, m):
                    emit(f'{m.kind_phrase} "{m.name}" deleted')
                else:
                    missing.append(m)
    problems = [
        f'Error from server (NotFound): {PLURALS[m.kind]} "{m.name}" not found' for m in missing
    ]
    calico = [m for m in manifests if m.kind == "Calico"]
    if calico:
        try:
            for line in kube_store.calicoctl(state, "delete", _documents(calico)).splitlines():
                emit(line)
        except LabError as exc:
            problems.append(str(exc))
    for problem in problems:
        complain(problem)
    return 1 if problems else 0


def _delete_deployment(state: LabState, key: str, kind: str = "Deployment") -> bool:
    """Delete a Deployment or DaemonSet and its pods; False if there was none."""
    records = state.deployments if kind == "Deployment" else state.daemonsets
    owned = [k for k, pod in state.pods.items() if pod.owner == key]
    if key not in records and not owned:
        return False
    for pod_key in owned:
        pods.remove(state, pod_key)
    records.pop(key, None)
    state.save()
    return True


def _delete_resource(state: LabState, m: Manifest) -> bool:
    if m.kind == "NetworkPolicy":
        name = conversions.POLICY_PREFIX + m.name
        return kube_store.session(
            state, lambda c: kube_store.remove(c, "NetworkPolicy", name, m.namespace)
        )
    if m.kind == "ServiceAccount":
        name = m.resource["metadata"]["name"]
        return kube_store.session(state, lambda c: kube_store.remove(c, "Profile", name))
    # A namespace takes its pods, deployments, converted policies and profiles with it.
    profile = conversions.namespace_profile_name(m.name)
    if not kube_store.session(state, lambda c: kube_store.exists(c, "Profile", profile)):
        return False
    for key in [k for k in state.deployments if k.startswith(f"{m.name}/")]:
        _delete_deployment(state, key)
    for key in [k for k in state.daemonsets if k.startswith(f"{m.name}/")]:
        _delete_deployment(state, key, "DaemonSet")
    for key in [k for k in state.pods if k.startswith(f"{m.name}/")]:
        pods.remove(state, key)
    kube_store.session(state, lambda c: kube_store.delete_namespace_objects(c, m.name))
    return True
