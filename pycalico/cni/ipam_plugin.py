"""calico-ipam: ADD assigns addresses for a container, DEL releases them."""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import json
import os
import signal
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pycalico.cni import node_identity
from pycalico.cni.protocol import (
    INVALID_CONFIG,
    IO_FAILURE,
    TRY_AGAIN_LATER,
    CniError,
    IpConfig,
    Request,
    Result,
)

DEFAULT_LOCK_FILE = "/var/run/calico/ipam.lock"
OPERATION_TIMEOUT = 90  # seconds, counted from when the host lock is held
IPAM_FAILURE = 999  # Calico returns IPAM failures as generic CNI errors


@dataclass(frozen=True)
class IpamSettings:
    assign_ipv4: bool
    assign_ipv6: bool
    ipv4_pools: tuple[str, ...]
    ipv6_pools: tuple[str, ...]
    requested_ips: tuple[str, ...]  # specific addresses instead of auto-assignment


ANNOTATION_V4_POOLS = "cni.projectcalico.org/ipv4pools"
ANNOTATION_V6_POOLS = "cni.projectcalico.org/ipv6pools"
ANNOTATION_IP_ADDRS = "cni.projectcalico.org/ipAddrs"


def _string_list(value: Any, where: str, json_text: bool = False) -> tuple[str, ...]:
    if json_text and isinstance(value, str):  # annotations hold JSON, as on a Kubernetes pod
        try:
            value = json.loads(value)
        except ValueError:
            raise CniError(INVALID_CONFIG, f"{where} must be a JSON list of strings") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise CniError(INVALID_CONFIG, f"{where} must be a list of strings")
    return tuple(value)


