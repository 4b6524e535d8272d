"""Writing the small files other processes read (nodename, mtu, pid and status files,
lab state): whoever reads sees the old file or the new one, never a half-written one."""

from __future__ import annotations

import os


def write_text(path: str, text: str, mode: int = 0o644) -> None:
    """Write `text` to `path` in one rename, creating its directory if need be."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(tmp, mode)  # readable by the CNI and tools whatever the writer's umask
    os.replace(tmp, path)
