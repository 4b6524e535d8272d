"""The install manifest: read back as written, and refused when it names anything uninstall
must not delete (it deletes what the manifest lists)."""

from __future__ import annotations

import json

import pytest

from pycalico.node.install.errors import InstallError
from pycalico.node.install.manifest import Manifest, decode, encode

MANIFEST = Manifest(
    prefix="/opt/pycalico",
    wheels=(
        ("pip-26.3-py3-none-any.whl", "ab" * 32),
        ("pycalico-0.1.0-py3-none-any.whl", "cd" * 32),
    ),
    files=("/etc/calico/calico.env", "/opt/cni/bin/calico"),
    dirs=("/etc/calico", "/opt/cni"),
)


def test_a_manifest_reads_back_as_written() -> None:
    assert decode(encode(MANIFEST), "m") == MANIFEST


def test_the_same_manifest_encodes_to_the_same_bytes_whatever_the_order() -> None:
    shuffled = Manifest(
        MANIFEST.prefix,
        tuple(reversed(MANIFEST.wheels)),
        tuple(reversed(MANIFEST.files)),
        tuple(reversed(MANIFEST.dirs)),
    )
    assert encode(shuffled) == encode(MANIFEST)


@pytest.mark.parametrize(
    "change",
    [
        {"prefix": "/"},
        {"prefix": "opt/pycalico"},
        {"files": ["/etc/calico/../../"]},
        {"files": ["//etc"]},
        {"dirs": ["/"]},
        {"dirs": "/etc"},
        {"wheels": ["pip.whl"]},
        {"format": 2},
    ],
)
def test_a_manifest_naming_what_uninstall_must_not_delete_is_refused(change: dict) -> None:
    doc = json.loads(encode(MANIFEST)) | change
    with pytest.raises(InstallError, match=r"^/etc/calico/\.pycalico-install is not a manifest"):
        decode(json.dumps(doc), "/etc/calico/.pycalico-install")


def test_text_that_is_not_json_is_refused_as_a_manifest() -> None:
    with pytest.raises(InstallError, match="is not a manifest calico-node install wrote"):
        decode("prefix: /opt/pycalico", "m")


def test_a_manifest_owns_its_files_and_its_venv_only() -> None:
    assert MANIFEST.owns("/opt/pycalico") and MANIFEST.owns("/opt/cni/bin/calico")
    assert not MANIFEST.owns("/opt/cni/bin/portmap") and not MANIFEST.owns("/etc/calico")
