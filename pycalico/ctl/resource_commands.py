"""create, replace, apply, delete and get."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from pycalico.api.kind import Kind
from pycalico.api.resource import identity, identity_of
from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.errors import CtlError, UsageError
from pycalico.ctl.inputs import InvalidDocuments
from pycalico.ctl.lookup import can_exist, check_namespace
from pycalico.ctl.session import connect
from pycalico.datastore.resources import (
    ResourceClient,
    ResourceError,
    ResourceExists,
    ResourceNotFound,
)

Resource = dict[str, Any]
PAST = {"create": "created", "replace": "replaced", "apply": "applied", "delete": "deleted"}
OUTPUT_FORMATS = ("ps", "wide", "yaml", "yml", "json", "name")


def run(command: str, args: Sequence[str], allow_version_mismatch: bool) -> int:
    parser = ArgParser(prog=f"calicoctl {command}", add_help=False)
    parser.add_argument("-c", "--config")
    parser.add_argument("-n", "--namespace")
    parser.add_argument("-f", "--filename")
    parser.add_argument("-R", "--recursive", action="store_true")
    if command in ("create", "replace", "apply"):
        parser.add_argument("--skip-empty", action="store_true")
        if command == "create":
            parser.add_argument("--skip-exists", action="store_true")
    if command == "delete":
        parser.add_argument("-s", "--skip-not-exists", action="store_true")
    if command in ("delete", "get"):
        parser.add_argument("kind", nargs="?")
        parser.add_argument("names", nargs="*")
    if command == "get":
        parser.add_argument("-o", "--output", default="ps")
        parser.add_argument("-A", "--all-namespaces", action="store_true")
        parser.add_argument("-l", "--selector")
        parser.add_argument("--export", action="store_true")
    opts = parser.parse_args(list(args))
    check_namespace(opts.namespace)
    if command == "get":
        return _get(opts, allow_version_mismatch)
    if command == "delete" and opts.filename is None:
        return _delete_by_name(opts, allow_version_mismatch)
    if opts.filename is None:
        raise UsageError("-f/--filename is required")
    if command == "delete" and opts.kind:
        raise UsageError("give either -f or a resource type and name, not both")
    try:
        resources = _load(opts.filename, opts.recursive, opts.namespace)
    except InvalidDocuments as exc:
        return _report_invalid(command, exc)
    if not resources:
        if getattr(opts, "skip_empty", False):
            print("No resources specified")
            return 0
        raise CtlError(_nothing_in(opts.filename))
    # Only these can start a store: replace and delete need resources that already exist.
    client = connect(opts.config, allow_version_mismatch, create=command in ("create", "apply"))
    return _write_all(command, client, resources, opts)


def _nothing_in(filename: str) -> str:
    where = "directory" if filename != "-" and os.path.isdir(filename) else "file"
    return f"No resources specified in {where} {filename}"


def _load(filename: str, recursive: bool, namespace: str | None) -> list[Resource]:
    """The validated resources of `-f`; InvalidDocuments (for the caller to report as
    calicoctl reports refused resources), or CtlError for input that is not resources."""
    from pycalico.ctl.inputs import InputError, normalize_all, read_documents

    try:
        return normalize_all(read_documents(filename, recursive), namespace)
    except InvalidDocuments:
        raise
    except InputError as exc:
        raise CtlError(str(exc)) from None


def _report_invalid(command: str, exc: InvalidDocuments) -> int:
    """As calicoctl reports resources its client refused, none of them written (pycalico
    validates the whole input before writing any of it). With several documents, a line
    per refused one says where it is: Calico's message names only the Go field."""
    kinds = exc.kinds()
    _report_failure(command, [{"kind": k} for k in kinds], 0, [e for _, e in exc.failures])
    if len(kinds) > 1:
        for line in exc.where():
            sys.stderr.write(f"  in {line}\n")
    return 1


def _kind_phrase(resources: Sequence[Resource]) -> str:
    kinds = {r["kind"] for r in resources}
    return f"'{kinds.pop()}' resource(s)" if len(kinds) == 1 else "resource(s)"


