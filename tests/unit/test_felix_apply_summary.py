"""Felix's INFO line per apply: how long it took and what changed since the last one."""

from __future__ import annotations

from types import SimpleNamespace

from pycalico.felix.apply_summary import Seen, changes, line


def seen(**fields: object) -> Seen:
    base: dict[str, object] = {
        "endpoints": {"cali1": "10.244.1.5/32"},
        "policies": {"default/default/web": "web-v1"},
        "profiles": {"kns.default": "p"},
        "pools": {"10.244.0.0/16": "pool"},
        "nodes": {"node1": "n1", "node2": "n2"},
        "config": ({}, {}),
        "routes": 4,
    }
    base.update(fields)
    return Seen(**base)  # type: ignore[arg-type]


def test_the_first_apply_counts_what_it_started_from() -> None:
    assert changes(None, seen()) == [
        "first apply: 1 local endpoints, 1 policies, 1 profiles, 1 pools, 2 nodes, 4 routes"
    ]


def test_nothing_changed_is_a_resync() -> None:
    assert changes(seen(), seen()) == []
    assert line(12, 3.25, []) == (
        "Finished applying updates to dataplane (revision 12, msecToApply=3.2): "
        "no datastore change (resync or a link change)"
    )


def test_each_kind_of_change_is_named() -> None:
    new = seen(
        endpoints={"cali1": "10.244.1.5/32", "cali2": "10.244.1.6/32"},
        policies={"default/default/web": "web-v2", "default/default/db": "db"},
        nodes={"node1": "n1"},
        config=({"logSeverityScreen": "Debug"}, {}),
        routes=5,
    )
    assert changes(seen(), new) == [
        "endpoint added cali2 (10.244.1.6/32)",
        "policy added default/default/db",
        "policy changed default/default/web",
        "node removed node2",
        "FelixConfiguration changed",
        "routes 4 -> 5",
    ]


def test_long_lists_are_cut_short() -> None:
    many = {f"cali{i}": f"10.244.1.{i}/32" for i in range(6)}
    assert changes(seen(endpoints={}), seen(endpoints=many))[0].endswith(" and 3 more")


def test_seen_from_a_snapshot() -> None:
    snap = SimpleNamespace(
        workloads=[SimpleNamespace(interface="cali1", address="10.244.1.5/32")],
        policy=SimpleNamespace(policies=[SimpleNamespace(id="t/p")], profiles={"kns.a": 1}),
        pools=[SimpleNamespace(cidr="10.244.0.0/16")],
        nodes={"node1": 1},
        global_config={},
        node_config={},
    )
    made = Seen.of(snap, 3)
    assert (list(made.endpoints), list(made.policies), list(made.pools), made.routes) == (
        ["cali1"],
        ["t/p"],
        ["10.244.0.0/16"],
        3,
    )
