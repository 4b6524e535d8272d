"""The datastore a CNI call uses, opened once per process and shared.

The node agent serves many calls; opening SQLite (or connecting to etcd) for each one would
cost more than the call's own reads and writes.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from pycalico.cni import node_identity
from pycalico.cni.protocol import IO_FAILURE, CniError
from pycalico.datastore.backend import Backend
from pycalico.datastore.config import DatastoreConfig

_shared: dict[Any, Backend] = {}
_lock = threading.Lock()


def call_settings(config: Mapping[str, Any], env: Mapping[str, str]) -> DatastoreConfig:
    """The datastore a call names: its netconf's keys over the caller's environment's.
    ConfigError (or CniError) when they name none that pycalico can open."""
    from pycalico.datastore.config import config_from_env

    return config_from_env(node_identity.datastore_env(config, env))


def backend_for(config: Mapping[str, Any], env: Mapping[str, str]) -> Backend:
    from pycalico.datastore.backend import DatastoreError
    from pycalico.datastore.config import ConfigError, open_backend

    try:
        settings = call_settings(config, env)
        with _lock:
            backend = _shared.get(settings)
            if backend is None:
                backend = _shared[settings] = open_backend(settings)
        return backend
    except (ConfigError, DatastoreError) as exc:
        raise CniError(IO_FAILURE, "data store connection failed", str(exc)) from None
