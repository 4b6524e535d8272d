"""`/etc/calico/calico.env` (pure): calico-node's environment, as Calico's EnvironmentFile.

systemd reads it (`EnvironmentFile=`) and people `.` it into a shell to run calicoctl or
calico-node by hand, so a value either needs no quoting in either, or is put in single
quotes, which both read literally (settings.py refuses values holding a quote).
"""

from __future__ import annotations

import re

from pycalico.node.install.settings import Settings

HEADER = (
    "# calico-node's environment, read by calico-node.service.\n"
    "# Written by `calico-node install`: run it again with other settings to change them.\n"
)
_PLAIN = re.compile(r"[A-Za-z0-9_./:,@%+=-]+")


def quote(value: str) -> str:
    return value if _PLAIN.fullmatch(value) else f"'{value}'"


def render(settings: Settings) -> str:
    return HEADER + "".join(f"{name}={quote(value)}\n" for name, value in settings.env)
