"""`/etc/calico/calicoctl.cfg` (pure): the CalicoAPIConfig calicoctl reads by default.

The same datastore as calico.env, so that `calicoctl` typed on the host talks to the store
this node uses, as on a host set up by Calico's docs.
"""

from __future__ import annotations

import json
import re

from pycalico.node.install.settings import Settings

# calico.env name -> CalicoAPIConfig spec field (pycalico/datastore/config.py reads them).
_SPEC = (
    ("DATASTORE_TYPE", "datastoreType"),
    ("SQLITE_PATH", "sqlitePath"),
    ("ETCD_ENDPOINTS", "etcdEndpoints"),
    ("ETCD_CA_CERT_FILE", "etcdCACertFile"),
    ("ETCD_CERT_FILE", "etcdCertFile"),
    ("ETCD_KEY_FILE", "etcdKeyFile"),
)
# Paths, URLs and type names are plain YAML scalars; anything else is written as a JSON
# string, which YAML reads as the same string.
_PLAIN = re.compile(r"[A-Za-z0-9/][A-Za-z0-9_./:,@+-]*")


def _scalar(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else json.dumps(value)


def render(settings: Settings) -> str:
    lines = ["apiVersion: projectcalico.org/v3", "kind: CalicoAPIConfig", "metadata: {}", "spec:"]
    lines += [
        f"  {field}: {_scalar(settings.get(var))}" for var, field in _SPEC if settings.get(var)
    ]
    return "\n".join(lines) + "\n"
