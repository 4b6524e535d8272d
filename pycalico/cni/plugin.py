"""The `calico` network plugin: ADD wires a pod and records its WorkloadEndpoint; DEL undoes it.

ADD is all or nothing: if any step after the address assignment fails, the interface, the
routes, the endpoint and the addresses are removed again before the error is returned.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import subprocess
from collections.abc import Mapping
from typing import Any

from pycalico.cni import call_log, node_identity
from pycalico.cni.endpoint import Workload, workload
from pycalico.cni.protocol import (
    GENERIC,
    INVALID_CONFIG,
    CniError,
    IpConfig,
    Request,
    Result,
)

NOT_READY = 999  # a generic CNI error, as Calico reports it


def _client(config: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    from pycalico.cni.datastore_access import backend_for
    from pycalico.datastore.resources import ResourceClient

    return ResourceClient(backend_for(config, env))


def _check_ready(client: Any) -> None:
    from pycalico.api.registry import resolve

    info = client.get(resolve("ClusterInformation"), "default")
    if info is not None and info["spec"].get("datastoreReady") is False:
        raise CniError(NOT_READY, "Calico is currently not ready to process requests")


def _ipam_type(config: Mapping[str, Any]) -> str:
    ipam = config.get("ipam")
    if not isinstance(ipam, dict) or not isinstance(ipam.get("type"), str) or not ipam["type"]:
        raise CniError(INVALID_CONFIG, "ipam.type is required (e.g. calico-ipam)")
    name = str(ipam["type"])
    # A name, never a path: `../evil.sh` would run a program outside CNI_PATH (libcni's
    # CVE-2021-20206 had this hole; its fix refuses names with a path separator too).
    if "/" in name or name in (".", ".."):
        raise CniError(
            INVALID_CONFIG,
            f"invalid plugin name: {name}: ipam.type must name a plugin in CNI_PATH",
        )
    return name


def delegates_ipam(config: Mapping[str, Any]) -> bool:
    """Whether ADD and DEL run an IPAM plugin from CNI_PATH (a valid name other than
    calico-ipam); False for calico-ipam and for an ipam.type that is refused."""
    try:
        return _ipam_type(config) != "calico-ipam"
    except CniError:
        return False


def _validate(config: Mapping[str, Any]) -> None:
    """Refuse, before anything is allocated or wired, the fields ADD reads in a wrong shape."""
    _ipam_type(config)
    settings = config.get("container_settings")
    if settings is not None:
        if not isinstance(settings, dict):
            raise CniError(INVALID_CONFIG, "container_settings must be an object")
        forwarding = settings.get("allow_ip_forwarding", False)
        if not isinstance(forwarding, bool):
            raise CniError(
                INVALID_CONFIG, "container_settings.allow_ip_forwarding must be true or false"
            )
    labels = _pod_args(config).get("labels")
    if labels is not None and not isinstance(labels, list):
        raise CniError(INVALID_CONFIG, "args.cni.labels must be a list of {key, value} objects")


def _run_ipam(req: Request, command: str) -> Result | None:
    """calico-ipam runs in this process; any other IPAM plugin is executed from CNI_PATH."""
    ipam_type = _ipam_type(req.config)
    if ipam_type == "calico-ipam":
        from pycalico.cni.ipam_plugin import ipam_add, ipam_del

        if command == "ADD":
            return ipam_add(req)
        ipam_del(req)
        return None
    plugin = next(
        (
            path
            for path in (os.path.join(d, ipam_type) for d in req.path.split(":") if d)
            if os.path.isfile(path) and os.access(path, os.X_OK)
        ),
        None,
    )
    if plugin is None:
        raise CniError(INVALID_CONFIG, f"failed to find plugin {ipam_type!r} in path {req.path}")
    env = {**req.env, "CNI_COMMAND": command}
    try:
        out = subprocess.run(
            [plugin], input=req.raw_config, env=env, capture_output=True, check=False
        )
    except OSError as exc:
        raise CniError(GENERIC, f"cannot run IPAM plugin {plugin}: {exc.strerror}") from None
    try:
        body = json.loads(out.stdout) if out.stdout.strip() else {}
        if not isinstance(body, dict):
            raise ValueError("not a JSON object")
        if out.returncode == 0:
            return Result.from_dict(body) if command == "ADD" else None
        error = CniError(
            int(body.get("code", GENERIC)),
            str(body.get("msg", "IPAM plugin failed")),
            str(body.get("details", "")),
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CniError(
            GENERIC,
            f"IPAM plugin {ipam_type} answered {command} with an unreadable result",
            str(exc),
        ) from None
    raise error


def _pod_args(config: Mapping[str, Any]) -> dict[str, Any]:
    """What the runtime passes about the pod in the CNI `args.cni` convention: `labels`
    ([{key, value}]) and, standing in for Calico's read of the Pod from the API server,
    `ports` (the named container ports, as WorkloadEndpoint ports) and `serviceAccountName`."""
    args = config.get("args")
    if isinstance(args, dict) and isinstance(args.get("cni"), dict):
        return args["cni"]
    return {}


def _service_account(req: Request) -> str:
    account = _pod_args(req.config).get("serviceAccountName")
    return account if isinstance(account, str) else ""


def _labels(req: Request, wl: Workload) -> dict[str, str]:
    """Labels from the CNI `args.cni.labels` convention, plus Calico's own."""
    labels: dict[str, str] = {}
    for item in _pod_args(req.config).get("labels") or []:
        if isinstance(item, dict) and isinstance(item.get("key"), str):
            labels[item["key"]] = str(item.get("value", ""))
    labels["projectcalico.org/namespace"] = wl.namespace
    labels["projectcalico.org/orchestrator"] = wl.orchestrator
    account = _service_account(req)
    if account and len(account) < 63:  # Calico leaves longer names out of the labels
        labels["projectcalico.org/serviceaccount"] = account
    return labels


