"""CNI protocol handling: environment and config validation, versioned results, errors."""

from __future__ import annotations

import json
import socket

import pytest

from pycalico.cni.protocol import (
    DECODE_FAILURE,
    INCOMPATIBLE_VERSION,
    INVALID_CONFIG,
    INVALID_ENV,
    IO_FAILURE,
    CniError,
    IpConfig,
    Result,
    parse_cni_args,
    read_request,
    version_result,
)

CONF = b'{"cniVersion": "1.0.0", "name": "k8s-pod-network", "type": "calico"}'
ENV = {
    "CNI_COMMAND": "ADD",
    "CNI_CONTAINERID": "abc123",
    "CNI_NETNS": "/run/netns/x",
    "CNI_IFNAME": "eth0",
    "CNI_PATH": "/opt/cni/bin",
    "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web",
}


def test_a_complete_add_request_is_read() -> None:
    req = read_request(ENV, CONF)
    assert (req.command, req.container_id, req.ifname, req.version) == (
        "ADD",
        "abc123",
        "eth0",
        "1.0.0",
    )
    assert req.args["K8S_POD_NAME"] == "web" and req.network_name == "k8s-pod-network"
    assert req.env == ENV  # delegated plugins and datastore settings need the caller's env


def test_missing_cni_version_means_0_2_0() -> None:
    assert read_request(ENV, b'{"name": "n"}').version == "0.2.0"


@pytest.mark.parametrize(
    ("env", "stdin", "code", "fragment"),
    [
        ({**ENV, "CNI_COMMAND": ""}, CONF, INVALID_ENV, "CNI_COMMAND is missing"),
        ({**ENV, "CNI_COMMAND": "ATTACH"}, CONF, INVALID_ENV, "unknown or missing CNI_COMMAND"),
        (
            {k: v for k, v in ENV.items() if k != "CNI_CONTAINERID"},
            CONF,
            INVALID_ENV,
            "CNI_CONTAINERID",
        ),
        ({k: v for k, v in ENV.items() if k != "CNI_NETNS"}, CONF, INVALID_ENV, "CNI_NETNS"),
        ({**ENV, "CNI_IFNAME": "a-very-long-ifname"}, CONF, INVALID_ENV, "at most 15"),
        ({**ENV, "CNI_IFNAME": "et/h0"}, CONF, INVALID_ENV, "without '/'"),
        ({**ENV, "CNI_CONTAINERID": "../etc"}, CONF, INVALID_ENV, "invalid CNI_CONTAINERID"),
        ({**ENV, "CNI_ARGS": "novalue"}, CONF, INVALID_ENV, "KEY=VALUE"),
        (ENV, b"{not json", DECODE_FAILURE, "error parsing network configuration"),
        (ENV, b"[1, 2]", DECODE_FAILURE, "must be a JSON object"),
        (
            ENV,
            b'{"cniVersion": "9.9.9", "name": "n"}',
            INCOMPATIBLE_VERSION,
            "unsupported CNI version 9.9.9",
        ),
        (
            ENV,
            b'{"cniVersion": "1.0.0", "name": "bad name!"}',
            INVALID_CONFIG,
            "invalid characters",
        ),
        (ENV, b'{"cniVersion": "1.0.0"}', INVALID_CONFIG, "network name"),
        (ENV, b"\xff\xfe", DECODE_FAILURE, "error parsing"),
    ],
)
def test_bad_requests_are_cni_errors_with_spec_codes(
    env: dict[str, str], stdin: bytes, code: int, fragment: str
) -> None:
    with pytest.raises(CniError) as info:
        read_request(env, stdin)
    assert info.value.code == code
    assert fragment in info.value.msg


def test_del_does_not_need_a_netns() -> None:
    env = {k: v for k, v in ENV.items() if k != "CNI_NETNS"}
    assert read_request({**env, "CNI_COMMAND": "DEL"}, CONF).netns == ""


def test_version_works_without_config_and_lists_supported_versions() -> None:
    req = read_request({"CNI_COMMAND": "VERSION"}, b"")
    data = json.loads(version_result(req.version))
    assert "1.1.0" in data["supportedVersions"] and "0.3.1" in data["supportedVersions"]


def test_error_json_has_the_spec_fields() -> None:
    text = CniError(7, "bad", "why").to_json("1.0.0")
    assert json.loads(text) == {"cniVersion": "1.0.0", "code": 7, "msg": "bad", "details": "why"}


def result() -> Result:
    return Result(
        ips=[IpConfig("10.0.0.5/32", interface=1), IpConfig("fd00::5/128", interface=1)],
        interfaces=[
            {"name": "cali123"},
            {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "mtu": 1450, "sandbox": "/run/netns/x"},
        ],
        routes=[{"dst": "0.0.0.0/0"}],
    )


def test_result_1_0_has_no_ip_version_and_no_mtu() -> None:
    data = result().to_dict("1.0.0")
    assert data["ips"][0] == {"interface": 1, "address": "10.0.0.5/32"}
    assert "mtu" not in data["interfaces"][1]


def test_result_1_1_carries_the_interface_mtu() -> None:
    assert result().to_dict("1.1.0")["interfaces"][1]["mtu"] == 1450


def test_result_0_3_and_0_4_carry_the_ip_version() -> None:
    for version in ("0.3.0", "0.3.1", "0.4.0"):
        ips = result().to_dict(version)["ips"]
        assert [i["version"] for i in ips] == ["4", "6"]


