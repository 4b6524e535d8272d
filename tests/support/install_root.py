"""Throwaway roots for `calico-node install --root`: what is in one, to compare before and
after (bytes, modes, inodes and mtimes: "changes nothing" means none of them moved)."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

Entry = tuple[int, str, int, int]  # mode, sha256 of the bytes ("" for dirs), inode, mtime_ns


def snapshot(root: Path, skip: tuple[str, ...] = ()) -> dict[str, Entry]:
    """Every path under `root` (relative, with a leading /), except those under `skip`."""
    found: dict[str, Entry] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(path, root)
            if any(rel == s or rel.startswith(s + "/") for s in skip):
                continue
            st = os.lstat(path)
            digest = ""
            if stat.S_ISREG(st.st_mode):
                digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                digest = os.readlink(path)
            found[rel] = (st.st_mode, digest, st.st_ino, st.st_mtime_ns)
    return found


def files_in(root: Path) -> set[str]:
    """The files and links under `root`, as host paths (directories left out)."""
    return {path for path, (mode, *_rest) in snapshot(root).items() if not stat.S_ISDIR(mode)}


def contents(root: Path) -> dict[str, tuple[int, str]]:
    """What is under `root` (paths, modes, bytes), without times: a step that made a
    directory and removed it again leaves its parent's mtime moved but nothing else."""
    return {path: (mode, digest) for path, (mode, digest, *_rest) in snapshot(root).items()}