def _endpoint_resource(
    req: Request, wl: Workload, addresses: list[Any], mac: str
) -> dict[str, Any]:
    from pycalico.api.resource import normalize

    spec: dict[str, Any] = {
        "orchestrator": wl.orchestrator,
        "workload": "" if wl.orchestrator == "k8s" else wl.container_id,
        "node": wl.node,
        "containerID": wl.container_id,
        "pod": wl.pod,
        "endpoint": wl.endpoint,
        "ipNetworks": [f"{a.ip}/{a.max_prefixlen}" for a in addresses],
        "profiles": _profiles(req, wl),
        "interfaceName": wl.host_ifname,
        "mac": mac,
    }
    account = _service_account(req)
    if account:
        spec["serviceAccountName"] = account
    ports = _pod_args(req.config).get("ports")
    if ports:
        spec["ports"] = ports  # validated with the rest of the endpoint
    try:
        return normalize(
            {
                "apiVersion": "projectcalico.org/v3",
                "kind": "WorkloadEndpoint",
                "metadata": {
                    "name": wl.wep_name,
                    "namespace": wl.namespace,
                    "labels": _labels(req, wl),
                },
                "spec": spec,
            }
        )
    except ValueError as exc:
        raise CniError(INVALID_CONFIG, f"invalid workload endpoint: {exc}") from None


def _profiles(req: Request, wl: Workload) -> list[str]:
    policy = req.config.get("policy")
    if isinstance(policy, dict) and policy.get("type") == "k8s":
        account = _service_account(req)
        return [f"kns.{wl.namespace}"] + ([f"ksa.{wl.namespace}.{account}"] if account else [])
    return [req.network_name]


def _ensure_network_profile(client: Any, req: Request, wl: Workload) -> None:
    """Without k8s policy, a Profile named after the network lets its members talk (Calico)."""
    from pycalico.api.registry import resolve
    from pycalico.api.resource import normalize
    from pycalico.datastore.resources import ResourceExists

    if _profiles(req, wl) != [req.network_name]:
        return
    kind = resolve("Profile")
    if client.get(kind, req.network_name) is not None:
        return
    name = req.network_name
    spec: dict[str, Any] = {"egress": [{"action": "Allow"}]}
    if wl.orchestrator == "k8s":
        spec["ingress"] = [{"action": "Allow"}]
    else:
        spec["ingress"] = [{"action": "Allow", "source": {"selector": f"has({name})"}}]
        spec["labelsToApply"] = {name: ""}
    profile = {
        "apiVersion": "projectcalico.org/v3",
        "kind": "Profile",
        "metadata": {"name": name},
        "spec": spec,
    }
    # Created concurrently, or a network name that cannot be a label key: nothing to add.
    with contextlib.suppress(ResourceExists, ValueError):
        client.create(kind, normalize(profile))


def cmd_add(req: Request) -> Result:
    from pycalico.cni import dataplane

    _validate(req.config)
    node = node_identity.node_name(req.config)
    mtu = node_identity.mtu(req.config)
    wl = workload(node, req.container_id, req.ifname, req.args, req.env)
    client = _client(req.config, req.env)
    _check_ready(client)
    # Before IPAM: no address for a pod it cannot wire.
    netns_fd = dataplane.pod_netns(req.netns, req.netns_opener)
    try:
        addresses, mac, dns = _add_with_namespace(req, client, wl, netns_fd, mtu)
    finally:
        os.close(netns_fd)
    interfaces = [{"name": wl.host_ifname}, {"name": req.ifname, "mac": mac, "sandbox": req.netns}]
    if mtu:
        interfaces[1]["mtu"] = mtu
    call_log.call(
        req.config,
        f"ADD ContainerID={req.container_id} Workload={wl.wep_name} "
        f"Pod={wl.namespace}/{wl.pod or '-'} Interface={req.ifname} "
        f"HostInterface={wl.host_ifname} MAC={mac} "
        f"Addresses={','.join(f'{a.ip}/{a.max_prefixlen}' for a in addresses)}",
    )
    return Result(
        ips=[IpConfig(f"{a.ip}/{a.max_prefixlen}", interface=1) for a in addresses],
        interfaces=interfaces,
        dns=dns,
    )


