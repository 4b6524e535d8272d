"""Wait until every node's Felix has applied the datastore as it is now.

Each calico-node writes the revision its dataplane reflects to `<run>/felix-revision`
after every successful apply; once all nodes have reached the datastore's current
revision, every change made before the call is in every kernel.
"""

from __future__ import annotations

import time

from pycalico.felix.dataplane.status_files import read_revision
from pycalico.lab.state import LabError, LabState

SETTLE_TIMEOUT = 20.0


def _applied(state: LabState, node: str) -> int:
    return read_revision(state.path("nodes", node, "run", "felix-revision"))


def settle(state: LabState, timeout: float = SETTLE_TIMEOUT) -> None:
    from pycalico.datastore.config import config_from_env, open_backend
    from pycalico.lab.cluster import node_env
    from pycalico.lab.namespaces import ns_name
    from pycalico.netns import in_netns

    def revision() -> int:
        backend = open_backend(config_from_env(node_env(state, state.nodes[0])))
        try:
            return backend.revision()
        finally:
            backend.close()

    # From node1's namespace: an etcd lab's members are reachable only on its underlay.
    target = in_netns(f"/run/netns/{ns_name(state.name, state.nodes[0])}", revision)
    deadline = time.monotonic() + timeout
    behind = list(state.nodes)
    while behind:
        behind = [n for n in behind if _applied(state, n) < target]
        if behind and time.monotonic() > deadline:
            logs = ", ".join(state.path("nodes", n, "calico-node.log") for n in behind)
            raise LabError(f"Felix did not catch up with revision {target} on {behind}: {logs}")
        if behind:
            time.sleep(0.02)
