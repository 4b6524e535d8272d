"""The record of what an install wrote (pure): uninstall removes exactly what it lists.

JSON, written with sorted keys so that an install that changes nothing rewrites nothing.
Uninstall deletes what it names, so a manifest is refused unless every path in it is an
absolute, normalised path other than `/`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from pycalico.node.install.errors import InstallError

FORMAT = 1


@dataclass(frozen=True)
class Manifest:
    prefix: str  # the venv, removed as a whole
    wheels: tuple[tuple[str, str], ...] = ()  # (file name, sha256) the venv was built from
    files: tuple[str, ...] = ()  # host paths of the files written
    dirs: tuple[str, ...] = ()  # host paths of the directories install created

    def owns(self, path: str) -> bool:
        return path in self.files or path == self.prefix


def encode(manifest: Manifest) -> str:
    doc = {
        "format": FORMAT,
        "prefix": manifest.prefix,
        "wheels": dict(manifest.wheels),
        "files": sorted(manifest.files),
        "dirs": sorted(manifest.dirs),
    }
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


def decode(text: str, where: str) -> Manifest:
    bad = InstallError(f"{where} is not a manifest calico-node install wrote; remove it by hand")
    try:
        doc = json.loads(text)
    except ValueError:
        raise bad from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bad
    prefix, wheels = doc.get("prefix"), doc.get("wheels", {})
    files, dirs = doc.get("files", []), doc.get("dirs", [])
    if not (
        isinstance(wheels, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in wheels.items())
        and isinstance(files, list)
        and isinstance(dirs, list)
        and all(_safe_path(p) for p in [prefix, *files, *dirs])
    ):
        raise bad
    return Manifest(str(prefix), tuple(sorted(wheels.items())), tuple(files), tuple(dirs))


def _safe_path(path: Any) -> bool:
    return (
        isinstance(path, str)
        and path.startswith("/")
        and not path.startswith("//")
        and path != "/"
        and os.path.normpath(path) == path
    )
