"""The files and links an install writes, with their contents, modes and targets (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from pycalico.node.install import (
    calico_env,
    calicoctl_cfg,
    conflist,
    network_manager,
    systemd_unit,
)
from pycalico.node.install.layout import (
    CALICO_ENV,
    CALICOCTL_CFG,
    CNI_BIN_DIR,
    CONFLIST,
    DEBIAN_CNI_DIR,
    LOCAL_BIN,
    NM_CONF,
    PROGRAMS,
    UNIT,
)
from pycalico.node.install.settings import Settings


@dataclass(frozen=True)
class PlannedFile:
    path: str  # the host path
    text: str
    mode: int


@dataclass(frozen=True)
class PlannedLink:
    path: str  # the host path of the link
    target: str  # the host path it points at


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


def links(prefix: str, bundled: Iterable[str]) -> list[PlannedLink]:
    """calicoctl and calico-node on the PATH, where Calico's docs install them, and each of
    the `bundled` plugins (the ones the host has in /usr/lib/cni and /opt/cni/bin lacks)
    next to calico, as install-cni copies the plugins of its image."""
    planned = [PlannedLink(f"{LOCAL_BIN}/{name}", f"{prefix}/bin/{name}") for name in PROGRAMS]
    planned += [
        PlannedLink(f"{CNI_BIN_DIR}/{name}", f"{DEBIAN_CNI_DIR}/{name}") for name in bundled
    ]
    return planned