def _write_all(command: str, client: ResourceClient, resources: list[Resource], opts: Any) -> int:
    """Write in order, reporting as calicoctl does. As Calico's ExecuteConfigCommand,
    create, apply and delete carry on past a resource that fails and report each failure;
    replace stops at the first."""
    from pycalico.api.registry import by_kind_name
    from pycalico.api.schema import ValidationErrors

    if command != "delete":
        try:
            _check_against_store(command, client, resources)
        except ValidationErrors as exc:
            return _report_failure(command, resources, 0, [exc])
    if command != "delete":
        _warn_unenforced(resources)
    done = 0
    errors: list[Exception] = []
    for resource in resources:
        kind = by_kind_name(resource["kind"])
        try:
            _write_one(command, client, kind, resource, opts)
        except ResourceExists as exc:
            if not (command == "create" and opts.skip_exists):
                errors.append(exc)
                if command == "replace":
                    break
                continue
        except ResourceNotFound as exc:
            if not (command == "delete" and opts.skip_not_exists):
                errors.append(exc)
                if command == "replace":
                    break
                continue
        except (ResourceError, ValidationErrors) as exc:
            errors.append(exc)
            if command == "replace":
                break
            continue
        done += 1
    if errors:
        return _report_failure(command, resources, done, errors)
    print(f"Successfully {PAST[command]} {done} {_kind_phrase(resources)}")
    return 0


def _warn_unenforced(resources: list[Resource]) -> None:
    """A line for each resource that asks for something pycalico does not do: accepted, as
    Calico accepts it, but never silently ignored."""
    from pycalico.api import enforcement
    from pycalico.api.staged import NOT_EVALUATED, STAGED_KINDS

    for resource in resources:
        fields = enforcement.unenforced(resource)
        if fields:
            sys.stderr.write(f"Warning: {enforcement.describe(resource, fields)}\n")
        staged_action = resource["spec"].get("stagedAction", "Set")
        if resource["kind"] in STAGED_KINDS and staged_action in ("Learn", "Ignore"):
            meta = resource["metadata"]
            name = f"{meta['namespace']}/{meta['name']}" if meta.get("namespace") else meta["name"]
            sys.stderr.write(
                f"Warning: {resource['kind']} {name}: stagedAction {staged_action}: "
                f"{NOT_EVALUATED}\n"
            )


def _check_against_store(command: str, client: ResourceClient, resources: list[Resource]) -> None:
    """Run the rules that compare a write with stored state (IPPool overlap, duplicate
    BGPPeers, immutable fields) for the whole batch before writing any of it, each document
    seeing the ones before it, so that a batch that would fail part-way through writes nothing.

    Existence errors (create of an existing, replace of a missing resource) are left to the
    write itself, which reports them as calicoctl does.
    """
    from pycalico.api import consistency
    from pycalico.api.registry import by_kind_name, resolve
    from pycalico.api.schema import FieldError, ValidationErrors

    stored: dict[str, dict[str, Resource]] = {}
    tiers_in_batch = {r["metadata"]["name"] for r in resources if r["kind"] == "Tier"}
    for resource in resources:
        tier = consistency.tier_to_check(resource)
        if (
            tier is not None
            and tier not in tiers_in_batch
            and client.get(resolve("Tier"), tier) is None
        ):
            raise ValidationErrors([FieldError("spec.tier", tier, "tier does not exist")])
        if resource["kind"] not in consistency.NEEDS_EXISTING_ON_CREATE:
            continue  # no other kind has rules that compare with stored objects
        kind = by_kind_name(resource["kind"])
        if kind.name not in stored:
            stored[kind.name] = {identity(r): r for r in client.list(kind)[0]}
        view = stored[kind.name]
        ident = identity(resource)
        current = view.get(ident)
        if current is not None:
            errors = (
                consistency.check_update(resource, current, list(view.values()))
                if command != "create"
                else []
            )
        elif command != "replace":
            errors = consistency.check_create(resource, list(view.values()))
        else:
            errors = []
        if errors:
            raise ValidationErrors(errors)
        if current is None or command != "create":
            view[ident] = resource


def _write_one(
    command: str, client: ResourceClient, kind: Kind, resource: Resource, opts: Any
) -> None:
    meta = resource["metadata"]
    if command == "create":
        client.create(kind, _without_store_metadata(resource))
    elif command == "apply":
        client.apply(kind, _without_store_metadata(resource))
    elif command == "replace":
        if not meta.get("resourceVersion"):
            current = client.get(kind, meta["name"], meta.get("namespace"))
            if current is None:
                raise ResourceNotFound(identity(resource))
            resource = {
                **resource,
                "metadata": {**meta, "resourceVersion": current["metadata"]["resourceVersion"]},
            }
        client.update(kind, resource)
    else:
        _delete(client, kind, meta["name"], meta.get("namespace"), meta.get("resourceVersion"))


# Metadata the datastore owns: a file's copy (e.g. a dump from another cluster) is ignored,
# as calicoctl's prepareMetadataForCreate ignores it.
_STORE_OWNED_METADATA = (
    "uid",
    "creationTimestamp",
    "selfLink",
    "generation",
    "managedFields",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)


