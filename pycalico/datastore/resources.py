"""v3 resources on top of a Backend: keys, storage encoding, CAS updates, watches.

Keys follow Calico's etcd layout (`/calico/resources/v3/projectcalico.org/<plural>/[<ns>/]<name>`)
and values are the resource JSON without `resourceVersion`, which is the key's mod revision.
Policies are stored under their tiered name, as Calico stores them: a default-tier policy
named `allow` is `default.allow` in its key and stored JSON, and reads give back `allow`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

from pycalico.api import consistency
from pycalico.api.kind import Kind
from pycalico.api.meta import OBJECT_META
from pycalico.api.resource import identity, identity_of
from pycalico.api.schema import ValidationErrors
from pycalico.datastore.backend import (
    Backend,
    Compare,
    DatastoreUnavailable,
    Delete,
    EventType,
    KeyExists,
    KeyNotFound,
    KeyValue,
    Put,
    RevisionConflict,
)

PREFIX = "/calico/resources/v3/projectcalico.org/"
_META_ORDER = tuple(OBJECT_META.by_name)


class ResourceError(Exception):
    """A datastore-level failure for one resource, worded as libcalico-go words it."""


class ResourceNotFound(ResourceError):
    def __init__(self, ident: str) -> None:
        super().__init__(f"resource does not exist: {ident} with error: not found")


class ResourceExists(ResourceError):
    def __init__(self, ident: str) -> None:
        super().__init__(f"resource already exists: {ident}")


class UpdateConflict(ResourceError):
    def __init__(self, ident: str) -> None:
        super().__init__(f"update conflict: {ident}")


# Calico keeps the IPAM configuration with the rest of IPAM, in its own JSON (reference
# ipam.md §2.4-§2.5), not under the v3 resources.
IPAM_CONFIG_KEY = "/calico/ipam/v2/config"
IPAM_CONFIG_FIELDS = (
    ("strictAffinity", "strict_affinity", False),
    ("autoAllocateBlocks", "auto_allocate_blocks", True),
    ("maxBlocksPerHost", "maxBlocksPerHost", 0),
)


def _is_ipam_config(kind: Kind) -> bool:
    return kind.name == "IPAMConfiguration"


def kind_prefix(kind: Kind, namespace: str | None = None) -> str:
    if _is_ipam_config(kind):
        return IPAM_CONFIG_KEY
    if kind.namespaced and namespace:
        return f"{PREFIX}{kind.plural}/{namespace}/"
    return f"{PREFIX}{kind.plural}/"


def _stored_name(kind: Kind, name: str) -> str:
    """The name `kind`/`name` is stored under: a policy without a tier prefix belongs to the
    default tier, and Calico keys it `default.<name>`. (Dotted names, Kubernetes' `knp.`
    ones included, already carry their tier.)"""
    if kind.name in consistency.POLICY_KINDS and "." not in name:
        return f"default.{name}"
    return name


def _client_name(kind: Kind, name: str) -> str:
    """The name a stored object is read back with: `default.<name>` policies as `<name>`."""
    if kind.name in consistency.POLICY_KINDS and name.startswith("default."):
        return name[len("default.") :]
    return name


def resource_key(kind: Kind, name: str, namespace: str | None = None) -> str:
    if _is_ipam_config(kind):
        return IPAM_CONFIG_KEY  # a singleton: its name can only be `default`
    name = _stored_name(kind, name)
    if kind.namespaced:
        return f"{PREFIX}{kind.plural}/{namespace or 'default'}/{name}"
    return f"{PREFIX}{kind.plural}/{name}"


def _encode(kind: Kind, resource: dict[str, Any]) -> str:
    if _is_ipam_config(kind):
        spec = resource["spec"]
        config = {stored: spec.get(field, default) for field, stored, default in IPAM_CONFIG_FIELDS}
        return json.dumps(config, separators=(",", ":"))
    stored = dict(resource)
    stored["metadata"] = {k: v for k, v in resource["metadata"].items() if k != "resourceVersion"}
    stored["metadata"]["name"] = _stored_name(kind, stored["metadata"]["name"])
    return json.dumps(stored, separators=(",", ":"), ensure_ascii=False)


def _decode(kind: Kind, key: str, value: str, mod_revision: int) -> dict[str, Any]:
    if _is_ipam_config(kind):
        return _decode_ipam_config(key, value, mod_revision)
    try:
        resource: dict[str, Any] = json.loads(value)
        meta = resource["metadata"]
        meta["name"] = _client_name(kind, meta["name"])
        meta["resourceVersion"] = str(mod_revision)
        resource["metadata"] = {k: meta[k] for k in _META_ORDER if k in meta}
    except (ValueError, TypeError, KeyError, AttributeError):
        # Something else wrote here (a foreign tool, a damaged value): say where, plainly.
        raise DatastoreUnavailable(f"cannot read {key}: not a stored Calico resource") from None
    return resource


def decode(kind: Kind, kv: KeyValue) -> dict[str, Any]:
    """A stored value of `kind` as its resource, decoded anew (`ResourceClient` keeps the
    decoded resource where its backend keeps it: a mirror does)."""
    return _decode(kind, kv.key, kv.value, kv.mod_revision)


def _decode_ipam_config(key: str, value: str, mod_revision: int) -> dict[str, Any]:
    from pycalico.api.resource import normalize

    try:
        stored = json.loads(value)
        spec = {field: stored.get(name, default) for field, name, default in IPAM_CONFIG_FIELDS}
        resource = normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "IPAMConfiguration",
                "metadata": {"name": "default"},
                "spec": spec,
            }
        )
    except (ValueError, TypeError, AttributeError):
        raise DatastoreUnavailable(f"cannot read {key}: not a stored Calico IPAM config") from None
    resource["metadata"]["resourceVersion"] = str(mod_revision)
    return resource


# pycalico's own keys, outside Calico's resource tree (a Calico sharing the store never
# sees them) and still under /calico/, where etcd credentials scoped to Calico reach.
GUARD_PREFIX = "/calico/pycalico/guards/"


def _guard_key(kind: Kind) -> str:
    return f"{GUARD_PREFIX}{kind.plural}"


def migrate_guards(backend: Backend) -> list[str]:
    """Move guard keys of earlier versions (`<resources>/<plural>-guard`, inside Calico's
    resource tree) to `GUARD_PREFIX`, all in one transaction; the old keys moved."""
    from pycalico.api.registry import resolve

    moved = []
    for name in sorted(consistency.NEEDS_EXISTING_ON_CREATE):
        kind = resolve(name)
        old = backend.get(f"{PREFIX}{kind.plural}-guard")
        if old is not None:
            moved.append((old, _guard_key(kind)))
    if moved:
        backend.txn(
            [Compare(old.key, old.mod_revision) for old, _ in moved],
            [op for old, new in moved for op in (Delete(old.key), Put(new, ""))],
        )
    return [old.key for old, _ in moved]


def _tier_kind() -> Kind:
    from pycalico.api.registry import resolve

    return resolve("Tier")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class ResourceClient:
    """Create/read/update/delete/watch canonical resources (already validated)."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        # kind -> (guard revision, every object of the kind). Creates checked against all
        # existing objects reuse it while the guard is unchanged (nobody else created or
        # deleted one), which keeps a 1000-pool apply linear instead of quadratic.
        self._existing: dict[str, tuple[int, list[dict[str, Any]]]] = {}

    def _all_existing(self, kind: Kind) -> tuple[int, list[dict[str, Any]]]:
        """Every object of `kind` and the guard revision they were read under."""
        guard = self.backend.get(_guard_key(kind))
        guard_revision = 0 if guard is None else guard.mod_revision
        cached = self._existing.get(kind.name)
        if cached is not None and cached[0] == guard_revision:
            return cached
        items, _ = self.list(kind)
        self._existing[kind.name] = (guard_revision, items)
        return guard_revision, items

    def _check_tier_deletable(self, name: str) -> None:
        from pycalico.api.policy import BUILTIN_TIERS
        from pycalico.api.registry import resolve

        if name in BUILTIN_TIERS:
            raise ResourceError(
                f"operation Delete is not supported on Tier({name}): "
                "the built-in tiers cannot be deleted"
            )
        for kind_name in consistency.POLICY_KINDS:
            policies, _ = self.list(resolve(kind_name))
            if any(p["spec"].get("tier") == name for p in policies):
                raise ResourceError(
                    f"Cannot delete a non-empty tier: Tier({name}) still has {kind_name} resources"
                )

    def _check_tier(self, resource: dict[str, Any]) -> None:
        tier = consistency.tier_to_check(resource)
        if tier is not None and self.backend.get(resource_key(_tier_kind(), tier)) is None:
            raise ResourceError(
                f"resource does not exist: Tier({tier}) with error: "
                f"the tier of {identity(resource)} must be created first"
            )

    def get(self, kind: Kind, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        kv = self.backend.get(resource_key(kind, name, namespace))
        return None if kv is None else self._decoded(kind, kv)

    def list(self, kind: Kind, namespace: str | None = None) -> tuple[list[dict[str, Any]], int]:
        """Every resource of `kind` (in `namespace`, or all namespaces if None), by key."""
        kvs, revision = self.backend.list(kind_prefix(kind, namespace))
        return [self._decoded(kind, kv) for kv in kvs], revision

    def _decoded(self, kind: Kind, kv: KeyValue) -> dict[str, Any]:
        return self.backend.decoded(kv, lambda kv: decode(kind, kv))

    def create(self, kind: Kind, resource: dict[str, Any]) -> dict[str, Any]:
        meta = resource["metadata"]
        if meta.get("resourceVersion"):
            raise ResourceError(
                f"error with field Metadata.ResourceVersion = '{meta['resourceVersion']}' "
                "(field must not be set for a Create request)"
            )
        self._check_tier(resource)
        stored = _with_meta(
            resource,
            uid=meta.get("uid") or str(uuid.uuid4()),
            creationTimestamp=meta.get("creationTimestamp") or _now(),
        )
        key = resource_key(kind, meta["name"], meta.get("namespace"))
        if kind.name in consistency.NEEDS_EXISTING_ON_CREATE:
            return self._create_guarded(kind, key, stored)
        try:
            revision = self.backend.create(key, _encode(kind, stored))
        except KeyExists:
            raise ResourceExists(identity(resource)) from None
        return _with_meta(stored, resourceVersion=str(revision))

    def _create_guarded(self, kind: Kind, key: str, stored: dict[str, Any]) -> dict[str, Any]:
        """Create, checked against every existing object in the same transaction.

        The kind's guard key changes with every create and delete, so two concurrent
        creates of overlapping pools cannot both pass the check.
        """
        guard = _guard_key(kind)
        while True:
            guard_revision, existing = self._all_existing(kind)
            errors = consistency.check_create(stored, existing)
            if errors:
                raise ValidationErrors(errors)
            try:
                revision = self.backend.txn(
                    [Compare(key, 0), Compare(guard, guard_revision)],
                    [Put(key, _encode(kind, stored)), Put(guard, "")],
                )
            except RevisionConflict as exc:
                if exc.key == key:
                    raise ResourceExists(identity(stored)) from None
                continue  # someone else created or deleted one: check again
            created = _with_meta(stored, resourceVersion=str(revision))
            self._existing[kind.name] = (revision, [*existing, created])
            return created

    def update(self, kind: Kind, resource: dict[str, Any]) -> dict[str, Any]:
        """Replace a resource; its `resourceVersion` must be the one last read."""
        meta = resource["metadata"]
        version = meta.get("resourceVersion", "")
        if not version:
            raise ResourceError(
                "error with field Metadata.ResourceVersion = '' "
                "(field must be set for an Update request)"
            )
        if not (version.isascii() and version.isdigit() and int(version) > 0):
            raise ResourceError(
                f"error with field Metadata.ResourceVersion = '{version}' "
                "(must be a revision number this datastore returned)"
            )
        key = resource_key(kind, meta["name"], meta.get("namespace"))
        current = self.backend.get(key)
        if current is None:
            raise ResourceNotFound(identity(resource))
        self._check_tier(resource)
        old = json.loads(current.value)
        stored = _with_meta(
            resource,
            uid=old["metadata"].get("uid"),
            creationTimestamp=old["metadata"].get("creationTimestamp"),
        )
        if kind.name in consistency.NEEDS_EXISTING_ON_UPDATE:
            return self._update_guarded(kind, key, stored, old, int(version))
        errors = consistency.check_update(resource, old, ())
        if errors:
            raise ValidationErrors(errors)
        try:
            revision = self.backend.update(key, _encode(kind, stored), int(meta["resourceVersion"]))
        except KeyNotFound:
            raise ResourceNotFound(identity(resource)) from None
        except RevisionConflict:
            raise UpdateConflict(identity(resource)) from None
        return _with_meta(stored, resourceVersion=str(revision))

    def _update_guarded(
        self, kind: Kind, key: str, stored: dict[str, Any], old: dict[str, Any], expected: int
    ) -> dict[str, Any]:
        """Update, checked against every other object of the kind in the same transaction,
        which also moves the guard, so no concurrent write can slip past the check."""
        guard = _guard_key(kind)
        while True:
            guard_revision, existing = self._all_existing(kind)
            errors = consistency.check_update(stored, old, existing)
            if errors:
                raise ValidationErrors(errors)
            try:
                revision = self.backend.txn(
                    [Compare(key, expected), Compare(guard, guard_revision)],
                    [Put(key, _encode(kind, stored)), Put(guard, "")],
                )
            except RevisionConflict as exc:
                if exc.key != key:
                    continue  # someone else wrote one of the kind: check again
                if exc.actual == 0:
                    raise ResourceNotFound(identity(stored)) from None
                raise UpdateConflict(identity(stored)) from None
            updated = _with_meta(stored, resourceVersion=str(revision))
            others = [r for r in existing if identity(r) != identity(stored)]
            self._existing[kind.name] = (revision, [*others, updated])
            return updated

    def apply(self, kind: Kind, resource: dict[str, Any]) -> dict[str, Any]:
        """Create, or replace the current object (at the given or the current revision).

        As calicoctl's apply, a missing object is created whatever resourceVersion the input
        carries, so a dump taken from another store applies cleanly.
        """
        meta = resource["metadata"]
        while True:
            current = self.get(kind, meta["name"], meta.get("namespace"))
            if current is None:
                try:
                    return self.create(kind, _with_meta(resource, drop=("resourceVersion",)))
                except ResourceExists:
                    continue  # created concurrently: replace it instead
            version = meta.get("resourceVersion") or current["metadata"]["resourceVersion"]
            try:
                return self.update(kind, _with_meta(resource, resourceVersion=version))
            except (UpdateConflict, ResourceNotFound):
                if meta.get("resourceVersion"):
                    raise
                # Someone wrote in between; apply means "make it so", so retry on fresh state.

    def delete(
        self,
        kind: Kind,
        name: str,
        namespace: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        key = resource_key(kind, name, namespace)
        ident = identity_of(kind.name, name, namespace if kind.namespaced else None)
        if kind.name == "Tier":
            self._check_tier_deletable(name)
        try:
            expected = int(resource_version) if resource_version else None
            if kind.name in consistency.NEEDS_EXISTING_ON_CREATE:
                old = self._delete_guarded(kind, key, expected)
            else:
                old = self.backend.delete(key, expected)
        except KeyNotFound:
            raise ResourceNotFound(ident) from None
        except RevisionConflict:
            raise UpdateConflict(ident) from None
        except ValueError:
            raise ResourceError(f"invalid resourceVersion '{resource_version}'") from None
        return _decode(kind, old.key, old.value, old.mod_revision)

    def _delete_guarded(self, kind: Kind, key: str, expected: int | None) -> KeyValue:
        while True:
            current = self.backend.get(key)
            if current is None:
                raise KeyNotFound(key)
            if expected is not None and current.mod_revision != expected:
                raise RevisionConflict(key, expected, current.mod_revision)
            try:
                self.backend.txn(
                    [Compare(key, current.mod_revision)], [Delete(key), Put(_guard_key(kind), "")]
                )
            except RevisionConflict:
                continue
            return current

    def watch(
        self, kind: Kind, after_revision: int, namespace: str | None = None
    ) -> Iterator[tuple[str, dict[str, Any]]]:
        """("put"|"delete", resource) for every change after `after_revision`, in order."""
        with self.backend.watch(kind_prefix(kind, namespace), after_revision) as stream:
            for event in stream:
                kind_of_event = "delete" if event.type is EventType.DELETE else "put"
                yield kind_of_event, _decode(kind, event.key, event.value, event.revision)


def _with_meta(
    resource: dict[str, Any], drop: tuple[str, ...] = (), **fields: Any
) -> dict[str, Any]:
    meta = {**resource["metadata"], **{k: v for k, v in fields.items() if v is not None}}
    for key in drop:
        meta.pop(key, None)
    return {**resource, "metadata": {k: meta[k] for k in _META_ORDER if k in meta}}
