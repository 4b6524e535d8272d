"""What install writes, byte for byte: each file against the reference's content for it
(Calico's install-cni conflist, its host docs' unit and EnvironmentFile, its
NetworkManager file, calicoctl's CalicoAPIConfig)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pycalico.datastore.config import DatastoreConfig, load_config
from pycalico.node.install import (
    calico_env,
    calicoctl_cfg,
    conflist,
    network_manager,
    plan,
    systemd_unit,
)
from pycalico.node.install.settings import Settings, resolve

ETCD = [
    ("NODENAME", "node2"),
    ("DATASTORE_TYPE", "etcdv3"),
    ("ETCD_ENDPOINTS", "https://192.0.2.1:2379,https://192.0.2.2:2379"),
    ("ETCD_CA_CERT_FILE", "/etc/calico/pki/ca.pem"),
    ("ETCD_CERT_FILE", "/etc/calico/pki/node.pem"),
    ("ETCD_KEY_FILE", "/etc/calico/pki/node-key.pem"),
]


def settings(*pairs: tuple[str, str]) -> Settings:
    return resolve(list(pairs), "host1")


def test_conflist_is_calico_then_calico_ipam_then_portmap_with_the_sqlite_store() -> None:
    assert (
        conflist.render(settings(("NODENAME", "node1")))
        == """\
{
  "name": "k8s-pod-network",
  "cniVersion": "1.0.0",
  "plugins": [
    {
      "type": "calico",
      "log_level": "info",
      "log_file_path": "/var/log/calico/cni/cni.log",
      "datastore_type": "sqlite",
      "sqlite_path": "/var/lib/calico/pycalico.db",
      "nodename": "node1",
      "mtu": 0,
      "ipam": {
        "type": "calico-ipam"
      }
    },
    {
      "type": "portmap",
      "snat": true,
      "capabilities": {
        "portMappings": true
      }
    }
  ]
}
"""
    )


def test_conflist_has_no_bandwidth_plugin_as_calico_330_dropped_it() -> None:
    doc = conflist.document(settings())
    assert [p["type"] for p in doc["plugins"]] == ["calico", "portmap"]


def test_conflist_carries_install_cnis_etcd_keys() -> None:
    calico = conflist.document(settings(*ETCD))["plugins"][0]
    assert calico == {
        "type": "calico",
        "log_level": "info",
        "log_file_path": "/var/log/calico/cni/cni.log",
        "datastore_type": "etcdv3",
        "etcd_endpoints": "https://192.0.2.1:2379,https://192.0.2.2:2379",
        "etcd_key_file": "/etc/calico/pki/node-key.pem",
        "etcd_cert_file": "/etc/calico/pki/node.pem",
        "etcd_ca_cert_file": "/etc/calico/pki/ca.pem",
        "nodename": "node2",
        "mtu": 0,
        "ipam": {"type": "calico-ipam"},
    }


@pytest.mark.parametrize(("given", "mtu"), [((), 0), ((("CNI_MTU", "1440"),), 1440)])
def test_conflist_mtu_is_cni_mtu_as_a_number_and_0_auto_when_unset(
    given: tuple[tuple[str, str], ...], mtu: int
) -> None:
    text = conflist.render(settings(*given))
    assert f'"mtu": {mtu},' in text  # unquoted, as install-cni substitutes __CNI_MTU__
    assert "CNI_MTU" not in calico_env.render(settings(*given))


def test_conflist_asks_for_ipv6_where_the_node_makes_an_ipv6_pool() -> None:
    ipam = conflist.document(settings(("CALICO_IPV6POOL_CIDR", "fd00:10::/48")))["plugins"][0][
        "ipam"
    ]
    assert ipam == {"type": "calico-ipam", "assign_ipv4": "true", "assign_ipv6": "true"}


def test_conflist_is_json_the_plugin_reads_without_a_type_complaint() -> None:
    from pycalico.cni.netconf_fields import wrong_type

    for case in (settings(), settings(*ETCD), settings(("CNI_MTU", "9000"))):
        assert wrong_type(json.loads(conflist.render(case))["plugins"][0]) is None


def test_calico_env_holds_calico_nodes_variables_in_a_fixed_order() -> None:
    given = settings(
        ("FELIX_LOGSEVERITYSCREEN", "Debug"),
        ("CALICO_IPV4POOL_VXLAN", "Always"),
        ("CALICO_NETWORKING_BACKEND", "vxlan"),
        ("IP", "192.0.2.11/24"),
        ("CALICO_IPV4POOL_CIDR", "10.65.0.0/16"),
        ("NODENAME", "node1"),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
    )
    assert (
        calico_env.render(given)
        == """\
