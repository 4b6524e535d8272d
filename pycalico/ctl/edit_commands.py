"""patch and label: read-modify-write of one resource, retried on update conflicts."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from pycalico.api.resource import identity_of
from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.errors import CtlError, UsageError
from pycalico.ctl.lookup import can_exist, check_namespace
from pycalico.ctl.session import connect
from pycalico.datastore.resources import ResourceError, ResourceNotFound, UpdateConflict

Resource = dict[str, Any]
MAX_ATTEMPTS = 10


def run(command: str, args: Sequence[str], allow_version_mismatch: bool) -> int:
    parser = ArgParser(prog=f"calicoctl {command}", add_help=False)
    parser.add_argument("-c", "--config")
    parser.add_argument("-n", "--namespace")
    parser.add_argument("kind")
    parser.add_argument("name")
    if command == "patch":
        parser.add_argument("-p", "--patch", required=True)
        parser.add_argument("-t", "--type", default="strategic")
    else:
        parser.add_argument("label")
        parser.add_argument("--overwrite", action="store_true")
        parser.add_argument("--remove", action="store_true")
    opts = parser.parse_args(list(args))
    from pycalico.api.registry import UnknownKind, resolve

    try:
        kind = resolve(opts.kind)
    except UnknownKind:
        raise CtlError(f"resource type '{opts.kind}' is not supported") from None
    check_namespace(opts.namespace)
    if not can_exist(kind, opts.name):
        raise CtlError(str(ResourceNotFound(identity_of(kind.name, repr(opts.name)[1:-1]))))
    namespace = (opts.namespace or "default") if kind.namespaced else None
    if command == "patch":
        return _patch(kind, opts, namespace, allow_version_mismatch)
    return _label(kind, opts, namespace, allow_version_mismatch)


def merge_patch(target: Any, patch: Any) -> Any:
    """JSON merge patch (RFC 7386): maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _patch(kind: Any, opts: Any, namespace: str | None, allow_version_mismatch: bool) -> int:
    if opts.type != "strategic":
        raise CtlError(f"patch type '{opts.type}' is not supported (only 'strategic')")
    try:
        patch = json.loads(opts.patch)
    except json.JSONDecodeError as exc:
        raise CtlError(f"invalid patch: not valid JSON: {exc.msg} at column {exc.colno}") from None
    if not isinstance(patch, dict):
        raise CtlError("invalid patch: must be a JSON object")
    for forbidden in ("apiVersion", "kind"):
        if forbidden in patch:
            raise CtlError(f"invalid patch: '{forbidden}' cannot be patched")
    if "name" in (patch.get("metadata") or {}) or "namespace" in (patch.get("metadata") or {}):
        raise CtlError("invalid patch: metadata.name and metadata.namespace cannot be patched")

    def change(current: Resource) -> Resource:
        return merge_patch(current, patch)

    _modify(kind, opts, namespace, allow_version_mismatch, "patch", change)
    print(f"Successfully patched 1 '{kind.name}' resource")
    return 0


def _label(kind: Any, opts: Any, namespace: str | None, allow_version_mismatch: bool) -> int:
    key, eq, value = opts.label.partition("=")
    if opts.remove:
        if eq:
            raise UsageError("--remove takes a label key, not key=value")
    elif opts.label.count("=") != 1:
        raise CtlError(f"invalid label {opts.label}")
    # calicoctl names the resource by the type exactly as typed (`ipp`, `IPPools`, ...).
    what = f"{opts.kind} {opts.name}"
    outcome = ""

    def change(current: Resource) -> Resource:
        nonlocal outcome
        labels = dict(current["metadata"].get("labels", {}))
        if opts.remove:
            if key not in labels:
                raise CtlError(f"cannot remove label of {what}, key {key} does not exist")
            del labels[key]
            outcome = f"Successfully removed label {key} from {what}"
        else:
            # Setting the value a label already has is not a conflict (calicoctl).
            if key in labels and not opts.overwrite and labels[key] != value:
                raise CtlError(
                    f"failed to update label of {what}, key {key} is already present. "
                    "please use '--overwrite' to set a new value."
                )
            outcome = f"Successfully {'updated' if key in labels else 'set'} label {key} on {what}"
            labels[key] = value
        meta = {**current["metadata"], "labels": labels}
        if not labels:
            meta.pop("labels")
        return {**current, "metadata": meta}

    _modify(kind, opts, namespace, allow_version_mismatch, "label", change)
    print(outcome)
    return 0


def _modify(
    kind: Any,
    opts: Any,
    namespace: str | None,
    allow_version_mismatch: bool,
    verb: str,
    change: Callable[[Resource], Resource],
) -> None:
    from pycalico.api.resource import normalize
    from pycalico.api.schema import ValidationErrors

    def failure(reason: Any) -> CtlError:
        # calicoctl's wording: patch reports "Hit error: <err>"; label says the label was
        # not changed (pycalico adds the reason, which calicoctl drops).
        if verb == "patch":
            return CtlError(f"Hit error: {reason}")
        return CtlError(f"failed to update {opts.kind} {opts.name}, label not changed: {reason}")

    client = connect(opts.config, allow_version_mismatch)
    for _ in range(MAX_ATTEMPTS):
        current = client.get(kind, opts.name, namespace)
        if current is None:
            if verb == "label":
                raise CtlError(f"{opts.kind} {opts.name} not found")
            raise failure(ResourceNotFound(identity_of(kind.name, opts.name, namespace)))
        version = current["metadata"]["resourceVersion"]
        try:
            updated = normalize(change(current), default_namespace=namespace or "default")
        except ValueError as exc:
            raise failure(exc) from None
        updated["metadata"]["resourceVersion"] = version
        try:
            client.update(kind, updated)
            return
        except UpdateConflict:
            continue
        except (ResourceError, ValidationErrors) as exc:
            raise failure(exc) from None
    raise CtlError(f"gave up after {MAX_ATTEMPTS} conflicting concurrent updates")
