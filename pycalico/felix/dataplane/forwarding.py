"""IP forwarding on, as Felix turns it on at start (ipForwarding: Enabled).

Without it a node delivers nothing arriving from a tunnel or the underlay to its pods: only
the pods' own veths get forwarding from the CNI. A new namespace inherits the host's
setting, so this only shows where the host has it off, as a stock Debian host has. Done
once: Felix never turns forwarding off again.
"""

from __future__ import annotations

import os

from pycalico.felix.calc.desired import Desired
from pycalico.felix.dataplane.manager import Manager
from pycalico.netns import write_sysctl


class ForwardingManager(Manager):
    def __init__(self) -> None:
        self._on = False

    def apply(self, desired: Desired) -> None:
        wanted = desired.routing.forwarding
        if self._on or wanted is None:
            return
        if wanted.ipv4:
            write_sysctl("ipv4/ip_forward", "1")
        if wanted.ipv6 and os.path.exists("/proc/sys/net/ipv6"):
            write_sysctl("ipv6/conf/all/forwarding", "1")
        self._on = True
