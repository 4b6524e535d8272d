"""tunl0 on this kernel: it has no ipip module, so the manager must say so clearly.

(The working path is proven on a stock kernel by the VM suite.)
"""

from __future__ import annotations

import os

import pytest

from pycalico.felix.calc.desired import IpipSpec
from pycalico.felix.dataplane.ipip import IpipUnsupported, ensure
from pycalico.netns import in_netns
from tests.support.node_namespace import node_namespace

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(os.path.exists("/sys/module/ipip"), reason="this kernel has ipip"),
]


def test_a_kernel_without_ipip_gets_a_clear_error_and_no_device() -> None:
    from pyroute2 import IPRoute

    with node_namespace("ipnode") as node:
        ipr = in_netns(node.path, IPRoute)
        try:
            with pytest.raises(IpipUnsupported, match="this kernel has no ipip support"):
                ensure(ipr, IpipSpec(mtu=1480, address="10.244.1.0"))
            assert ipr.link_lookup(ifname="tunl0") == []
        finally:
            ipr.close()
