"""The pod interface, wired exactly as Calico wires it.

Host side: `caliXXXXXXXXXXX` with MAC ee:ee:ee:ee:ee:ee, proxy ARP, forwarding, and a
`<ip>/32 dev caliX scope link` route per address. Pod side: `eth0` with the addresses as
/32 (/128), `169.254.1.1 dev eth0 scope link` and `default via 169.254.1.1` (IPv6: via the
host end's link-local address).

The veth is created in the host namespace with its peer placed straight into the pod's
namespace (one netlink request); pod-side configuration runs on a thread that has joined
the pod's namespace, so no process is forked.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from typing import Any

from pycalico.cni.protocol import INVALID_ENV, IO_FAILURE, UNKNOWN_CONTAINER, CniError
from pycalico.netns import NotANetworkNamespace, enter, open_netns, write_sysctl

HOST_MAC = "ee:ee:ee:ee:ee:ee"
GATEWAY_V4 = "169.254.1.1"
EUI64_LINK_LOCAL_V6 = "fe80::ecee:eeff:feee:eeee"  # of ee:ee:ee:ee:ee:ee
LOOPBACK_INDEX = 1  # the loopback device has this index in every network namespace
# Routes go in as `proto boot`, what `ip route add` uses: Calico's workload routes carry no
# `proto` word.
ROUTE_PROTO = "boot"

Interface = ipaddress.IPv4Interface | ipaddress.IPv6Interface

_local = threading.local()


@contextlib.contextmanager
def host_netlink() -> Iterator[Any]:
    """A netlink handle in this process's namespace, kept per thread and reused.

    Opening one costs about as much as the rest of a pod's host-side wiring; the agent's
    worker threads serve many calls each. (pyroute2 handles are slower when shared across
    threads, hence per thread rather than a shared pool.)
    """
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

    handle = getattr(_local, "host", None)
    if handle is None:
        handle = _local.host = IPRoute()
    try:
        yield handle
    except (CniError, NetlinkError):
        raise  # a refusal, answered in full: the handle is fine
    except BaseException:
        _local.host = None
        handle.close()  # interrupted mid-exchange: its socket may hold half a reply
        raise


def pod_netns(netns: str, opener: Callable[[str], int] | None = None) -> int:
    """ADD: a descriptor of the pod's namespace, or the CNI error that says why there is none.

    `opener` turns the path into a checked descriptor (Request.netns_opener: the agent's
    hands out what the shim opened); by default the path is opened here (open_netns).
    """
    try:
        return (opener or open_netns)(netns)
    except FileNotFoundError:
        raise CniError(UNKNOWN_CONTAINER, f"network namespace {netns} does not exist") from None
    except NotANetworkNamespace as exc:
        raise CniError(INVALID_ENV, f"CNI_NETNS {exc}") from None
    except OSError as exc:
        raise CniError(INVALID_ENV, f"cannot open CNI_NETNS {netns}: {exc.strerror}") from None


def _host_sysctls(host_ifname: str, v4: bool, v6: bool) -> None:
    if v4:
        write_sysctl(f"ipv4/conf/{host_ifname}/route_localnet", "1")
        write_sysctl(f"ipv4/conf/{host_ifname}/proxy_arp", "1")
        write_sysctl(f"ipv4/conf/{host_ifname}/forwarding", "1")
        # Strict reverse-path filtering, as Felix sets it: a pod cannot send from an
        # address that is not routed back to its own interface (no source spoofing).
        write_sysctl(f"ipv4/conf/{host_ifname}/rp_filter", "1")
        with contextlib.suppress(OSError):  # Calico only warns when this knob is missing
            write_sysctl(f"ipv4/neigh/{host_ifname}/proxy_delay", "0")
    if v6:
        write_sysctl(f"ipv6/conf/{host_ifname}/accept_dad", "0")
        write_sysctl(f"ipv6/conf/{host_ifname}/disable_ipv6", "0")
        write_sysctl(f"ipv6/conf/{host_ifname}/proxy_ndp", "1")
        write_sysctl(f"ipv6/conf/{host_ifname}/forwarding", "1")
    with contextlib.suppress(OSError):  # no IPv6 on this host
        write_sysctl(f"ipv6/conf/{host_ifname}/accept_ra", "0")


def wire(
    netns_fd: int,
    netns: str,
    ifname: str,
    host_ifname: str,
    addresses: Sequence[Interface],
    mtu: int,
    allow_ip_forwarding: bool = False,
    queues: int = 1,
) -> str:
    """Create and configure the pod interface in the pod's namespace `netns_fd` (from
    pod_netns; the caller closes it; `netns` names it in errors); return the pod-side MAC.

    `queues` is the tx/rx queue count of both ends (Calico's `num_queues`, default 1; left
    to itself the kernel would give a veth one queue per CPU).
    On any failure everything made so far is removed before the error is raised.
    """
    from pyroute2.netlink.exceptions import NetlinkError

    v4 = [a for a in addresses if a.version == 4]
    v6 = [a for a in addresses if a.version == 6]
    with host_netlink() as host:
        stale = host.link_lookup(ifname=host_ifname)
        if stale:
            host.link("del", index=stale[0])  # a leftover from an earlier ADD of this pod
        # The pod's MAC is chosen here (random, locally administered, as the kernel would)
        # so that it need not be read back from inside the pod.
        mac = _random_mac()
        peer: dict[str, Any] = {"ifname": ifname, "net_ns_fd": netns_fd, "address": mac}
        # MAC and up in the same request: one netlink round trip instead of three. The pod
        # end is still down, so nothing flows before the sysctls below are set.
        link: dict[str, Any] = {
            "ifname": host_ifname,
            "kind": "veth",
            "peer": peer,
            "address": HOST_MAC,
            "state": "up",
        }
        if mtu:
            peer["mtu"] = link["mtu"] = mtu
        if queues > 0:
            for end in (peer, link):
                end["num_tx_queues"] = end["num_rx_queues"] = queues
        try:
            host.link("add", **link)
        except NetlinkError as exc:
            raise CniError(
                IO_FAILURE,
                f"failed to create veth {host_ifname}/{ifname}: {os.strerror(exc.code)}",
            ) from None
        created = host.link("get", ifname=host_ifname)[0]
        index = created["index"]
        pod_index = created.get_attr("IFLA_LINK")  # the peer's index in the pod's namespace
        try:
            _host_sysctls(host_ifname, bool(v4), bool(v6))
            try:
                enter(
                    netns_fd,
                    netns,
                    lambda: _configure_pod(pod_index, ifname, v4, v6, allow_ip_forwarding),
                )
                if v6:
                    # The pod's IPv6 default goes via the host end's link-local address,
                    # which exists only once both ends are up: read it, as Calico does.
                    gateway = _link_local(host, index)
                    enter(netns_fd, netns, lambda: _add_v6_default(pod_index, gateway))
            except NetlinkError as exc:
                raise CniError(
                    IO_FAILURE, f"failed to configure {ifname} in {netns}: {os.strerror(exc.code)}"
                ) from None
            for addr in addresses:
                _add_host_route(host, index, host_ifname, addr)
        except BaseException:
            host.link("del", index=index)
            raise
    return mac


def _configure_pod(
    index: int,
    ifname: str,
    v4: Sequence[Interface],
    v6: Sequence[Interface],
    allow_ip_forwarding: bool,
) -> None:
    from pyroute2 import IPRoute

    forwarding = "1" if allow_ip_forwarding else "0"
    with IPRoute() as pod:
        if v6:
            for name in ("all", "default", "lo"):
                write_sysctl(f"ipv6/conf/{name}/disable_ipv6", "0")
            write_sysctl(f"ipv6/conf/{ifname}/accept_dad", "0")
        pod.link("set", index=index, state="up")
        pod.link("set", index=LOOPBACK_INDEX, state="up")
        for addr in [*v4, *v6]:
            pod.addr("add", index=index, address=str(addr.ip), prefixlen=addr.max_prefixlen)
        if v4:
            pod.route("add", dst=f"{GATEWAY_V4}/32", oif=index, scope="link", proto=ROUTE_PROTO)
            pod.route("add", dst="0.0.0.0/0", gateway=GATEWAY_V4, oif=index, proto=ROUTE_PROTO)
            write_sysctl("ipv4/ip_forward", forwarding)
        if v6:
            write_sysctl("ipv6/conf/all/forwarding", forwarding)


def _random_mac() -> str:
    octets = bytearray(os.urandom(6))
    octets[0] = (octets[0] & 0xFE) | 0x02  # unicast, locally administered
    return ":".join(f"{b:02x}" for b in octets)


def _link_local(host: Any, index: int, attempts: int = 10) -> str:
    """The host end's IPv6 link-local address, waiting briefly for the kernel to assign it.

    Normally the EUI-64 address of ee:ee:ee:ee:ee:ee; another address-generation mode gives
    another address, so it is read rather than assumed.
    """
    from pyroute2.netlink.rtnl import rt_scope

    for _ in range(attempts):
        found = [
            a.get_attr("IFA_ADDRESS")
            for a in host.get_addr(index=index, family=socket.AF_INET6)
            if a["scope"] == rt_scope["link"]
        ]
        if found:
            return str(found[0])
        time.sleep(0.05)
    return EUI64_LINK_LOCAL_V6


def _add_v6_default(index: int, gateway: str) -> None:
    from pyroute2 import IPRoute

    with IPRoute() as pod:
        pod.route(
            "add", dst="::/0", gateway=gateway, oif=index, proto=ROUTE_PROTO, family=socket.AF_INET6
        )


def _add_host_route(host: Any, index: int, host_ifname: str, addr: Interface) -> None:
    from pyroute2.netlink.exceptions import NetlinkError

    dst = f"{addr.ip}/{addr.max_prefixlen}"
    family = socket.AF_INET if addr.version == 4 else socket.AF_INET6
    try:
        host.route("add", dst=dst, oif=index, scope="link", proto=ROUTE_PROTO, family=family)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise
        existing = host.route("get", dst=str(addr.ip), family=family)
        oif = existing[0].get_attr("RTA_OIF") if existing else None
        if oif != index:
            raise CniError(
                IO_FAILURE,
                f"route {dst} already exists for an interface other than '{host_ifname}'",
            ) from None


def unwire(netns: str, ifname: str, opener: Callable[[str], int] | None = None) -> bool:
    """DEL: remove `ifname` inside the pod's namespace (its host end goes with it).

    As Calico, nothing is removed by host-side name here: a newer sandbox of the same pod
    has the same host interface name, and a late DEL for the old one must not touch it.
    False when there is no namespace to enter (empty, missing, or a path that is not a
    network namespace): the caller decides about the host end (remove_host_end). `opener`
    as for pod_netns.
    """
    if not netns:
        return False
    try:
        fd = (opener or open_netns)(netns)
    except (FileNotFoundError, NotANetworkNamespace):
        return False
    try:
        unwire_in(fd, netns, ifname)
    finally:
        os.close(fd)
    return True


def unwire_in(netns_fd: int, netns: str, ifname: str) -> None:
    """Remove `ifname` inside the pod's namespace `netns_fd` (`netns` names it in errors)."""
    from pyroute2 import IPRoute

    def remove() -> None:
        with IPRoute() as pod:
            found = pod.link_lookup(ifname=ifname)
            if found:
                pod.link("del", index=found[0])

    enter(netns_fd, netns, remove)