def _add_with_namespace(
    req: Request, client: Any, wl: Workload, netns_fd: int, mtu: int
) -> tuple[list[ipaddress.IPv4Interface | ipaddress.IPv6Interface], str, Any]:
    """IPAM, the pod's interface, then its endpoint, all or nothing: (addresses, MAC, DNS)."""
    from pycalico.api.registry import resolve
    from pycalico.cni import dataplane

    ipam_result = _run_ipam(req, "ADD")
    if ipam_result is None or not ipam_result.ips:
        raise CniError(GENERIC, "IPAM plugin returned missing IP config")
    try:
        addresses = [ipaddress.ip_interface(ip.address) for ip in ipam_result.ips]
        settings = req.config.get("container_settings") or {}
        mac = dataplane.wire(
            netns_fd,
            req.netns,
            req.ifname,
            wl.host_ifname,
            addresses,
            mtu,
            settings.get("allow_ip_forwarding", False),
        )
        try:
            endpoint = _endpoint_resource(req, wl, addresses, mac)
            _ensure_network_profile(client, req, wl)
            # The endpoint is written last: once it exists, nothing else can fail, so a
            # failed ADD never leaves an endpoint advertising a released address.
            client.apply(resolve("WorkloadEndpoint"), endpoint)
        except BaseException:
            dataplane.unwire_in(netns_fd, req.netns, req.ifname)
            raise
    except BaseException:
        _run_ipam(req, "DEL")  # give the addresses back: ADD is all or nothing
        raise
    return addresses, mac, ipam_result.dns


def cmd_del(req: Request) -> None:
    from pycalico.api.registry import resolve
    from pycalico.cni import dataplane
    from pycalico.datastore.resources import ResourceNotFound, UpdateConflict

    node = node_identity.node_name(req.config)
    wl = workload(node, req.container_id, req.ifname, req.args, req.env)
    client = _client(req.config, req.env)
    kind = resolve("WorkloadEndpoint")
    current = client.get(kind, wl.wep_name, wl.namespace)
    # A WEP of a newer sandbox for the same pod is not ours to delete.
    ours = current is not None and current["spec"].get("containerID") in ("", req.container_id)
    if ours:
        # Gone already, or replaced by a newer ADD meanwhile: nothing of ours to delete.
        with contextlib.suppress(ResourceNotFound, UpdateConflict):
            client.delete(kind, wl.wep_name, wl.namespace, current["metadata"]["resourceVersion"])
    if not dataplane.unwire(req.netns, req.ifname, req.netns_opener):
        # No namespace to enter, yet the pair may live on (a namespace unmounted but still
        # held, a wrong path): its host end goes, or it and its routes would stay forever.
        addresses = list(current["spec"].get("ipNetworks") or []) if ours else []
        if _ipam_type(req.config) == "calico-ipam":
            from pycalico.cni.ipam_plugin import addresses_of

            addresses += addresses_of(req)
        dataplane.remove_host_end(wl.host_ifname, addresses)
    _run_ipam(req, "DEL")
    released = list(current["spec"].get("ipNetworks") or []) if ours else []
    call_log.call(
        req.config,
        f"DEL ContainerID={req.container_id} Workload={wl.wep_name} "
        f"Pod={wl.namespace}/{wl.pod or '-'} Interface={req.ifname} "
        f"HostInterface={wl.host_ifname} Addresses={','.join(released) or '-'}"
        + ("" if ours else " (no endpoint of this container)"),
    )


def cmd_status(req: Request) -> None:
    from pycalico.cni.protocol import PLUGIN_NOT_AVAILABLE

    client = _client(req.config, req.env)
    try:
        _check_ready(client)
    except CniError as exc:
        raise CniError(PLUGIN_NOT_AVAILABLE, exc.msg) from None
    if _ipam_type(req.config) == "calico-ipam":
        from pycalico.cni.ipam_plugin import ipam_status

        ipam_status(req)


def cmd_gc(req: Request) -> None:
    """Remove this node's endpoints (and interfaces) for containers the runtime forgot."""
    from pycalico.api.registry import resolve
    from pycalico.cni import dataplane
    from pycalico.cni.ipam_plugin import network_handles
    from pycalico.datastore.resources import ResourceNotFound

    valid = req.valid_attachments()
    node = node_identity.node_name(req.config)
    client = _client(req.config, req.env)
    kind = resolve("WorkloadEndpoint")
    ours = network_handles(req, node)  # container ID -> handle, for this network only
    endpoints, _ = client.list(kind)
    for wep in endpoints:
        spec = wep["spec"]
        container = spec.get("containerID", "")
        if spec.get("node") != node or container in valid or container not in ours:
            continue
        with contextlib.suppress(ResourceNotFound):
            client.delete(kind, wep["metadata"]["name"], wep["metadata"]["namespace"])
        if spec.get("interfaceName"):
            dataplane.remove_host_interface(spec["interfaceName"])
    if _ipam_type(req.config) == "calico-ipam":
        from pycalico.cni.ipam_plugin import ipam_gc

        ipam_gc(req)
