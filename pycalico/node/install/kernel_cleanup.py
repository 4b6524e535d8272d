"""Removes what calico-node left in the kernel of the current network namespace.

A dataplane cleaner in Felix's style: read the kernel's links and routes with pyroute2, pick
out Calico's by kernel_owner's rules, delete exactly those, then Felix's nftables tables.
Routes go first, so that a route through a device that cannot be deleted (`tunl0`) goes
too; something already gone by the time it is deleted (a route that left with its device)
is not an error. Nothing else in the namespace is touched.
"""

from __future__ import annotations

import errno
import socket
import subprocess
from collections.abc import Callable
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError
from pyroute2.netlink.rtnl import rt_type

from pycalico.netns import MAIN_TABLE
from pycalico.node.install.errors import InstallError
from pycalico.node.install.kernel_owner import (
    IPIP_DEVICE,
    NFT_TABLES,
    calico_route,
    deletable_link,
)

Log = Callable[[str], None]
_GONE = (errno.ENOENT, errno.ESRCH, errno.ENODEV)
_PROTO_NAMES = {2: "kernel", 3: "boot", 4: "static", 12: "bird"}
RTN_BLACKHOLE = rt_type["blackhole"]


def clean(log: Log) -> int:
    """Remove Calico's routes, links and nftables tables here; how many things went."""
    try:
        with IPRoute() as ipr:
            names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.get_links()}
            removed = _routes(ipr, names, log)
            removed += _ipip(ipr, names, log)
            removed += _links(ipr, names, log)
    except NetlinkError as exc:
        raise InstallError(f"cannot clean the kernel's Calico state: {exc.args[-1]}") from None
    return removed + _nft_tables(log)


def _describe(msg: Any, dev: str) -> str:
    dst = msg.get_attr("RTA_DST")
    family = "-6 " if msg["family"] == socket.AF_INET6 else ""
    where = f"{dst}/{msg['dst_len']}" if dst else "default"
    kind = "blackhole " if msg["type"] == RTN_BLACKHOLE else ""
    via = f" via {msg.get_attr('RTA_GATEWAY')}" if msg.get_attr("RTA_GATEWAY") else ""
    on = f" dev {dev}" if dev else ""
    return f"{family}{kind}{where}{via}{on} proto {_PROTO_NAMES.get(msg['proto'], msg['proto'])}"


def _routes(ipr: Any, names: dict[int, str], log: Log) -> int:
    removed = 0
    for family in (socket.AF_INET, socket.AF_INET6):
        # Listed in full first: a dump and deletions must not share the socket at once.
        for msg in list(ipr.get_routes(family=family, table=MAIN_TABLE)):
            dev = names.get(msg.get_attr("RTA_OIF"), "")
            if not calico_route(msg["proto"], dev):
                continue
            # The route's own key: the kernel deletes the first route matching what it is
            # given, so give it all that tells this route from its neighbours.
            args: dict[str, Any] = {
                "family": family,
                "dst_len": msg["dst_len"],
                "tos": msg["tos"],
                "table": MAIN_TABLE,
                "proto": msg["proto"],
                "type": msg["type"],
                # IPv4 matches the scope exactly (ip route del sends "nowhere" for any).
                "scope": msg["scope"],
            }
            if msg.get_attr("RTA_DST"):
                args["dst"] = msg.get_attr("RTA_DST")
            for attr, key in (("RTA_PRIORITY", "priority"), ("RTA_OIF", "oif")):
                if msg.get_attr(attr) is not None:
                    args[key] = msg.get_attr(attr)
            if _gone_ok(lambda args=args: ipr.route("del", **args)):
                log(f"deleted route {_describe(msg, dev)}")
                removed += 1
    return removed


def _ipip(ipr: Any, names: dict[int, str], log: Log) -> int:
    index = next((i for i, name in names.items() if name == IPIP_DEVICE), None)
    if index is None:
        return 0
    removed = 0
    for msg in list(ipr.get_addr(index=index)):
        address = f"{msg.get_attr('IFA_ADDRESS')}/{msg['prefixlen']}"
        if _gone_ok(
            lambda msg=msg: ipr.addr(
                "del", index=index, address=msg.get_attr("IFA_ADDRESS"), prefixlen=msg["prefixlen"]
            )
        ):
            log(f"deleted address {address} from {IPIP_DEVICE}")
            removed += 1
    (link,) = ipr.get_links(index)
    if link["flags"] & 1:  # IFF_UP: Felix set it up
        ipr.link("set", index=index, state="down")
        log(f"set {IPIP_DEVICE} down")
        removed += 1
    return removed


def _links(ipr: Any, names: dict[int, str], log: Log) -> int:
    removed = 0
    for index, name in sorted(names.items()):
        if deletable_link(name) and _gone_ok(lambda index=index: ipr.link("del", index=index)):
            log(f"deleted link {name}")
            removed += 1
    return removed


def _gone_ok(action: Callable[[], object]) -> bool:
    """Run `action`; False if what it deletes was already gone (a veth's peer, a route
    that went with its device)."""
    try:
        action()
    except NetlinkError as exc:
        if exc.code in _GONE:
            return False
        raise
    return True


def _nft_tables(log: Log) -> int:
    try:
        listed = subprocess.run(
            ["nft", "list", "tables"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        log("nft is not installed: no nftables table to remove")
        return 0
    if listed.returncode != 0:
        raise InstallError(f"nft list tables failed: {listed.stderr.strip()}")
    present = {line.removeprefix("table ").strip() for line in listed.stdout.splitlines()}
    removed = 0
    for table in NFT_TABLES:
        if table not in present:
            continue
        out = subprocess.run(
            ["nft", "delete", "table", *table.split()], capture_output=True, text=True, check=False
        )
        if out.returncode != 0:
            raise InstallError(f"cannot delete nftables table {table}: {out.stderr.strip()}")
        log(f"deleted nftables table {table}")
        removed += 1
    return removed