def _pod_metadata(config: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """Annotations and IPs a non-Kubernetes runtime passes in `args.cni` (CNI conventions)."""
    args = config.get("args")
    cni = args.get("cni") if isinstance(args, dict) else None
    if not isinstance(cni, dict):
        return {}, []
    annotations = cni.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise CniError(INVALID_CONFIG, "args.cni.annotations must be an object")
    ips = cni.get("ips") or []
    if not isinstance(ips, list):
        raise CniError(INVALID_CONFIG, "args.cni.ips must be a list of strings")
    return annotations, ips


def ipam_settings(config: Mapping[str, Any], args: Mapping[str, str]) -> IpamSettings:
    """What to assign, with Calico's precedence: pod annotations over the network config."""
    ipam = config.get("ipam") or {}
    if not isinstance(ipam, dict):
        raise CniError(INVALID_CONFIG, "ipam must be a JSON object")
    annotations, ips = _pod_metadata(config)
    # Calico's string flags: v4 unless exactly "false", v6 only when exactly "true".
    v4 = str(ipam.get("assign_ipv4", "true")).lower() != "false"
    v6 = str(ipam.get("assign_ipv6", "false")).lower() == "true"
    v4_pools = _string_list(ipam.get("ipv4_pools") or [], "ipam.ipv4_pools")
    v6_pools = _string_list(ipam.get("ipv6_pools") or [], "ipam.ipv6_pools")
    if ANNOTATION_V4_POOLS in annotations:
        v4_pools = _string_list(annotations[ANNOTATION_V4_POOLS], ANNOTATION_V4_POOLS, True)
    if ANNOTATION_V6_POOLS in annotations:
        v6_pools = _string_list(annotations[ANNOTATION_V6_POOLS], ANNOTATION_V6_POOLS, True)
    if args.get("IPV4POOLS"):
        v4_pools = tuple(p for p in args["IPV4POOLS"].split(",") if p)
    if args.get("IPV6POOLS"):
        v6_pools = tuple(p for p in args["IPV6POOLS"].split(",") if p)
    requested: tuple[str, ...] = ()
    if ANNOTATION_IP_ADDRS in annotations:
        requested = _string_list(annotations[ANNOTATION_IP_ADDRS], ANNOTATION_IP_ADDRS, True)
    elif ips:
        requested = _string_list(ips, "args.cni.ips")
    if args.get("IP"):
        requested = tuple(p.strip() for p in args["IP"].split(",") if p.strip())
    return IpamSettings(v4, v6, v4_pools, v6_pools, requested)


def handle_id(req: Request) -> str:
    return f"{req.network_name}.{req.container_id}"


@contextlib.contextmanager
def host_lock(path: str) -> Iterator[None]:
    """One IPAM operation per node at a time (flock: also between threads of one agent).

    On the main thread (a plugin process) the lock is waited for as long as it takes and
    the operation timeout, a SIGALRM, starts once it is held. Signals cannot interrupt an
    agent's worker threads, so there the wait itself is bounded: a stuck holder makes the
    call fail with "try again later" instead of parking every worker behind it.
    """
    try:
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise CniError(IO_FAILURE, f"cannot open IPAM lock {path}: {exc.strerror}") from None
    try:
        if threading.current_thread() is not threading.main_thread():
            _flock_until(fd, time.monotonic() + OPERATION_TIMEOUT, path)
            yield
            return
        fcntl.flock(fd, fcntl.LOCK_EX)

        def expired(*_: object) -> None:
            raise CniError(TRY_AGAIN_LATER, f"IPAM operation took longer than {OPERATION_TIMEOUT}s")

        previous = signal.signal(signal.SIGALRM, expired)
        signal.alarm(OPERATION_TIMEOUT)
        try:
            yield
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    finally:
        os.close(fd)


def _flock_until(fd: int, deadline: float, path: str) -> None:
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise CniError(
                    TRY_AGAIN_LATER,
                    f"IPAM lock {path} held for over {OPERATION_TIMEOUT}s by another operation",
                ) from None
            time.sleep(0.002)


def _lock_path(req: Request) -> str:
    return str(req.config.get("ipam_lock_file") or DEFAULT_LOCK_FILE)


def _allocator(config: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    from pycalico.cni.datastore_access import backend_for
    from pycalico.ipam.allocator import Allocator

    return Allocator(backend_for(config, env))


def _attributes(req: Request, node: str) -> dict[str, str]:
    attrs = {
        "node": node,
        "network": req.network_name,
        "timestamp": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S.%f %z UTC"),
    }
    if req.args.get("K8S_POD_NAME") and req.args.get("K8S_POD_NAMESPACE"):
        attrs["namespace"] = req.args["K8S_POD_NAMESPACE"]
        attrs["pod"] = req.args["K8S_POD_NAME"]
    return attrs


def ipam_add(req: Request) -> Result:
    from pycalico.datastore.backend import DatastoreError
    from pycalico.ipam.errors import IpamError

    settings = ipam_settings(req.config, req.args)
    node = node_identity.node_name(req.config)
    handle = handle_id(req)
    alloc = _allocator(req.config, req.env)
    try:
        with host_lock(_lock_path(req)):
            existing = alloc.addresses_of_handle(handle)
            if existing:
                # A retried ADD for the same container gets what it was given before.
                if settings.requested_ips:  # specific addresses are host routes (/32, /128)
                    existing = [ipaddress.ip_interface(i.ip) for i in existing]
                return Result(ips=[IpConfig(str(i)) for i in existing])
            try:
                got = _assign(alloc, req, settings, node, handle)
            except BaseException:
                # All or nothing, whatever failed (IPAM, the datastore, the deadline).
                with contextlib.suppress(Exception):
                    alloc.release_by_handle(handle)
                raise
            return Result(ips=[IpConfig(str(i)) for i in got])
    except IpamError as exc:
        raise CniError(IPAM_FAILURE, str(exc)) from None
    except DatastoreError as exc:
        raise CniError(IO_FAILURE, "data store connection failed", str(exc)) from None


def _assign(alloc: Any, req: Request, settings: IpamSettings, node: str, handle: str) -> list[Any]:
    attrs = _attributes(req, node)
    state = alloc.read_state(node)
    if settings.requested_ips:
        got = []
        for text in settings.requested_ips:
            try:
                ip = ipaddress.ip_address(text.strip().split("/")[0])
            except ValueError:
                raise CniError(INVALID_CONFIG, f"invalid requested IP address {text!r}") from None
            assigned = alloc.assign_ip(ip, handle, attrs, node, state)
            got.append(ipaddress.ip_interface(f"{assigned.ip}/{assigned.max_prefixlen}"))
        return got
    got = []
    if settings.assign_ipv4:
        got += _family(alloc, 4, settings.ipv4_pools, handle, attrs, node, state)
    if settings.assign_ipv6:  # a failure here releases the v4 address too (ipam_add)
        got += _family(alloc, 6, settings.ipv6_pools, handle, attrs, node, state)
    if not got:
        raise CniError(
            INVALID_CONFIG, "no addresses requested: assign_ipv4 and assign_ipv6 are both off"
        )
    return got


def _family(
    alloc: Any,
    version: int,
    pools: tuple[str, ...],
    handle: str,
    attrs: dict[str, str],
    node: str,
    state: Any,
) -> list[Any]:
    from pycalico.ipam.errors import IpamError

    try:
        return list(alloc.auto_assign(1, version, handle, attrs, node, pools, state=state))
    except IpamError as exc:
        raise type(exc)(f"failed to request IPv{version} addresses: {exc}") from None


def ipam_del(req: Request) -> None:
    from pycalico.datastore.backend import DatastoreError

    alloc = _allocator(req.config, req.env)
    try:
        with host_lock(_lock_path(req)):
            alloc.release_by_handle(handle_id(req))
            # Allocations made before handles carried the network name.
            legacy = (
                f"{req.args['K8S_POD_NAMESPACE']}.{req.args['K8S_POD_NAME']}"
                if req.args.get("K8S_POD_NAME") and req.args.get("K8S_POD_NAMESPACE")
                else req.container_id
            )
            alloc.release_by_handle(legacy)
    except DatastoreError as exc:
        raise CniError(IO_FAILURE, "data store connection failed", str(exc)) from None


def addresses_of(req: Request) -> list[str]:
    """The addresses assigned to this container (by its handle), as `ip/prefix` text."""
    from pycalico.datastore.backend import DatastoreError

    try:
        return [str(i) for i in _allocator(req.config, req.env).addresses_of_handle(handle_id(req))]
    except DatastoreError as exc:
        raise CniError(IO_FAILURE, "data store connection failed", str(exc)) from None


def ipam_status(req: Request) -> None:
    """Ready when the datastore answers and some enabled pool exists (CNI 1.1 STATUS)."""
    from pycalico.cni.protocol import PLUGIN_NOT_AVAILABLE
    from pycalico.datastore.backend import DatastoreError

    alloc = _allocator(req.config, req.env)
    try:
        state = alloc.read_state(node_identity.node_name(req.config))
    except DatastoreError as exc:
        raise CniError(PLUGIN_NOT_AVAILABLE, "data store connection failed", str(exc)) from None
    if not any(not p["spec"].get("disabled") for p in state.pools):
        raise CniError(PLUGIN_NOT_AVAILABLE, "no enabled IP pool is configured")


def network_handles(req: Request, node: str) -> dict[str, str]:
    """Container ID -> IPAM handle, for this network's allocations on `node`.

    A handle is `<network>.<containerID>` and both may contain dots, so pycalico records
    the network in the allocation's attributes and trusts that. For allocations without
    it (written by another tool), a remainder with a dot could be another network's
    (`net.v2.c2` is network `net.v2`) and is left alone.
    """
    prefix = f"{req.network_name}."
    handles = _allocator(req.config, req.env).handles_on_node(node, prefix)
    return {
        handle[len(prefix) :]: handle
        for handle, attrs in handles.items()
        if attrs.get("network") == req.network_name
        or ("network" not in attrs and "." not in handle[len(prefix) :])
    }


def ipam_gc(req: Request) -> None:
    """Release this node's addresses of this network whose containers the runtime forgot."""
    valid = req.valid_attachments()
    node = node_identity.node_name(req.config)
    alloc = _allocator(req.config, req.env)
    with host_lock(_lock_path(req)):
        for container, handle in network_handles(req, node).items():
            if container not in valid:
                alloc.release_by_handle(handle)
