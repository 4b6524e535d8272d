"""Where an installed node's files go, as host paths (pure).

Every path here is where the host sees the file; with `--root DIR` (a throwaway root for
tests) the same path is used under DIR, and the files still name each other by their host
paths, as they would after a chroot.
"""

from __future__ import annotations

import os

DEFAULT_PREFIX = "/opt/pycalico"
CNI_BIN_DIR = "/opt/cni/bin"
CNI_PLUGINS = ("calico", "calico-ipam")
# install-cni also copies the plugins Calico's image bundles; a Debian host has them from
# containernetworking-plugins in /usr/lib/cni, which containerd's default CNI_PATH lacks.
BUNDLED_PLUGINS = ("portmap", "bandwidth", "host-local", "loopback")
DEBIAN_CNI_DIR = "/usr/lib/cni"
# Calico's docs put calicoctl and calico-node in /usr/local/bin.
LOCAL_BIN = "/usr/local/bin"
PROGRAMS = ("calicoctl", "calico-node")
CNI_NET_DIR = "/etc/cni/net.d"
CONFLIST = f"{CNI_NET_DIR}/10-calico.conflist"
CALICO_DIR = "/etc/calico"
CALICOCTL_CFG = f"{CALICO_DIR}/calicoctl.cfg"
CALICO_ENV = f"{CALICO_DIR}/calico.env"
MANIFEST = f"{CALICO_DIR}/.pycalico-install"
# Where calico-node (bird backend) renders BIRD's config unless CALICO_CONFD_DIR says
# otherwise: inside the directory install makes.
CONFD_DIR = f"{CALICO_DIR}/confd/config"
BIRD_CONFIGS = ("bird.cfg", "bird.cfg.new")
UNIT_NAME = "calico-node.service"
UNIT_DIR = "/etc/systemd/system"
UNIT = f"{UNIT_DIR}/{UNIT_NAME}"
NM_DIR = "/etc/NetworkManager"
NM_CONF = f"{NM_DIR}/conf.d/calico.conf"
# calico-node's defaults (node/main.py): its run directory holds the CNI agent's socket
# and the pid files uninstall stops processes by.
RUN_DIR = "/var/run/calico"
AGENT_SOCKET = f"{RUN_DIR}/cni-agent.sock"
NODE_PID_FILE = f"{RUN_DIR}/calico-node.pid"
BIRD_PID_FILE = f"{RUN_DIR}/bird.pid"


def under(root: str, path: str) -> str:
    """`path` (a host path) inside `root`."""
    return os.path.join(root, path.lstrip("/"))


def venv_python(prefix: str) -> str:
    return f"{prefix}/bin/python"


def venv_calico_node(prefix: str) -> str:
    return f"{prefix}/bin/calico-node"


def shim_paths() -> list[str]:
    return [f"{CNI_BIN_DIR}/{name}" for name in CNI_PLUGINS]
