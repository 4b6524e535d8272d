"""Felix applies only after changes under the keys its snapshot is made of
(`snapshot.input_prefixes`): a key it reads outside them would be a change it never sees."""

from __future__ import annotations

from pycalico.datastore.backend import KeyValue
from pycalico.datastore.mirror import Mirror
from pycalico.felix.calc import snapshot
from pycalico.ipam import keys


class RecordingMirror(Mirror):
    def __init__(self) -> None:
        super().__init__("/calico/")
        self.read: list[str] = []

    def get(self, key: str) -> KeyValue | None:
        self.read.append(key)
        return super().get(key)

    def list(self, prefix: str) -> tuple[list[KeyValue], int]:
        self.read.append(prefix)
        return super().list(prefix)


def test_every_key_a_snapshot_reads_is_under_felix_input_prefixes() -> None:
    mirror = RecordingMirror()

    snapshot.SnapshotReader("node1").read(mirror)

    assert mirror.read
    prefixes = snapshot.input_prefixes()
    assert [key for key in mirror.read if not key.startswith(prefixes)] == []


def test_ipam_handles_and_bgp_resources_are_not_felix_inputs() -> None:
    prefixes = snapshot.input_prefixes()

    assert not keys.handle_key("k8s-pod-network.abc").startswith(prefixes)
    assert not "/calico/resources/v3/projectcalico.org/bgppeers/p".startswith(prefixes)
    assert "/calico/resources/v3/projectcalico.org/workloadendpoints/ns/x".startswith(prefixes)
