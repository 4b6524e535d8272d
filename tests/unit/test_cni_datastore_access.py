"""How the CNI opens its store: it uses one, it never starts one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pycalico.cni.datastore_access import backend_for
from pycalico.cni.protocol import IO_FAILURE, CniError

CALICO_IPAM = os.path.join(os.path.dirname(sys.executable), "calico-ipam")


def test_a_mistyped_sqlite_path_is_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nonexistent" / "dir" / "x.db"

    with pytest.raises(CniError) as raised:
        backend_for({"datastore_type": "sqlite", "sqlite_path": str(path)}, {})

    assert raised.value.code == IO_FAILURE
    assert raised.value.details == f"datastore {path} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_a_missing_store_is_not_created_in_an_existing_directory_either(tmp_path: Path) -> None:
    with pytest.raises(CniError, match="data store connection failed"):
        backend_for({"sqlite_path": str(tmp_path / "x.db")}, {})

    assert list(tmp_path.iterdir()) == []


def test_calico_ipam_add_with_a_mistyped_sqlite_path_fails_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "nonexistent" / "dir" / "x.db"
    netconf = {
        "cniVersion": "1.0.0",
        "name": "k8s-pod-network",
        "type": "calico",
        "nodename": "node1",
        "sqlite_path": str(path),
        "ipam": {"type": "calico-ipam"},
    }
    env = {
        "PATH": os.environ["PATH"],
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c1",
        "CNI_NETNS": "/run/netns/test",
        "CNI_IFNAME": "eth0",
        "CNI_PATH": "/opt/cni/bin",
    }

    out = subprocess.run(
        [CALICO_IPAM], env=env, input=json.dumps(netconf).encode(), capture_output=True
    )

    assert out.returncode == 1, out
    error = json.loads(out.stdout)
    assert error["code"] == IO_FAILURE
    assert str(path) in error["details"]
    assert list(tmp_path.iterdir()) == []
