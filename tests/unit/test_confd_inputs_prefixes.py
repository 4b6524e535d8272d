"""confd re-renders bird.cfg only for changes under the keys it is made of: those keys must
be every key `render` reads, or a change would never reach BIRD."""

from __future__ import annotations

from pycalico.confd import daemon
from pycalico.datastore.backend import KeyValue
from pycalico.datastore.mirror import Mirror


class ListingRecorder(Mirror):
    def __init__(self) -> None:
        super().__init__("/calico/")
        self.listed: list[str] = []

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.listed.append(prefix)
        return super().list(prefix)


def test_every_prefix_render_reads_is_one_confd_follows() -> None:
    view = ListingRecorder()
    daemon.render(view, "node1")
    assert view.listed and all(prefix in daemon.input_prefixes("node1") for prefix in view.listed)


def test_workload_endpoints_policies_and_other_nodes_blocks_are_not_confds_business() -> None:
    prefixes = daemon.input_prefixes("node1")
    for key in (
        "/calico/ipam/v2/host/node10/ipv4/block/10.244.0.64-26",
        "/calico/ipam/v2/host/node2/ipv6/block/fd00-10-244--40-122",
        "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/node1-k8s-pod-eth0",
        "/calico/resources/v3/projectcalico.org/networkpolicies/ns/default.deny",
        "/calico/resources/v3/projectcalico.org/felixconfigurations/default",
    ):
        assert not key.startswith(prefixes), key
    for key in (
        "/calico/resources/v3/projectcalico.org/bgppeers/rr",
        "/calico/ipam/v2/host/node1/ipv4/block/10.244.0.0-26",
        "/calico/ipam/v2/host/node1/ipv6/block/fd00-10-244--122",
    ):
        assert key.startswith(prefixes), key
