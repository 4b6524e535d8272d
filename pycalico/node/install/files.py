"""Writing and removing an install's files under a root, and its manifest.

A file is rewritten only when its bytes or mode differ, in one rename, so that an install
with the same settings changes nothing and a reader never sees half a file.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable, Iterable

from pycalico.node.install import manifest as manifest_format
from pycalico.node.install.layout import MANIFEST, under
from pycalico.node.install.manifest import Manifest
from pycalico.node.install.plan import PlannedFile, PlannedLink

Log = Callable[[str], None]
DIR_MODE = 0o755


def same_file(path: str, data: bytes, mode: int) -> bool:
    try:
        st = os.lstat(path)
        if not stat.S_ISREG(st.st_mode) or stat.S_IMODE(st.st_mode) != mode:
            return False
        with open(path, "rb") as f:
            return f.read() == data
    except FileNotFoundError:
        return False


def replace_file(path: str, data: bytes, mode: int) -> None:
    """Put `data` at `path` with `mode`, in one rename (the directory must exist)."""
    tmp = f"{path}.pycalico-tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)  # whatever the umask
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_if_changed(root: str, path: str, data: bytes, mode: int) -> bool:
    target = under(root, path)
    if same_file(target, data, mode):
        return False
    replace_file(target, data, mode)
    return True


def write_planned(root: str, planned: Iterable[PlannedFile], log: Log) -> list[str]:
    """Write each planned file that differs; the host paths written."""
    written = []
    for item in planned:
        if write_if_changed(root, item.path, item.text.encode(), item.mode):
            log(f"wrote {item.path}")
            written.append(item.path)
    return written


def write_link(root: str, path: str, target: str) -> bool:
    """Make `path` a symbolic link to `target`, in one rename; whether it changed."""
    link = under(root, path)
    if os.path.islink(link) and os.readlink(link) == target:
        return False
    tmp = f"{link}.pycalico-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    os.symlink(target, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def write_links(root: str, planned: Iterable[PlannedLink], log: Log) -> list[str]:
    """Make each planned link that differs; the host paths made."""
    made = []
    for item in planned:
        if write_link(root, item.path, item.target):
            log(f"linked {item.path} -> {item.target}")
            made.append(item.path)
    return made


def missing_dirs(root: str, paths: Iterable[str]) -> list[str]:
    """The directories (host paths) that must be made for `paths`, parents first."""
    missing: set[str] = set()
    for path in paths:
        parent = os.path.dirname(path)
        while parent != "/" and not os.path.isdir(under(root, parent)):
            missing.add(parent)
            parent = os.path.dirname(parent)
    return sorted(missing, key=lambda p: (p.count("/"), p))


def make_dirs(root: str, dirs: Iterable[str]) -> None:
    for path in dirs:
        with contextlib.suppress(FileExistsError):
            os.mkdir(under(root, path), DIR_MODE)
            os.chmod(under(root, path), DIR_MODE)  # not narrowed by the umask


def remove_files(root: str, paths: Iterable[str], log: Log) -> None:
    for path in sorted(paths):
        try:
            os.unlink(under(root, path))
        except FileNotFoundError:
            continue
        log(f"removed {path}")


def remove_dirs(root: str, dirs: Iterable[str], log: Log) -> None:
    """Remove the directories install made, deepest first, unless something else is in
    them now (a file someone added, or calico-node's own state)."""
    for path in sorted(dirs, key=lambda p: (-p.count("/"), p)):
        try:
            os.rmdir(under(root, path))
        except FileNotFoundError:
            continue
        except OSError:
            log(f"kept {path}: it holds files install did not write")
            continue
        log(f"removed {path}/")


def read_manifest(root: str) -> Manifest | None:
    try:
        with open(under(root, MANIFEST), encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        text = ""
    return manifest_format.decode(text, MANIFEST)


def write_manifest(root: str, manifest: Manifest) -> bool:
    return write_if_changed(root, MANIFEST, manifest_format.encode(manifest).encode(), 0o644)


def remove_manifest(root: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(under(root, MANIFEST))