# calico-node's environment, read by calico-node.service.
# Written by `calico-node install`: run it again with other settings to change them.
NODENAME=node1
IP=192.0.2.11/24
CALICO_NETWORKING_BACKEND=vxlan
CALICO_IPV4POOL_CIDR=10.65.0.0/16
CALICO_IPV4POOL_VXLAN=Always
DATASTORE_TYPE=sqlite
SQLITE_PATH=/var/lib/calico/pycalico.db
FELIX_DEFAULTENDPOINTTOHOSTACTION=ACCEPT
FELIX_LOGSEVERITYSCREEN=Debug
"""
    )


def test_calico_env_defaults_are_as_calicos_manifest_and_the_hosts_name() -> None:
    assert resolve([], "Host1.Example").env == (
        ("NODENAME", "host1.example"),
        ("IP", "autodetect"),
        ("CALICO_NETWORKING_BACKEND", "bird"),
        ("DATASTORE_TYPE", "sqlite"),
        ("SQLITE_PATH", "/var/lib/calico/pycalico.db"),
        ("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
    )
    given = resolve([("FELIX_DEFAULTENDPOINTTOHOSTACTION", "Drop")], "h").env
    assert dict(given)["FELIX_DEFAULTENDPOINTTOHOSTACTION"] == "Drop"


def test_calico_env_single_quotes_values_that_systemd_or_a_shell_would_change() -> None:
    text = calico_env.render(
        settings(
            ("IP_AUTODETECTION_METHOD", r"interface=eth\d+"),
            ("CALICO_IPV4POOL_NODE_SELECTOR", "zone == 'a'".replace("'", '"')),
            ("FELIX_X", "two words"),
        )
    )
    assert "IP_AUTODETECTION_METHOD='interface=eth\\d+'\n" in text
    assert "CALICO_IPV4POOL_NODE_SELECTOR='zone == \"a\"'\n" in text
    assert "FELIX_X='two words'\n" in text


def test_calicoctl_cfg_names_the_same_sqlite_store() -> None:
    assert (
        calicoctl_cfg.render(settings())
        == """\
apiVersion: projectcalico.org/v3
kind: CalicoAPIConfig
metadata: {}
spec:
  datastoreType: sqlite
  sqlitePath: /var/lib/calico/pycalico.db
"""
    )


def test_calicoctl_cfg_for_etcd_is_read_back_by_calicoctl_as_the_same_datastore(
    tmp_path: Path,
) -> None:
    path = tmp_path / "calicoctl.cfg"
    path.write_text(calicoctl_cfg.render(settings(*ETCD)))
    assert load_config(str(path)) == DatastoreConfig(
        datastore_type="etcdv3",
        sqlite_path="/var/lib/calico/pycalico.db",
        etcd_endpoints="https://192.0.2.1:2379,https://192.0.2.2:2379",
        etcd_ca_cert_file="/etc/calico/pki/ca.pem",
        etcd_cert_file="/etc/calico/pki/node.pem",
        etcd_key_file="/etc/calico/pki/node-key.pem",
    )


def test_unit_is_the_host_docs_unit_running_the_venvs_calico_node() -> None:
    assert (
        systemd_unit.render("/opt/pycalico")
        == """\
[Unit]
Description=pycalico calico-node (Felix, confd and BIRD, the CNI agent)
Wants=network-online.target
After=syslog.target network.target network-online.target

[Service]
User=root
EnvironmentFile=/etc/calico/calico.env
ExecStartPre=/bin/mkdir -p /var/run/calico
ExecStart=/opt/pycalico/bin/calico-node
KillMode=process
Restart=on-failure
RestartSec=5
LimitNOFILE=32000

[Install]
WantedBy=multi-user.target
"""
    )


def test_network_manager_file_is_the_troubleshooting_guides_unmanaged_devices_line() -> None:
    assert network_manager.render() == (
        "[keyfile]\n"
        "unmanaged-devices=interface-name:cali*;interface-name:tunl*;"
        "interface-name:vxlan.calico;interface-name:vxlan-v6.calico;"
        "interface-name:wireguard.cali;interface-name:wg-v6.cali\n"
    )


def test_plan_writes_the_conflist_and_calico_env_0600_and_nm_only_where_present() -> None:
    without = {p.path: p.mode for p in plan.files(settings(), "/opt/pycalico", False)}
    assert without == {
        "/etc/cni/net.d/10-calico.conflist": 0o600,
        "/etc/calico/calicoctl.cfg": 0o644,
        "/etc/calico/calico.env": 0o600,
        "/etc/systemd/system/calico-node.service": 0o644,
    }
    with_nm = {p.path: p.mode for p in plan.files(settings(), "/opt/pycalico", True)}
    assert with_nm == {**without, "/etc/NetworkManager/conf.d/calico.conf": 0o644}


def test_plan_links_calicoctl_and_calico_node_into_usr_local_bin_and_the_hosts_plugins() -> None:
    links = {p.path: p.target for p in plan.links("/opt/pc", ["portmap", "loopback"])}
    assert links == {
        "/usr/local/bin/calicoctl": "/opt/pc/bin/calicoctl",
        "/usr/local/bin/calico-node": "/opt/pc/bin/calico-node",
        "/opt/cni/bin/portmap": "/usr/lib/cni/portmap",
        "/opt/cni/bin/loopback": "/usr/lib/cni/loopback",
    }
