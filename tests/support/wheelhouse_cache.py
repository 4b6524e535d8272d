"""One wheelhouse for the install tests, rebuilt only when the source changes.

Building pycalico's wheel takes a few seconds and is offline; the dependency wheels are
downloaded from the package index once (by `pycalico.node.install.wheelhouse`, as `make
wheelhouse` does) and kept in build/test-wheelhouse, so later sessions are offline. The
key is a hash of pyproject.toml, every file under pycalico/ and the dependency pins.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pycalico.node.install import wheelhouse

REPO = Path(__file__).resolve().parents[2]
CACHE = REPO / "build" / "test-wheelhouse"
STAMP = ".source-key"


def source_key() -> str:
    digest = hashlib.sha256((REPO / "pyproject.toml").read_bytes())
    for path in sorted((REPO / "pycalico").rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            digest.update(str(path.relative_to(REPO)).encode() + b"\0" + path.read_bytes())
    digest.update("\n".join(wheelhouse.runtime_pins()).encode())
    return digest.hexdigest()


def cached_wheelhouse() -> Path:
    """The cached wheelhouse, (re)built first if the source has changed since."""
    key = source_key()
    stamp = CACHE / STAMP
    if not (stamp.is_file() and stamp.read_text() == key):
        wheelhouse.build(str(CACHE), str(REPO))
        stamp.write_text(key)
    return CACHE
