"""The files Felix keeps for others on the host: one per endpoint whose policy is in the
kernel, the datastore revision the kernel reflects, and the MTU pods should get.

Who waits for a new pod to be usable (the lab, a runtime) watches for its endpoint's file,
as Calico's CNI waits for Felix's endpoint status; whoever changed the datastore can wait
for the revision file to catch up; the CNI reads the MTU file when it wires a pod.
"""

from __future__ import annotations

import contextlib
import json
import os

from pycalico.atomic_file import write_text
from pycalico.felix.calc.desired import Desired
from pycalico.felix.dataplane.manager import Manager


class EndpointStatusManager(Manager):
    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._written: set[str] | None = None  # None: read the directory first

    def apply(self, desired: Desired) -> None:
        interfaces = desired.endpoints
        present = self._written
        if present is None:  # first time: whatever an earlier run left there
            os.makedirs(self.directory, exist_ok=True)
            present = set(os.listdir(self.directory))
        self._written = None  # until the directory is as `interfaces` says again
        for name in present - interfaces:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(os.path.join(self.directory, name))
        for name in interfaces - present:
            path = os.path.join(self.directory, name)
            write_text(path, json.dumps({"ifaceName": name, "status": "up"}) + "\n")
        self._written = set(interfaces)


# The revision twice, at a fixed width, written in place: a same-length overwrite costs
# ~1 µs where a new file and a rename cost ~190 µs of filesystem journal on this ext4,
# ~10 ms each with 40 nodes writing at once (bench/scale.py's lab). A reader that catches a
# write halfway sees two different halves and takes it as unwritten (`read_revision`).
_REVISION_WIDTH = 20
_REVISION_BYTES = 2 * _REVISION_WIDTH + 2


def read_revision(path: str) -> int:
    """The revision Felix has applied, per its revision file (0: none yet)."""
    try:
        with open(path, encoding="ascii") as f:
            first, _, second = f.read().partition(" ")
        if len(first) != _REVISION_WIDTH or first != second.rstrip("\n"):
            return 0
        return int(first)
    except (OSError, ValueError):
        return 0


class RevisionFileManager(Manager):
    """Last in the driver's order: the revision is written once everything reflects it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._written = -1
        self._fd: int | None = None

    def apply(self, desired: Desired) -> None:
        self.write(desired.revision)

    def write(self, revision: int) -> None:
        # An apply with nothing new from the datastore (a link event, a route due) leaves
        # it as it is.
        if revision <= self._written:
            return
        if self._fd is None:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
            os.ftruncate(self._fd, _REVISION_BYTES)  # whatever an earlier run left there
        text = f"{revision:0{_REVISION_WIDTH}d}"
        os.pwrite(self._fd, f"{text} {text}\n".encode("ascii"), 0)
        self._written = revision

    def reset(self) -> None:
        self._written = -1

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class MtuFileManager(Manager):
    def __init__(self, path: str) -> None:
        self.path = path
        self._written = 0

    def apply(self, desired: Desired) -> None:
        value = desired.routing.pod_mtu
        if value != self._written:
            write_text(self.path, f"{value}\n")
            self._written = value
