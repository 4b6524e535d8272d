"""`calico-kube-controllers`: the part of Calico's kube-controllers pycalico has, the node
controller's automatic host endpoints (auto_host_endpoints.py), as one process following the
datastore. calico-lab runs it; on other hosts it runs wherever one copy should.

Like kube-controllers it creates KubeControllersConfiguration `default` with Calico's
defaults when there is none, then keeps the automatic host endpoints as that configuration
and the Nodes ask, after every change and on a periodic resync. Datastore settings come from
the environment, as for calicoctl (DATASTORE_TYPE, SQLITE_PATH, ETCD_ENDPOINTS, ...).
"""

from __future__ import annotations

import copy
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from pycalico.api.kubecontrollers import KUBE_CONTROLLERS_DEFAULTS
from pycalico.api.registry import resolve
from pycalico.api.resource import normalize
from pycalico.datastore.backend import Backend, DatastoreError
from pycalico.datastore.mirror import Mirror
from pycalico.datastore.resources import ResourceClient, ResourceError
from pycalico.kube import auto_host_endpoints

log = logging.getLogger("pycalico.kube_controllers")
RESYNC_SECONDS = 300.0  # kube-controllers' default reconcilerPeriod


class AutoHostEndpointController:
    def __init__(self, backend: Backend) -> None:
        self.writer = ResourceClient(backend)

    def apply(self, view: Mirror) -> None:
        reader = ResourceClient(view)
        config = reader.get(resolve("KubeControllersConfiguration"), "default")
        if config is None:
            config = self._create_default()
        nodes, _ = reader.list(resolve("Node"))
        heps, _ = reader.list(resolve("HostEndpoint"))
        changes = auto_host_endpoints.reconcile(config["spec"], nodes, heps)
        if changes:
            self._write(changes, {h["metadata"]["name"]: h for h in heps})

    def _create_default(self) -> dict[str, Any]:
        kind = resolve("KubeControllersConfiguration")
        default = {
            "apiVersion": "projectcalico.org/v3",
            "kind": "KubeControllersConfiguration",
            "metadata": {"name": "default"},
            "spec": copy.deepcopy(KUBE_CONTROLLERS_DEFAULTS),
        }
        try:
            made = self.writer.create(kind, normalize(default))
        except ResourceError:  # someone else made it meanwhile: theirs holds
            found = self.writer.get(kind, "default")
            return found if found is not None else default
        log.info("created KubeControllersConfiguration default")
        return made

    def _write(
        self, changes: auto_host_endpoints.Changes, current: Mapping[str, dict[str, Any]]
    ) -> None:
        """Each change on its own: one that fails (a conflicting writer) is retried by the
        next apply, and does not hold up the others."""
        kind = resolve("HostEndpoint")
        for hep in changes.create:
            name = hep["metadata"]["name"]
            _attempt("create", name, lambda h=hep: self.writer.create(kind, normalize(h)))
        for hep in changes.update:
            meta = current[hep["metadata"]["name"]]["metadata"]
            keep = {
                k: meta[k] for k in ("resourceVersion", "uid", "creationTimestamp") if k in meta
            }
            updated = {**hep, "metadata": {**hep["metadata"], **keep}}
            _attempt(
                "update", meta["name"], lambda u=updated: self.writer.update(kind, normalize(u))
            )
        for name in changes.delete:
            _attempt("delete", name, lambda n=name: self.writer.delete(kind, n))


def _attempt(verb: str, name: str, write: Callable[[], object]) -> None:
    try:
        write()
    except (ResourceError, ValueError) as exc:
        log.warning("could not %s host endpoint %s (retried later): %s", verb, name, exc)
    else:
        log.info("%sd host endpoint %s", verb, name)


def run(env: Mapping[str, str], stop: threading.Event) -> int:
    from pycalico.datastore.config import config_from_env, open_backend
    from pycalico.datastore.follow import follow

    backend = open_backend(config_from_env(env))
    try:
        controller = AutoHostEndpointController(backend)
        log.info("calico-kube-controllers started (node controller: automatic host endpoints)")
        follow(backend, controller.apply, stop, lambda: RESYNC_SECONDS)
    finally:
        backend.close()
    return 0


def main() -> int:
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s"
    )
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        return run(os.environ, stop)
    except (DatastoreError, ValueError, OSError) as exc:
        sys.stderr.write(f"calico-kube-controllers: {exc}\n")
        return 1
