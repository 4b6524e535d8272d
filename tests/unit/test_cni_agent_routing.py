"""Which calls the node's CNI agent serves, and which it hands back to the shim to run where
the runtime is; and that both shims speak the agent's wire format."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from pycalico.cni import agent
from pycalico.cni.agent import IN_PROCESS, PROTOCOL, for_the_caller
from pycalico.datastore.config import DatastoreConfig

OWN = DatastoreConfig(sqlite_path="/var/lib/calico/node.db")
ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "c1",
    "CNI_NETNS": "/run/netns/pod",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
}


def netconf(**extra: Any) -> bytes:
    conf = {
        "cniVersion": "1.0.0",
        "name": "net",
        "type": "calico",
        "sqlite_path": OWN.sqlite_path,
        "ipam": {"type": "calico-ipam"},
        **extra,
    }
    return json.dumps({k: v for k, v in conf.items() if v is not None}).encode()


def test_a_call_on_the_agents_own_datastore_is_the_agents() -> None:
    assert not for_the_caller("calico", ENV, netconf(), OWN)
    assert not for_the_caller("calico-ipam", ENV, netconf(), OWN)
    # Named in the caller's environment instead of the netconf: the same store.
    env = {**ENV, "SQLITE_PATH": OWN.sqlite_path}
    assert not for_the_caller("calico", env, netconf(sqlite_path=None), OWN)


@pytest.mark.parametrize(
    "change",
    [
        {"sqlite_path": "/tmp/other.db"},
        {"sqlite_path": None},  # the default store, which is not the agent's
        {"datastore_type": "etcdv3", "etcd_endpoints": "http://127.0.0.1:2379"},
        {"datastore_type": "kubernetes"},  # refused: by the plugin, where the runtime is
        {"datastore_type": "nonsense"},
    ],
)
def test_a_call_naming_another_datastore_is_the_callers(change: dict[str, Any]) -> None:
    assert for_the_caller("calico", ENV, netconf(**change), OWN) in (
        "its datastore is not the agent's own",
        "its datastore settings are not ones the agent can open",
    )
    assert for_the_caller("calico-ipam", ENV, netconf(**change), OWN)


def test_the_callers_environment_can_name_another_datastore_too() -> None:
    env = {**ENV, "DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": "http://127.0.0.1:2379"}
    assert for_the_caller("calico", env, netconf(sqlite_path=None), OWN)


def test_etcd_settings_must_all_be_the_agents() -> None:
    own = DatastoreConfig(
        datastore_type="etcdv3",
        etcd_endpoints="https://10.0.0.1:2379",
        etcd_ca_cert_file="/etc/calico/ca.pem",
        etcd_cert_file="/etc/calico/cert.pem",
        etcd_key_file="/etc/calico/key.pem",
    )
    same = {
        "sqlite_path": None,
        "datastore_type": "etcdv3",
        "etcd_endpoints": own.etcd_endpoints,
        "etcd_ca_cert_file": own.etcd_ca_cert_file,
        "etcd_cert_file": own.etcd_cert_file,
        "etcd_key_file": own.etcd_key_file,
    }
    assert not for_the_caller("calico", ENV, netconf(**same), own)
    for key, value in [
        ("etcd_endpoints", "https://10.0.0.2:2379"),
        ("etcd_ca_cert_file", "/srv/other-ca.pem"),
        ("etcd_cert_file", "/srv/other-cert.pem"),
        ("etcd_key_file", "/srv/other-key.pem"),
    ]:
        assert for_the_caller("calico", ENV, netconf(**{**same, key: value}), own), key


def test_a_relative_path_is_never_the_agents_even_when_it_reads_the_same() -> None:
    own = DatastoreConfig(sqlite_path="node.db")
    why = for_the_caller("calico", ENV, netconf(sqlite_path="node.db"), own)
    assert why == "its datastore settings name a relative path"


def test_a_network_that_delegates_ipam_is_the_callers_whatever_the_command() -> None:
    conf = netconf(ipam={"type": "host-local", "subnet": "10.1.0.0/24"})
    for command in ("ADD", "DEL", "CHECK", "GC", "STATUS"):
        env = {**ENV, "CNI_COMMAND": command}
        assert for_the_caller("calico", env, conf, OWN) == "its IPAM is a plugin in CNI_PATH"


@pytest.mark.parametrize(
    ("env", "stdin"),
    [
        ({**ENV, "CNI_COMMAND": "VERSION"}, b'{"cniVersion": "1.0.0"}'),
        (ENV, b"{not json"),  # the plugin's refusal, answered by the agent
        ({**ENV, "CNI_COMMAND": "ADD", "CNI_IFNAME": ""}, netconf()),
        (ENV, netconf(ipam={"type": "../evil.sh"})),  # refused before anything runs
    ],
)
def test_what_needs_no_datastore_or_is_refused_is_answered_by_the_agent(
    env: dict[str, str], stdin: bytes
) -> None:
    assert not for_the_caller("calico", env, stdin, OWN)


def test_both_shims_speak_the_agents_wire_format() -> None:
    here = os.path.dirname(agent.__file__)
    with open(os.path.join(here, "shim.c"), encoding="utf-8") as f:
        c_shim = f.read()
    with open(os.path.join(here, "shim.py"), encoding="utf-8") as f:
        python_shim = f.read()
    assert f'#define PROTOCOL "{PROTOCOL}"' in c_shim
    assert f'PROTOCOL = "{PROTOCOL}"' in python_shim
    reply = IN_PROCESS.decode().rstrip("\n")
    assert f'"{reply}\\n"' in c_shim
    assert f'b"{reply}"' in python_shim
