"""`calico-lab label node NODE KEY=VALUE... | KEY-`: kubectl label for the lab's nodes.

In a Kubernetes cluster kube-controllers copies a node's labels onto its Calico Node
(`syncLabels`); the lab has no Kubernetes node objects, so the labels go onto the Calico
Node directly, where nodeSelectors (BGPPeer, IPPool, policy) read them.
"""

from __future__ import annotations

from collections.abc import Sequence

from pycalico.api import checks
from pycalico.lab.state import LabError, LabState


def changes(args: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """(labels to set, keys to remove) from kubectl's arguments; a LabError if one is bad."""
    setting: dict[str, str] = {}
    removing: list[str] = []
    for arg in args:
        if "=" in arg:
            key, _, value = arg.partition("=")
            problem = checks.label_key(key) or checks.label_value(value)
        elif arg.endswith("-"):
            key, value = arg[:-1], ""
            problem = checks.label_key(key)
        else:
            raise LabError(f"invalid label spec: {arg} (use KEY=VALUE or KEY-)")
        if problem:
            raise LabError(f"invalid label spec: {arg}: {problem}")
        if key in setting or key in removing:
            raise LabError(f"can not both modify and remove a label in the same command: {key}")
        if "=" in arg:
            setting[key] = value
        else:
            removing.append(key)
    return setting, removing


def relabel(
    current: dict[str, str], setting: dict[str, str], removing: list[str], overwrite: bool
) -> dict[str, str]:
    """The labels after the change, refused as kubectl refuses it (pure)."""
    for key, value in setting.items():
        if key in current and current[key] != value and not overwrite:
            raise LabError(
                f"'{key}' already has a value ({current[key]}), and --overwrite is false"
            )
    new = {k: v for k, v in current.items() if k not in removing}
    new.update(setting)
    return new


def label(state: LabState, node: str, args: Sequence[str], overwrite: bool) -> str:
    from pycalico.api.registry import by_kind_name
    from pycalico.api.resource import normalize
    from pycalico.datastore.resources import ResourceClient
    from pycalico.lab import kube_store

    if node not in state.nodes:
        raise LabError(f'nodes "{node}" not found')
    setting, removing = changes(args)

    def change(client: ResourceClient) -> str:
        kind = by_kind_name("Node")
        current = client.get(kind, node)
        if current is None:
            raise LabError(f'nodes "{node}" not found (calico-node has not registered it)')
        meta = current["metadata"]
        old = dict(meta.get("labels") or {})
        new = relabel(old, setting, removing, overwrite)
        if new == old:
            return f"node/{node} not labeled"
        client.update(kind, normalize({**current, "metadata": {**meta, "labels": new}}))
        return f"node/{node} {'labeled' if setting else 'unlabeled'}"

    return kube_store.session(state, change)
