"""Deleting an IPPool the way Calico does: disable, let allocators notice, release, delete."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from pycalico.api.registry import resolve
from pycalico.api.resource import identity_of
from pycalico.datastore.resources import ResourceClient, ResourceNotFound, UpdateConflict
from pycalico.ipam import keys
from pycalico.ipam.allocator import Allocator

# Long enough for an allocation that read the pool list before the disable to finish.
SETTLE_SECONDS = 0.5


def delete_pool(
    client: ResourceClient, name: str, resource_version: str | None = None
) -> dict[str, Any]:
    kind = resolve("IPPool")
    pool = client.get(kind, name)
    if pool is None:
        raise ResourceNotFound(identity_of("IPPool", name))
    if resource_version and pool["metadata"]["resourceVersion"] != resource_version:
        raise UpdateConflict(identity_of("IPPool", name))
    cidr = ipaddress.ip_network(pool["spec"]["cidr"])
    blocks = client.backend.list(keys.block_prefix(cidr.version))[0]
    if not any(keys.parse_block_key(kv.key).subnet_of(cidr) for kv in blocks):  # type: ignore[arg-type]
        return client.delete(kind, name, None, pool["metadata"]["resourceVersion"])
    if not pool["spec"].get("disabled"):
        pool = client.update(kind, {**pool, "spec": {**pool["spec"], "disabled": True}})
        time.sleep(SETTLE_SECONDS)
    Allocator(client.backend).release_pool_affinities(cidr)
    return client.delete(kind, name, None, pool["metadata"]["resourceVersion"])
