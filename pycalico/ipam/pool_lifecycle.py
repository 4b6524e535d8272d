"""Deleting an IPPool the way Calico does: disable, let allocators notice, release, delete."""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from pycalico.api.registry import resolve
from pycalico.datastore.resources import ResourceClient, ResourceNotFound
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
        raise ResourceNotFound(f"IPPool({name})")
    cidr = ipaddress.ip_network(pool["spec"]["cidr"])
    has_blocks = any(
        ipaddress.ip_network(kv.key.rsplit("/", 1)[1].replace("-", "/")).subnet_of(cidr)  # type: ignore[arg-type]
        for kv in client.backend.list(keys.block_prefix(cidr.version))[0]
    )
    if has_blocks:
        if not pool["spec"].get("disabled"):
            if resource_version:
                pool["metadata"]["resourceVersion"] = resource_version
            pool = client.update(kind, {**pool, "spec": {**pool["spec"], "disabled": True}})
            time.sleep(SETTLE_SECONDS)
        Allocator(client.backend).release_pool_affinities(cidr)
    return client.delete(
        kind,
        name,
        None,
        pool["metadata"]["resourceVersion"] if has_blocks or resource_version else None,
    )
