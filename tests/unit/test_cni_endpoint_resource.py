"""The WorkloadEndpoint the `calico` plugin writes for a Kubernetes pod: labels, profiles,
named ports and service account from the CNI `args.cni` the runtime (the lab) passes."""

from __future__ import annotations

import ipaddress
import json
from typing import Any

import pytest

from pycalico.cni.endpoint import workload
from pycalico.cni.plugin import _endpoint_resource
from pycalico.cni.protocol import CniError, read_request

ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=shop;K8S_POD_NAME=web-1",
}
ADDRESSES = [ipaddress.ip_interface("10.244.1.5/32")]


def endpoint(pod_args: dict[str, Any] | None, k8s_policy: bool = True) -> dict[str, Any]:
    conf: dict[str, Any] = {"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico"}
    if k8s_policy:
        conf["policy"] = {"type": "k8s"}
    if pod_args is not None:
        conf["args"] = {"cni": pod_args}
    req = read_request(ENV, json.dumps(conf).encode())
    wl = workload("node1", req.container_id, req.ifname, req.args, req.env)
    return _endpoint_resource(req, wl, ADDRESSES, "0a:58:0a:f4:01:05")


def test_k8s_pod_gets_namespace_and_service_account_profiles_and_labels() -> None:
    wep = endpoint(
        {"labels": [{"key": "app", "value": "web"}], "serviceAccountName": "api"},
    )
    assert wep["metadata"]["labels"] == {
        "app": "web",
        "projectcalico.org/namespace": "shop",
        "projectcalico.org/orchestrator": "k8s",
        "projectcalico.org/serviceaccount": "api",
    }
    assert wep["spec"]["profiles"] == ["kns.shop", "ksa.shop.api"]
    assert wep["spec"]["serviceAccountName"] == "api"


def test_without_a_service_account_only_the_namespace_profile() -> None:
    wep = endpoint({"labels": []})
    assert wep["spec"]["profiles"] == ["kns.shop"]
    assert "serviceAccountName" not in wep["spec"]
    assert "projectcalico.org/serviceaccount" not in wep["metadata"]["labels"]


def test_a_long_service_account_name_is_kept_out_of_the_labels_as_calico_does() -> None:
    account = "a" * 63
    wep = endpoint({"serviceAccountName": account})
    assert "projectcalico.org/serviceaccount" not in wep["metadata"]["labels"]
    assert wep["spec"]["serviceAccountName"] == account


def test_named_ports_are_written_into_the_endpoint() -> None:
    ports = [
        {"name": "http", "protocol": "tcp", "port": 80},
        {"name": "dns", "protocol": "udp", "port": 53},
    ]
    wep = endpoint({"ports": ports})
    assert wep["spec"]["ports"] == ports


def test_bad_ports_fail_the_add_with_a_config_error() -> None:
    with pytest.raises(CniError, match="invalid workload endpoint"):
        endpoint({"ports": [{"name": "http", "protocol": "icmp", "port": 80}]})


def test_without_k8s_policy_the_network_profile_is_kept() -> None:
    wep = endpoint(None, k8s_policy=False)
    assert wep["spec"]["profiles"] == ["k8s-pod-network"]
    assert "ports" not in wep["spec"]
