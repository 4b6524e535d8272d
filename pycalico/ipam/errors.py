"""IPAM failures; each message is meant for the user as it stands."""

from __future__ import annotations

import ipaddress


class IpamError(Exception):
    pass


class PoolsExhausted(IpamError):
    pass


class AddressInUse(IpamError):
    def __init__(self, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
        super().__init__(f"resource already exists: {ip} (Address already assigned in block)")
        self.ip = ip
