"""What the `calico` plugin logs about each call, as Calico's plugin does: to its log file
(`log_file_path` in the network configuration; Calico's conflist puts it in
/var/log/calico/cni/cni.log) and to the `pycalico.cni` logger (calico-node's log, when the
node's agent serves the call), at `log_level` (debug, info or error; anything else is info,
as in Calico). The file is appended to, never rotated: `log_file_max_size`, `_max_age` and
`_max_count` are not supported, and a call that sets them says so in the log.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from typing import Any

log = logging.getLogger("pycalico.cni")

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "error": logging.ERROR}
ROTATION = ("log_file_max_size", "log_file_max_age", "log_file_max_count")


def level(config: Mapping[str, Any]) -> int:
    value = config.get("log_level")
    return LEVELS.get(value.lower(), logging.INFO) if isinstance(value, str) else logging.INFO


def line(severity: int, message: str, now: float, pid: int) -> str:
    """One line of the log file, in the shape of Calico's plugin's (pure)."""
    stamp = (
        time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now)) + f".{int(now * 1000) % 1000:03d}"
    )
    return f"{stamp} [{logging.getLevelName(severity)}][{pid}] calico {message}\n"


def write(config: Mapping[str, Any], severity: int, message: str) -> None:
    """Log `message` if the configured level lets it through; a file that cannot be written
    costs the log line, never the call."""
    if severity < level(config):
        return
    log.log(severity, "%s", message)
    path = config.get("log_file_path")
    if not isinstance(path, str) or not path:
        return
    try:
        os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with os.fdopen(fd, "a", encoding="utf-8") as f:
            f.write(line(severity, message, time.time(), os.getpid()))
    except OSError as exc:
        log.warning("cannot write the CNI log %s: %s", path, exc.strerror or exc)


def call(config: Mapping[str, Any], message: str) -> None:
    """An ADD or DEL done, and any setting about the log itself that is not supported."""
    unsupported = [key for key in ROTATION if key in config]
    if unsupported:
        write(
            config,
            logging.WARNING,
            f"{', '.join(unsupported)} not supported: the log file is not rotated",
        )
    write(config, logging.INFO, message)