def test_result_0_2_uses_ip4_and_ip6_objects() -> None:
    data = result().to_dict("0.2.0")
    assert data["ip4"] == {"ip": "10.0.0.5/32", "routes": [{"dst": "0.0.0.0/0"}]}
    assert data["ip6"] == {"ip": "fd00::5/128"}


def test_results_of_any_version_read_back_the_same_addresses() -> None:
    for version in ("0.2.0", "0.3.1", "1.0.0", "1.1.0"):
        back = Result.from_dict(result().to_dict(version))
        assert [i.address for i in back.ips] == ["10.0.0.5/32", "fd00::5/128"]


def test_cni_args_parse_pairs_and_ignore_empty_segments() -> None:
    assert parse_cni_args("A=1;;B=x=y") == {"A": "1", "B": "x=y"}


def test_an_unreachable_datastore_is_an_io_failure_carrying_its_one_line_reason() -> None:
    from pycalico.cni.main import handle

    with socket.socket() as sock:  # a loopback port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    conf = {
        **json.loads(CONF),
        "nodename": "n1",
        "datastore_type": "etcdv3",
        "etcd_endpoints": url,
        "ipam": {"type": "calico-ipam"},
    }

    out, code = handle("calico", ENV, json.dumps(conf).encode())

    assert code == 1
    assert json.loads(out) == {
        "cniVersion": "1.0.0",
        "code": IO_FAILURE,
        "msg": "data store connection failed",
        "details": f"cannot reach etcd at {url}: connection refused",
    }


def _calico(conf: dict[str, object] | bytes) -> dict[str, object]:
    """The calico plugin's error for an ADD of `conf`, refused before anything is touched."""
    from pycalico.cni.main import handle

    stdin = conf if isinstance(conf, bytes) else json.dumps(conf).encode()
    out, code = handle("calico", ENV, stdin)
    assert code == 1
    return dict(json.loads(out))


@pytest.mark.parametrize(
    ("field", "value", "msg"),
    [
        ("container_settings", "x", "container_settings must be an object"),
        (
            "container_settings",
            {"allow_ip_forwarding": "false"},
            "container_settings.allow_ip_forwarding must be true or false",
        ),
        ("args", {"cni": {"labels": 5}}, "args.cni.labels must be a list of {key, value} objects"),
        ("ipam", {"type": "../evil.sh"}, "invalid plugin name: ../evil.sh: ipam.type must name"),
        ("ipam", {"type": ".."}, "invalid plugin name: ..: ipam.type must name"),
    ],
)
def test_a_field_in_a_wrong_shape_is_named_before_anything_is_done(
    field: str, value: object, msg: str
) -> None:
    conf = {**json.loads(CONF), "ipam": {"type": "calico-ipam"}, field: value}
    err = _calico(conf)
    assert err["code"] == INVALID_CONFIG and str(err["msg"]).startswith(msg)


def test_deep_nesting_is_a_decode_failure_for_every_command() -> None:
    from pycalico.cni.main import handle

    deep = b"[" * 100_000 + b"]" * 100_000
    err = _calico(deep)
    assert (err["code"], err["msg"]) == (DECODE_FAILURE, "error parsing network configuration")
    out, code = handle("calico", {**ENV, "CNI_COMMAND": "VERSION"}, deep)
    assert code == 0 and json.loads(out)["cniVersion"] == "1.1.0"


def test_a_config_over_16_mib_is_refused_and_one_at_the_limit_is_read() -> None:
    from pycalico.cni.protocol import MAX_CONFIG

    padding = b" " * (MAX_CONFIG - len(CONF))
    assert read_request(ENV, CONF + padding).network_name == "k8s-pod-network"
    with pytest.raises(CniError) as err:
        read_request(ENV, CONF + padding + b" ")
    assert err.value.code == INVALID_CONFIG and "larger than 16 MiB" in err.value.msg


@pytest.mark.parametrize(
    ("change", "msg"),
    [
        ({"nodename": 5}, "nodename must be a string, not a number"),
        ({"nodename": ["a"]}, "nodename must be a string, not a list"),
        (
            {"nodename_file_optional": "yes"},
            "nodename_file_optional must be true or false, not a string",
        ),
        ({"sqlite_path": {"a": 1}}, "sqlite_path must be a string, not an object"),
        (
            {"etcd_endpoints": ["http://127.0.0.1:2379"]},
            "etcd_endpoints must be a string, not a list",
        ),
        ({"mtu": "1400"}, "mtu must be an integer, not a string"),
        ({"mtu": True}, "mtu must be an integer, not a boolean"),
        ({"ipam": "calico-ipam"}, "ipam must be an object, not a string"),
        (
            {"ipam": {"type": "calico-ipam", "assign_ipv6": True}},
            "ipam.assign_ipv6 must be a string, not a boolean",
        ),
        ({"policy": []}, "policy must be an object, not a list"),
    ],
)
@pytest.mark.parametrize("command", ["ADD", "DEL", "CHECK"])
def test_a_netconf_field_of_the_wrong_json_type_is_named_for_every_command(
    change: dict[str, object], msg: str, command: str
) -> None:
    from pycalico.cni.main import handle

    conf = json.dumps({**json.loads(CONF), **change}).encode()
    out, code = handle("calico", {**ENV, "CNI_COMMAND": command}, conf)
    assert code == 1
    assert json.loads(out) == {"cniVersion": "1.0.0", "code": INVALID_CONFIG, "msg": msg}


def test_null_netconf_fields_are_read_as_absent_ones() -> None:
    from pycalico.cni.netconf_fields import wrong_type

    assert wrong_type({"nodename": None, "ipam": None, "mtu": None}) is None
