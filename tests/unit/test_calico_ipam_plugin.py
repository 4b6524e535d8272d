"""The calico-ipam executable as a runtime calls it: env + stdin in, JSON out."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pycalico.datastore.sqlite import SqliteBackend
from pycalico.ipam import keys
from tests.support.resources import store_documents

BIN = os.path.join(os.path.dirname(sys.executable), "calico-ipam")


class Plugin:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.store = tmp / "store.db"

    def conf(self, **extra: Any) -> dict[str, Any]:
        ipam = {"type": "calico-ipam", **extra.pop("ipam", {})}
        return {
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "calico",
            "nodename": "node1",
            "sqlite_path": str(self.store),
            "ipam_lock_file": str(self.tmp / "ipam.lock"),
            "ipam": ipam,
            **extra,
        }

    def call(
        self,
        command: str,
        container: str = "c1",
        conf: dict[str, Any] | None = None,
        args: str = "",
        stdin: bytes | None = None,
    ) -> tuple[int, dict[str, Any]]:
        env = {
            "PATH": os.environ["PATH"],
            "CNI_COMMAND": command,
            "CNI_CONTAINERID": container,
            "CNI_NETNS": "/run/netns/test",
            "CNI_IFNAME": "eth0",
            "CNI_PATH": "/opt/cni/bin",
            "CNI_ARGS": args,
        }
        body = stdin if stdin is not None else json.dumps(conf or self.conf()).encode()
        out = subprocess.run([BIN], env=env, input=body, capture_output=True, check=False)
        assert b"Traceback" not in out.stderr + out.stdout
        return out.returncode, (json.loads(out.stdout) if out.stdout.strip() else {})

    def pools(self, *docs: str) -> None:
        store_documents(self.store, "\n---\n".join(docs))

    def in_use(self) -> int:
        with SqliteBackend(self.store) as backend:
            return len(backend.list(keys.HANDLE_PREFIX)[0])


def pool(name: str, cidr: str, extra: str = "") -> str:
    return (
        f"apiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata: {{name: {name}}}\n"
        f"spec: {{cidr: {cidr}{extra}}}\n"
    )


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    p = Plugin(tmp_path)
    p.pools(pool("v4", "10.244.0.0/16"))
    return p


def test_add_returns_a_block_masked_address_and_del_releases_it(plugin: Plugin) -> None:
    rc, out = plugin.call("ADD")
    assert rc == 0 and out["cniVersion"] == "1.0.0"
    [entry] = out["ips"]
    assert entry["address"].endswith("/26") and entry["address"].startswith("10.244.")
    assert plugin.in_use() == 1
    assert plugin.call("DEL")[0] == 0
    assert plugin.in_use() == 0


def test_a_retried_add_returns_the_same_address(plugin: Plugin) -> None:
    first = plugin.call("ADD")[1]
    assert plugin.call("ADD")[1] == first
    assert plugin.in_use() == 1


def test_del_is_idempotent(plugin: Plugin) -> None:
    plugin.call("ADD")
    assert plugin.call("DEL")[0] == 0
    assert plugin.call("DEL")[0] == 0


def test_dual_stack_gets_one_address_per_family(plugin: Plugin) -> None:
    plugin.pools(pool("v6", "fd00:10::/64"))
    rc, out = plugin.call("ADD", conf=plugin.conf(ipam={"assign_ipv6": "true"}))
    assert rc == 0
    assert [":" in i["address"] for i in out["ips"]] == [False, True]


def test_a_failed_v6_family_releases_the_v4_address(plugin: Plugin) -> None:
    rc, out = plugin.call("ADD", conf=plugin.conf(ipam={"assign_ipv6": "true"}))
    assert rc == 1 and out["code"] == 999
    assert "failed to request IPv6 addresses" in out["msg"]
    assert plugin.in_use() == 0


def test_requested_pools_are_honoured_by_name_or_cidr(plugin: Plugin) -> None:
    plugin.pools(pool("other", "10.99.0.0/16"))
    for wanted in ("other", "10.99.0.0/16"):
        rc, out = plugin.call(
            "ADD", container=f"c-{wanted[:2]}", conf=plugin.conf(ipam={"ipv4_pools": [wanted]})
        )
        assert rc == 0 and out["ips"][0]["address"].startswith("10.99.")


def test_a_specific_ip_from_cni_args_is_assigned_as_a_host_route(plugin: Plugin) -> None:
    rc, out = plugin.call("ADD", args="IgnoreUnknown=1;IP=10.244.3.7")
    assert rc == 0 and out["ips"] == [{"address": "10.244.3.7/32"}]
    rc, out = plugin.call("ADD", container="c2", args="IP=10.244.3.7")
    assert rc == 1 and "already" in out["msg"]


@pytest.mark.parametrize(
    ("conf_change", "args", "stdin", "code", "fragment"),
    [
        ({}, "IP=192.0.2.9", None, 999, "not in a configured pool"),
        ({}, "IP=not-an-ip", None, 7, "invalid requested IP address"),
        ({"ipam": {"ipv4_pools": ["nope"]}}, "", None, 999, "does not exist, or is not enabled"),
        ({"ipam": {"ipv4_pools": "10.0.0.0/8"}}, "", None, 7, "must be a list"),
        ({"ipam": {"assign_ipv4": "false"}}, "", None, 7, "no addresses requested"),
        (
            {"nodename": None, "nodename_file": "/nonexistent/nodename"},
            "",
            None,
            7,
            "no such file or directory",
        ),
        ({"datastore_type": "kubernetes"}, "", None, 7, "not supported"),
        ({"cniVersion": "2.0.0"}, "", None, 1, "unsupported CNI version"),
        ({}, "", b"not json", 6, "error parsing network configuration"),
    ],
)
def test_bad_input_is_a_cni_error_and_allocates_nothing(
    plugin: Plugin,
    conf_change: dict[str, Any],
    args: str,
    stdin: bytes | None,
    code: int,
    fragment: str,
) -> None:
    conf = plugin.conf()
    for key, value in conf_change.items():
        if key == "ipam":
            conf["ipam"] = {**conf["ipam"], **value}
        elif value is None:
            conf.pop(key)
        else:
            conf[key] = value
    rc, out = plugin.call("ADD", conf=conf, args=args, stdin=stdin)
    assert rc == 1 and out["code"] == code and fragment in out["msg"]
    assert plugin.in_use() == 0


def test_a_full_pool_is_reported_and_leaves_nothing_behind(tmp_path: Path) -> None:
    p = Plugin(tmp_path)
    p.pools(pool("tiny", "10.250.0.0/30", ", blockSize: 30"))
    for i in range(4):
        assert p.call("ADD", container=f"c{i}")[0] == 0
    rc, out = p.call("ADD", container="c-last")
    assert rc == 1 and "No IPs available in pools" in out["msg"]
    assert p.in_use() == 4


def test_a_disabled_pool_is_not_used(tmp_path: Path) -> None:
    p = Plugin(tmp_path)
    p.pools(pool("disabled-pool", "10.251.0.0/16", ", disabled: true"))
    rc, out = p.call("ADD")
    assert rc == 1 and "no configured Calico pools" in out["msg"]


def test_gc_releases_addresses_of_containers_the_runtime_no_longer_has(plugin: Plugin) -> None:
    plugin.call("ADD", container="keep")
    plugin.call("ADD", container="forgotten")
    conf = {
        **plugin.conf(),
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": "keep", "ifname": "eth0"}],
    }
    assert plugin.call("GC", conf=conf)[0] == 0
    with SqliteBackend(plugin.store) as backend:
        handles = [kv.key.rsplit("/", 1)[1] for kv in backend.list(keys.HANDLE_PREFIX)[0]]
    assert handles == ["k8s-pod-network.keep"]


def test_status_is_ready_with_a_pool_and_unavailable_without(
    plugin: Plugin, tmp_path: Path
) -> None:
    conf = {**plugin.conf(), "cniVersion": "1.1.0"}
    assert plugin.call("STATUS", conf=conf) == (0, {})
    empty = Plugin(tmp_path / "empty")
    (tmp_path / "empty").mkdir()
    SqliteBackend(empty.store, create=True).close()
    rc, out = empty.call("STATUS", conf={**empty.conf(), "cniVersion": "1.1.0"})
    assert rc == 1 and out["code"] == 50 and "no enabled IP pool" in out["msg"]


def test_pod_annotations_in_cni_args_choose_pools_and_specific_addresses(plugin: Plugin) -> None:
    plugin.pools(pool("other", "10.99.0.0/16"))
    annotated = plugin.conf(
        args={"cni": {"annotations": {"cni.projectcalico.org/ipv4pools": '["other"]'}}}
    )
    assert plugin.call("ADD", container="a1", conf=annotated)[1]["ips"][0]["address"].startswith(
        "10.99."
    )
    fixed = plugin.conf(
        args={"cni": {"annotations": {"cni.projectcalico.org/ipAddrs": '["10.244.9.9"]'}}}
    )
    assert plugin.call("ADD", container="a2", conf=fixed)[1]["ips"] == [
        {"address": "10.244.9.9/32"}
    ]
    conventions = plugin.conf(args={"cni": {"ips": ["10.244.9.10"]}})
    assert plugin.call("ADD", container="a3", conf=conventions)[1]["ips"] == [
        {"address": "10.244.9.10/32"}
    ]
    bad = plugin.conf(args={"cni": {"annotations": {"cni.projectcalico.org/ipv4pools": "[oops"}}})
    rc, out = plugin.call("ADD", container="a4", conf=bad)
    assert rc == 1 and out["code"] == 7 and "JSON list" in out["msg"]


def test_gc_of_one_network_leaves_a_dotted_sibling_network_alone(plugin: Plugin) -> None:
    plugin.call("ADD", container="c1", conf=plugin.conf(name="net"))
    plugin.call("ADD", container="c2", conf=plugin.conf(name="net.v2"))
    conf = {
        **plugin.conf(name="net"),
        "cniVersion": "1.1.0",
        "cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}],
    }
    assert plugin.call("GC", conf=conf)[0] == 0
    with SqliteBackend(plugin.store) as backend:
        handles = sorted(kv.key.rsplit("/", 1)[1] for kv in backend.list(keys.HANDLE_PREFIX)[0])
    assert handles == ["net.c1", "net.v2.c2"]


@pytest.mark.parametrize(
    ("where", "name"),
    [
        *(("netconf", n) for n in ("x/y", "Node1", "-a", "a" * 254)),
        *(("nodename file", n) for n in ("x/y", "a b", "")),
    ],
)
def test_a_node_name_calico_would_refuse_is_refused_before_any_write(
    plugin: Plugin, where: str, name: str
) -> None:
    # A '/' once split the node's affinity keys, and one ADD claimed every block of the pool.
    conf = plugin.conf()
    if where == "netconf":
        conf["nodename"] = name
    else:
        path = plugin.tmp / "nodename"
        path.write_text(name + "\n")
        del conf["nodename"]
        conf["nodename_file"] = str(path)
    rc, out = plugin.call("ADD", conf=conf)
    assert rc == 1 and out["code"] == 7
    assert out["msg"].startswith(f"invalid node name {name!r}: a node name must be")
    with SqliteBackend(plugin.store) as backend:
        assert backend.list(keys.all_affinities_prefix())[0] == []
        assert backend.list(keys.block_prefix(4))[0] == []
    assert plugin.in_use() == 0