def _without_store_metadata(resource: Resource) -> Resource:
    meta = {k: v for k, v in resource["metadata"].items() if k not in _STORE_OWNED_METADATA}
    return {**resource, "metadata": meta}


def _delete(
    client: ResourceClient,
    kind: Kind,
    name: str,
    namespace: str | None,
    resource_version: str | None = None,
) -> None:
    if kind.name == "IPPool":
        from pycalico.ipam.pool_lifecycle import delete_pool

        delete_pool(client, name, resource_version)
    elif kind.name == "Node":
        from pycalico.ipam.node_lifecycle import delete_node

        delete_node(client, name, resource_version)
    else:
        client.delete(kind, name, namespace, resource_version)


def _report_failure(
    command: str, resources: list[Resource], done: int, errors: Sequence[BaseException]
) -> int:
    kind_word = {r["kind"] for r in resources}
    kind_name = f"'{kind_word.pop()}' " if len(kind_word) == 1 else ""
    if command == "delete":
        for exc in errors:
            sys.stderr.write(f"Failed to delete {kind_name}resource: {exc}\n")
        if done:
            print(f"Successfully deleted {done} {_kind_phrase(resources)}")
        return 1
    listed = "[" + " ".join(str(exc) for exc in errors) + "]"  # as Go prints []error
    if done:
        print(
            f"Partial success: {PAST[command]} the first {done} out of {len(resources)} "
            f"{kind_name}resources:"
        )
        word = "Hit error(s)" if command == "apply" else "Hit error"
        sys.stderr.write(f"{word}: {listed}\n")
    elif len(resources) == 1:
        sys.stderr.write(f"Failed to {command} {kind_name}resource: {listed}\n")
    else:
        sys.stderr.write(f"Failed to {command} any {kind_name}resources: {listed}\n")
    return 1


def _resolve_kind(name: str) -> Kind:
    from pycalico.api.registry import UnknownKind, resolve

    try:
        return resolve(name)
    except UnknownKind:
        raise CtlError(
            f"Failed to get resources: resource type '{name}' is not supported"
        ) from None


def _delete_by_name(opts: Any, allow_version_mismatch: bool) -> int:
    if not opts.kind or not opts.names:
        raise UsageError("delete needs a resource type and at least one name, or -f")
    kind = _resolve_kind(opts.kind)
    namespace = (opts.namespace or "default") if kind.namespaced else None
    client = connect(opts.config, allow_version_mismatch)
    deleted, failed = 0, False
    for name in opts.names:
        try:
            if not can_exist(kind, name):
                raise ResourceNotFound(identity_of(kind.name, repr(name)[1:-1], namespace))
            _delete(client, kind, name, namespace)
            deleted += 1
        except ResourceNotFound as exc:
            if opts.skip_not_exists:
                deleted += 1  # calicoctl counts a skipped resource as handled
                continue
            sys.stderr.write(f"Failed to delete '{kind.name}' resource: {exc}\n")
            failed = True
        except ResourceError as exc:
            sys.stderr.write(f"Failed to delete '{kind.name}' resource: {exc}\n")
            failed = True
    if deleted or not failed:
        print(f"Successfully deleted {deleted} '{kind.name}' resource(s)")
    return 1 if failed else 0


def _get(opts: Any, allow_version_mismatch: bool) -> int:
    output = opts.output
    columns_spec: list[str] | None = None
    if output.startswith("custom-columns="):
        columns_spec = [c for c in output[len("custom-columns=") :].split(",") if c.strip()]
        if not columns_spec:
            raise CtlError("custom-columns needs at least one column name")
    elif output.startswith(("go-template", "jsonpath")):
        raise CtlError(f"output format '{output.split('=', 1)[0]}' is not supported by pycalico")
    elif output not in OUTPUT_FORMATS:
        raise CtlError(f"unrecognized output format '{output}'")
    if opts.all_namespaces and opts.namespace:
        raise UsageError("-A and -n cannot be used together")
    match: Callable[[Resource], bool] = lambda r: True  # noqa: E731
    if opts.selector is not None:
        from pycalico.selector import SelectorError, parse

        try:
            sel = parse(opts.selector)
        except SelectorError as exc:
            raise CtlError(f"invalid selector '{opts.selector}': {exc}") from None
        match = lambda r: sel.evaluate(r["metadata"].get("labels", {}))  # noqa: E731

    if opts.filename is not None:
        if opts.kind:
            raise UsageError("give either -f or a resource type, not both")
        try:
            loaded = _load(opts.filename, opts.recursive, opts.namespace)
        except InvalidDocuments as exc:
            return _report_invalid("get", exc)
        wanted = [
            (r["kind"], r["metadata"]["name"], r["metadata"].get("namespace")) for r in loaded
        ]
        if not wanted:
            raise CtlError(_nothing_in(opts.filename))
        client = connect(opts.config, allow_version_mismatch)
        return _get_by_identity(client, wanted, output, columns_spec, opts)
    if not opts.kind:
        raise UsageError("get needs a resource type (e.g. calicoctl get ippools)")
    kind = _resolve_kind(opts.kind)
    namespace = None
    if kind.namespaced and not opts.all_namespaces:
        namespace = opts.namespace or "default"
    client = connect(opts.config, allow_version_mismatch)
    if opts.names:
        if kind.namespaced and opts.all_namespaces:
            raise CtlError("cannot use --all-namespace flag for getting a single resource")
        wanted = [(kind.name, n, namespace) for n in opts.names]
        return _get_by_identity(client, wanted, output, columns_spec, opts)
    items, revision = client.list(kind, namespace)
    items = [r for r in items if match(r)]
    _print(client, kind, items, revision, output, columns_spec, opts, single=False)
    return 0