def remove_host_end(host_ifname: str, addresses: Collection[str]) -> None:
    """DEL without a pod namespace to enter: remove the host end `host_ifname` if it routes
    one of the container's `addresses`.

    The route is the proof that the interface is this container's: a newer sandbox of the
    same pod has the same interface name but routes its own addresses. (When the pod's
    namespace is really gone, the kernel has removed the pair already.)
    """
    ours = {ipaddress.ip_address(a.split("/")[0]) for a in addresses}
    if not ours:
        return
    with host_netlink() as host:
        found = host.link_lookup(ifname=host_ifname)
        if not found:
            return
        routed = {
            ipaddress.ip_address(route.get_attr("RTA_DST"))
            for family in (socket.AF_INET, socket.AF_INET6)
            for route in host.get_routes(family=family, oif=found[0])
            if route.get_attr("RTA_DST") and route["dst_len"] in (32, 128)
        }
        if routed & ours:
            from pyroute2.netlink.exceptions import NetlinkError

            try:
                host.link("del", index=found[0])
            except NetlinkError as exc:
                # The kernel tears a deleted namespace's pairs down in the background: the
                # host end may go between the lookup and the delete.
                if exc.code != errno.ENODEV:
                    raise


def remove_host_interface(host_ifname: str) -> None:
    """GC: remove a host-side interface whose container the runtime no longer knows."""
    with host_netlink() as host:
        found = host.link_lookup(ifname=host_ifname)
        if found:
            host.link("del", index=found[0])
