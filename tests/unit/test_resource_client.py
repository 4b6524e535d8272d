"""The resource client: Calico's keys, resourceVersion = mod revision, CAS, write rules, watch."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest

from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.api.schema import ValidationErrors
from pycalico.datastore.resources import (
    ResourceClient,
    ResourceError,
    ResourceExists,
    ResourceNotFound,
    UpdateConflict,
)
from pycalico.datastore.sqlite import SqliteBackend
from tests.support.resources import normalized

IPPOOL = resolve("IPPool")
NETSET = resolve("NetworkSet")


def pool(name: str, cidr: str, **spec: Any) -> dict[str, Any]:
    return normalized("IPPool", name, {"cidr": cidr, **spec})


def netset(name: str, namespace: str) -> dict[str, Any]:
    return normalized("NetworkSet", name, {"nets": ["192.0.2.0/24"]}, namespace=namespace)


def test_resources_live_under_calicos_etcd_keys_without_resource_version(
    client: ResourceClient,
) -> None:
    client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    client.create(NETSET, netset("s1", "prod"))
    kv = client.backend.get("/calico/resources/v3/projectcalico.org/ippools/p1")
    assert kv is not None and "resourceVersion" not in json.loads(kv.value)["metadata"]
    assert client.backend.get("/calico/resources/v3/projectcalico.org/networksets/prod/s1")


def test_create_fills_uid_timestamp_and_resource_version_from_the_revision(
    client: ResourceClient,
) -> None:
    created = client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    meta = created["metadata"]
    assert len(meta["uid"]) == 36 and meta["creationTimestamp"].endswith("Z")
    assert meta["resourceVersion"] == str(client.backend.revision())
    assert list(meta) == ["name", "uid", "resourceVersion", "creationTimestamp"]
    assert client.get(IPPOOL, "p1") == created


def test_create_with_a_resource_version_is_refused(client: ResourceClient) -> None:
    resource = pool("p1", "10.0.0.0/16")
    resource["metadata"]["resourceVersion"] = "5"
    with pytest.raises(ResourceError, match="ResourceVersion"):
        client.create(IPPOOL, resource)


def test_create_twice_says_already_exists(client: ResourceClient) -> None:
    client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    with pytest.raises(ResourceExists, match=r"resource already exists: IPPool\(p1\)"):
        client.create(IPPOOL, pool("p1", "10.0.0.0/16"))


def test_update_with_a_stale_resource_version_is_an_update_conflict(client: ResourceClient) -> None:
    first = client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    client.update(IPPOOL, {**first, "spec": {**first["spec"], "natOutgoing": True}})
    with pytest.raises(UpdateConflict, match=r"update conflict: IPPool\(p1\)"):
        client.update(IPPOOL, first)


def test_update_keeps_uid_and_creation_timestamp(client: ResourceClient) -> None:
    first = client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    changed = pool("p1", "10.0.0.0/16", natOutgoing=True)
    changed["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    updated = client.update(IPPOOL, changed)
    assert updated["metadata"]["uid"] == first["metadata"]["uid"]
    assert updated["metadata"]["creationTimestamp"] == first["metadata"]["creationTimestamp"]


def test_apply_creates_then_replaces(client: ResourceClient) -> None:
    client.apply(IPPOOL, pool("p1", "10.0.0.0/16"))
    client.apply(IPPOOL, pool("p1", "10.0.0.0/16", ipipMode="Always"))
    current = client.get(IPPOOL, "p1")
    assert current is not None and current["spec"]["ipipMode"] == "Always"


def test_overlapping_pools_are_refused_on_create(client: ResourceClient) -> None:
    client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    with pytest.raises(ValidationErrors, match=r"overlaps with IPPool\(p1\)"):
        client.create(IPPOOL, pool("p2", "10.0.128.0/17"))
    client.create(IPPOOL, pool("p3", "10.1.0.0/16"))


def test_overlap_check_sees_pools_written_by_another_client(
    client: ResourceClient, tmp_path: Path
) -> None:
    client.create(IPPOOL, pool("p1", "10.0.0.0/16"))  # primes the client's cached listing
    with SqliteBackend(tmp_path / "store.db", create=True) as other:
        ResourceClient(other).create(IPPOOL, pool("p2", "10.1.0.0/16"))
    with pytest.raises(ValidationErrors, match=r"IPPool\(p2\)"):
        client.create(IPPOOL, pool("p3", "10.1.0.0/24"))


def test_pool_cidr_and_block_size_are_immutable(client: ResourceClient) -> None:
    first = client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    moved = pool("p1", "10.1.0.0/16")
    moved["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    with pytest.raises(ValidationErrors, match="CIDR cannot be modified"):
        client.update(IPPOOL, moved)
    resized = pool("p1", "10.0.0.0/16", blockSize=24)
    resized["metadata"]["resourceVersion"] = first["metadata"]["resourceVersion"]
    with pytest.raises(ValidationErrors, match="BlockSize cannot be modified"):
        client.update(IPPOOL, resized)


def test_list_is_per_namespace_or_across_all(client: ResourceClient) -> None:
    for name, ns in (("a", "prod"), ("b", "prod"), ("c", "dev")):
        client.create(NETSET, netset(name, ns))
    prod, revision = client.list(NETSET, "prod")
    assert [r["metadata"]["name"] for r in prod] == ["a", "b"]
    every, _ = client.list(NETSET)
    assert len(every) == 3 and revision == client.backend.revision()


def test_delete_returns_the_object_and_missing_delete_says_does_not_exist(
    client: ResourceClient,
) -> None:
    client.create(NETSET, netset("a", "prod"))
    assert client.delete(NETSET, "a", "prod")["metadata"]["name"] == "a"
    with pytest.raises(ResourceNotFound, match=r"NetworkSet\(prod/a\)"):
        client.delete(NETSET, "a", "prod")


def test_watch_streams_puts_and_deletes_after_a_list(client: ResourceClient) -> None:
    client.create(IPPOOL, pool("p0", "10.9.0.0/16"))
    _, revision = client.list(IPPOOL)
    seen: list[tuple[str, str]] = []

    def consume() -> None:
        for event, resource in client.watch(IPPOOL, revision):
            seen.append((event, resource["metadata"]["name"]))
            if len(seen) == 3:
                return

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    client.create(IPPOOL, pool("p1", "10.0.0.0/16"))
    client.create(NETSET, netset("not-a-pool", "prod"))
    client.apply(IPPOOL, pool("p1", "10.0.0.0/16", natOutgoing=True))
    client.delete(IPPOOL, "p1")
    reader.join(timeout=10)
    assert not reader.is_alive()
    assert seen == [("put", "p1"), ("put", "p1"), ("delete", "p1")]


def gnp(name: str, tier: str) -> dict[str, Any]:
    return normalized("GlobalNetworkPolicy", name, {"tier": tier})


def test_policy_in_a_created_tier_is_stored_with_its_tier_label(client: ResourceClient) -> None:
    with pytest.raises(ResourceError, match=r"Tier\(security\)"):
        client.create(resolve("GlobalNetworkPolicy"), gnp("security.p", "security"))
    client.create(
        resolve("Tier"),
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": "security"},
                "spec": {"order": 100},
            }
        ),
    )
    stored = client.create(resolve("GlobalNetworkPolicy"), gnp("security.p", "security"))
    assert stored["metadata"]["labels"] == {"projectcalico.org/tier": "security"}


GNP_KEY = "/calico/resources/v3/projectcalico.org/globalnetworkpolicies/"
NP_KEY = "/calico/resources/v3/projectcalico.org/networkpolicies/"


def test_default_tier_policies_are_stored_as_default_dot_name_and_read_by_their_own_name(
    client: ResourceClient,
) -> None:
    kind = resolve("GlobalNetworkPolicy")
    np = normalize(
        {
            "apiVersion": "projectcalico.org/v3",
            "kind": "NetworkPolicy",
            "metadata": {"name": "allow-web", "namespace": "prod"},
            "spec": {},
        }
    )

    created = client.create(kind, gnp("allow", "default"))
    client.create(resolve("NetworkPolicy"), np)

    kv = client.backend.get(GNP_KEY + "default.allow")
    assert kv is not None and json.loads(kv.value)["metadata"]["name"] == "default.allow"
    assert client.backend.get(NP_KEY + "prod/default.allow-web") is not None
    assert client.backend.list(GNP_KEY + "allow")[0] == []
    assert created["metadata"]["name"] == "allow"
    # Both spellings name the one policy, as in Calico; reads give the name without prefix.
    for name in ("allow", "default.allow"):
        got = client.get(kind, name)
        assert got is not None and got["metadata"]["name"] == "allow"
    with pytest.raises(ResourceExists):
        client.create(kind, gnp("default.allow", "default"))
    assert [p["metadata"]["name"] for p in client.list(kind)[0]] == ["allow"]
    client.delete(kind, "allow")
    assert client.backend.get(GNP_KEY + "default.allow") is None


def test_policies_of_other_tiers_are_stored_under_their_own_tiered_name(
    client: ResourceClient,
) -> None:
    client.create(
        resolve("Tier"),
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": "security"},
                "spec": {"order": 100},
            }
        ),
    )

    client.create(resolve("GlobalNetworkPolicy"), gnp("security.deny", "security"))

    kv = client.backend.get(GNP_KEY + "security.deny")
    assert kv is not None and json.loads(kv.value)["metadata"]["name"] == "security.deny"
    got = client.get(resolve("GlobalNetworkPolicy"), "security.deny")
    assert got is not None and got["metadata"]["name"] == "security.deny"


def test_a_tier_with_policies_and_the_builtin_tiers_cannot_be_deleted(
    client: ResourceClient,
) -> None:
    tier = resolve("Tier")
    client.create(
        tier,
        normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "Tier",
                "metadata": {"name": "security"},
                "spec": {},
            }
        ),
    )
    client.create(resolve("GlobalNetworkPolicy"), gnp("security.p", "security"))
    with pytest.raises(ResourceError, match="non-empty tier"):
        client.delete(tier, "security")
    with pytest.raises(ResourceError, match="built-in tiers"):
        client.delete(tier, "default")
    client.delete(resolve("GlobalNetworkPolicy"), "security.p")
    assert client.delete(tier, "security")["spec"] == {"defaultAction": "Deny"}


def test_guard_keys_of_earlier_versions_move_out_of_calicos_resource_tree(
    client: ResourceClient,
) -> None:
    from pycalico.datastore.resources import PREFIX, migrate_guards

    client.backend.create(PREFIX + "ippools-guard", "")
    client.backend.create(PREFIX + "bgppeers-guard", "")
    assert migrate_guards(client.backend) == [PREFIX + "bgppeers-guard", PREFIX + "ippools-guard"]
    keys = [kv.key for kv in client.backend.list("/calico/")[0]]
    assert keys == ["/calico/pycalico/guards/bgppeers", "/calico/pycalico/guards/ippools"]
    assert migrate_guards(client.backend) == []  # once is enough


def test_creating_a_pool_moves_only_pycalicos_own_guard_key(client: ResourceClient) -> None:
    from tests.support.resources import normalized

    client.create(resolve("IPPool"), normalized("IPPool", "p", {"cidr": "10.244.0.0/16"}))
    keys = [kv.key for kv in client.backend.list("/calico/")[0]]
    assert "/calico/pycalico/guards/ippools" in keys
    assert not [k for k in keys if k.endswith("-guard")]