def _get_by_identity(
    client: ResourceClient,
    wanted: list[tuple[str, str, str | None]],
    output: str,
    columns_spec: list[str] | None,
    opts: Any,
) -> int:
    from pycalico.api.registry import by_kind_name

    found: list[Resource] = []
    failed = False
    for kind_name, name, namespace in wanted:
        kind = by_kind_name(kind_name)
        resource = (
            client.get(kind, name, namespace if kind.namespaced else None)
            if can_exist(kind, name)
            else None
        )
        if resource is None:
            ident = identity_of(kind.name, name, namespace if kind.namespaced else None)
            sys.stderr.write(f"{ResourceNotFound(ident)}\n")
            failed = True
        else:
            found.append(resource)
    revision = client.backend.revision()
    kinds = list(dict.fromkeys(r["kind"] for r in found))
    if len(kinds) > 1 and output in ("yaml", "yml", "json"):
        # One document for resources of several kinds, as a plain List.
        _print(client, None, found, revision, output, columns_spec, opts, single=False)
    else:
        for kind_name in kinds:  # a table per kind
            items = [r for r in found if r["kind"] == kind_name]
            _print(
                client,
                by_kind_name(kind_name),
                items,
                revision,
                output,
                columns_spec,
                opts,
                single=len(wanted) == 1,
            )
    return 1 if failed else 0


def _print(
    client: ResourceClient,
    kind: Kind | None,
    items: list[Resource],
    revision: int,
    output: str,
    columns_spec: list[str] | None,
    opts: Any,
    single: bool,
) -> None:
    if opts.export:
        items = [_exported(r) for r in items]
    if output in ("yaml", "yml", "json"):
        from pycalico.api.codec import dump_json, dump_yaml

        doc: Any = (
            items[0]
            if single and len(items) == 1
            else {
                "kind": f"{kind.name}List" if kind else "List",
                "apiVersion": "projectcalico.org/v3",
                "metadata": {"resourceVersion": str(revision)},
                "items": items,
            }
        )
        sys.stdout.write(dump_json(doc) + "\n" if output == "json" else dump_yaml(doc))
        return
    if output == "name":
        for r in items:
            sys.stdout.write(f"{r['kind'].lower()}.projectcalico.org/{r['metadata']['name']}\n")
        return
    from pycalico.ctl import tables

    with_ns = kind.namespaced and (opts.all_namespaces or opts.namespace is not None)
    if columns_spec is not None:
        try:
            cols = tables.custom_columns(kind.name, columns_spec, with_ns)
        except ValueError as exc:
            raise CtlError(str(exc)) from None
    else:
        cols = tables.columns_for(kind.name, output == "wide", with_ns)
    ctx = tables.TableContext()
    if kind.name == "Node" and any(h == "ASN" for h, _ in cols):
        ctx.global_asn = _global_asn(client)
    sys.stdout.write(tables.table(items, cols, ctx))


def _global_asn(client: ResourceClient) -> str:
    from pycalico.api.registry import resolve

    config = client.get(resolve("BGPConfiguration"), "default")
    return str((config or {}).get("spec", {}).get("asNumber", 64512))


def _exported(resource: Resource) -> Resource:
    meta = {
        k: v
        for k, v in resource["metadata"].items()
        if k not in ("uid", "resourceVersion", "creationTimestamp", "generation")
    }
    return {**resource, "metadata": meta}
