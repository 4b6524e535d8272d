"""The files an install writes, with their contents and modes (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from pycalico.node.install import (
    calico_env,
    calicoctl_cfg,
    conflist,
    network_manager,
    systemd_unit,
)
from pycalico.node.install.layout import CALICO_ENV, CALICOCTL_CFG, CONFLIST, NM_CONF, UNIT
from pycalico.node.install.settings import Settings


@dataclass(frozen=True)
class PlannedFile:
    path: str  # the host path
    text: str
    mode: int


def files(settings: Settings, prefix: str, network_manager_present: bool) -> list[PlannedFile]:
    """What install writes besides the venv and the CNI executables.

    The conflist is 0600 as install-cni writes it (it may name etcd client keys), and so is
    calico.env (calico-node's whole configuration; only systemd and root read it).
    """
    planned = [
        PlannedFile(CONFLIST, conflist.render(settings), 0o600),
        PlannedFile(CALICOCTL_CFG, calicoctl_cfg.render(settings), 0o644),
        PlannedFile(CALICO_ENV, calico_env.render(settings), 0o600),
        PlannedFile(UNIT, systemd_unit.render(prefix), 0o644),
    ]
    if network_manager_present:
        planned.append(PlannedFile(NM_CONF, network_manager.render(), 0o644))
    return planned
