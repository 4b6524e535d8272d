"""install's settings: calico-node's own variables, each refused in one line when calico-node
would refuse it at start (or it cannot be written safely), before anything is written."""

from __future__ import annotations

import pytest

from pycalico.node.install.errors import InstallError
from pycalico.node.install.settings import resolve


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ([("NODENAME", "Node_1")], "invalid node name 'Node_1': a node name must be"),
        ([("IP", "300.1.1.1")], "IP=300.1.1.1 is not autodetect, none, or an IPv4 address"),
        ([("IP", "fd00::1")], "IP=fd00::1 is not autodetect, none, or an IPv4 address"),
        ([("IP6", "192.0.2.1")], "IP6=192.0.2.1 is not autodetect, none, or an IPv6 address"),
        ([("IP_AUTODETECTION_METHOD", "nearest")], "IP_AUTODETECTION_METHOD=nearest is not"),
        ([("IP_AUTODETECTION_METHOD", "interface=(")], "IP_AUTODETECTION_METHOD: invalid regex"),
        ([("IP_AUTODETECTION_METHOD", "cidr=10.0.0.0")], "10.0.0.0 is not a CIDR"),
        ([("AS", "0")], "AS=0: invalid AS number"),
        ([("CALICO_ROUTER_ID", "router1")], "CALICO_ROUTER_ID=router1 is not an IPv4 address"),
        (
            [("CALICO_NETWORKING_BACKEND", "ipip")],
            "CALICO_NETWORKING_BACKEND=ipip is not one of bird, vxlan, none",
        ),
        ([("NO_DEFAULT_POOLS", "yes")], "NO_DEFAULT_POOLS=yes is not true or false"),
        ([("CALICO_IPV4POOL_CIDR", "10.0.0.0/33")], "is not an IPv4 CIDR"),
        ([("CALICO_IPV4POOL_CIDR", "fd00::/48")], "CALICO_IPV4POOL_CIDR=fd00::/48 is not an IPv4"),
        ([("CALICO_IPV6POOL_CIDR", "10.0.0.0/8")], "CALICO_IPV6POOL_CIDR=10.0.0.0/8 is not an"),
        ([("CALICO_IPV4POOL_VXLAN", "Sometimes")], "CALICO_IPV4POOL_VXLAN=Sometimes is not one"),
        (
            [("CALICO_IPV4POOL_IPIP", "Always"), ("CALICO_IPV4POOL_VXLAN", "Always")],
            "Cannot enable both VXLAN and IPIP",
        ),
        ([("CALICO_IPV4POOL_BLOCK_SIZE", "12")], "block size must be between 20 and 32"),
        (
            [("NO_DEFAULT_POOLS", "true"), ("CALICO_IPV4POOL_CIDR", "10.0.0.0/16")],
            "NO_DEFAULT_POOLS=true cannot be combined with CALICO_IPV4POOL_CIDR",
        ),
        ([("DATASTORE_TYPE", "kubernetes")], "DATASTORE_TYPE=kubernetes is not one of"),
        ([("DATASTORE_TYPE", "etcdv3")], "DATASTORE_TYPE=etcdv3 needs ETCD_ENDPOINTS"),
        (
            [("DATASTORE_TYPE", "etcdv3"), ("ETCD_ENDPOINTS", "192.0.2.1:2379")],
            "ETCD_ENDPOINTS: 192.0.2.1:2379 is not an http:// or https:// URL",
        ),
        (
            [
                ("DATASTORE_TYPE", "etcdv3"),
                ("ETCD_ENDPOINTS", "https://192.0.2.1:2379"),
                ("ETCD_CERT_FILE", "/pki/c.pem"),
            ],
            "ETCD_CERT_FILE and ETCD_KEY_FILE go together",
        ),
        (
            [
                ("DATASTORE_TYPE", "etcdv3"),
                ("ETCD_ENDPOINTS", "http://e:2379"),
                ("SQLITE_PATH", "/x"),
            ],
            "SQLITE_PATH is for DATASTORE_TYPE=sqlite, not etcdv3",
        ),
        ([("ETCD_ENDPOINTS", "http://e:2379")], "ETCD_ENDPOINTS is for DATASTORE_TYPE=etcdv3"),
        ([("SQLITE_PATH", "pycalico.db")], "SQLITE_PATH=pycalico.db is not an absolute path"),
        ([("CNI_MTU", "jumbo")], "CNI_MTU=jumbo is not an MTU"),
        ([("CNI_MTU", "70000")], "CNI_MTU=70000 is not an MTU"),
        ([("FELIX_X", "it's")], "FELIX_X: a value with a single quote"),
        ([("FELIX_X", "a\nb")], "FELIX_X: a value with a single quote or a control character"),
        ([("CALICO_RUN_DIR", "/run/x")], "CALICO_RUN_DIR is not a setting calico-node install"),
        ([("nodename", "node1")], "nodename is not a setting calico-node install takes"),
        ([("IP", "autodetect"), ("IP", "none")], "IP is given twice"),
        (
            [("CALICO_GOLDMANE_COLLECTOR", "goldmane:7443")],
            "CALICO_GOLDMANE_COLLECTOR=goldmane:7443 is not HOST:PORT",
        ),
        ([("CALICO_GOLDMANE_API", "127.0.0.1:8080")], "CALICO_GOLDMANE_API is set but"),
    ],
)
def test_a_bad_setting_is_refused_in_one_line(given: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(InstallError) as caught:
        resolve(given, "host1")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_host_name_that_is_no_node_name_is_refused_asking_for_nodename() -> None:
    with pytest.raises(InstallError, match=r"invalid node name 'bad_host'.*give NODENAME=\.\.\."):
        resolve([], "Bad_Host")


def test_an_empty_value_leaves_the_setting_out() -> None:
    settings = resolve([("NODENAME", "node1"), ("IP6", ""), ("AS", "")], "host1")
    assert settings.get("IP6") == "" and "IP6" not in dict(settings.env)


@pytest.mark.parametrize(
    "given",
    [
        [("IP", "none"), ("CALICO_NETWORKING_BACKEND", "none")],
        [("IP", "192.0.2.11"), ("IP6", "autodetect"), ("CALICO_IPV6POOL_CIDR", "fd00:10::/48")],
        [("IP_AUTODETECTION_METHOD", "can-reach=192.0.2.1")],
        [("IP_AUTODETECTION_METHOD", "cidr=192.0.2.0/24,198.51.100.0/24")],
        [("AS", "64512"), ("CALICO_ROUTER_ID", "hash")],
        [("CALICO_IPV4POOL_CIDR", "none")],
        [("NO_DEFAULT_POOLS", "true")],
        [("CALICO_IPV4POOL_IPIP", "CrossSubnet"), ("CALICO_IPV4POOL_BLOCK_SIZE", "24")],
        [("DATASTORE_TYPE", "etcdv3"), ("ETCD_ENDPOINTS", "http://192.0.2.1:2379")],
        [("CALICO_GOLDMANE_COLLECTOR", "0.0.0.0:7443"), ("CALICO_GOLDMANE_API", "[::1]:8080")],
    ],
)
def test_settings_calico_node_accepts_are_accepted(given: list[tuple[str, str]]) -> None:
    settings = resolve([("NODENAME", "node1"), *given], "host1")
    for name, value in given:
        assert settings.get(name) == value


def test_the_etcd_client_files_are_the_ones_to_check_on_the_host() -> None:
    settings = resolve(
        [
            ("DATASTORE_TYPE", "etcdv3"),
            ("ETCD_ENDPOINTS", "https://192.0.2.1:2379"),
            ("ETCD_CA_CERT_FILE", "/pki/ca.pem"),
            ("ETCD_CERT_FILE", "/pki/c.pem"),
            ("ETCD_KEY_FILE", "/pki/k.pem"),
        ],
        "host1",
    )
    assert settings.cert_files() == ["/pki/ca.pem", "/pki/c.pem", "/pki/k.pem"]
    assert settings.get("SQLITE_PATH") == ""
