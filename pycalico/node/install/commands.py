"""`calico-node install` and `calico-node uninstall`: check everything, then act.

Install checks every setting, the wheelhouse, and that nothing it would write is someone
else's, before it changes anything; it then records what it is about to write (so that an
interrupted install can still be uninstalled), builds the venv, the CNI shims and the
files, and records what it wrote. Uninstall stops the node, removes what calico-node left
in the kernel of the current network namespace, then exactly the files and directories the
manifest lists. The datastore is never touched.
"""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Callable

from pycalico.node.install import files, kernel_cleanup, plan, services, shims, venv
from pycalico.node.install.errors import InstallError
from pycalico.node.install.layout import (
    BIRD_CONFIGS,
    BUNDLED_PLUGINS,
    CALICO_DIR,
    CALICO_ENV,
    CNI_BIN_DIR,
    CONFD_DIR,
    DEBIAN_CNI_DIR,
    MANIFEST,
    NM_CONF,
    NM_DIR,
    UNIT,
    shim_paths,
    under,
)
from pycalico.node.install.manifest import Manifest
from pycalico.node.install.settings import resolve
from pycalico.node.options import Install, Uninstall

Log = Callable[[str], None]


def _root(path: str) -> str:
    root = os.path.abspath(path)
    if not os.path.isdir(root):
        raise InstallError(f"--root {path} is not a directory")
    if root == "/" and os.geteuid() != 0:
        raise InstallError("must run as root to install into this host (or give --root DIR)")
    return root


def install(request: Install, log: Log, warn: Log) -> int:
    root = _root(request.root)
    prefix = request.prefix
    settings = resolve(request.settings, socket.gethostname())
    wheelhouse = os.path.abspath(request.wheelhouse)
    wheels = venv.wheels(wheelhouse)
    for path in settings.cert_files():
        if not os.path.isfile(under(root, path)):
            raise InstallError(f"{path} does not exist (etcd client certificate files)")
    old = files.read_manifest(root)
    if old is not None and old.prefix != prefix:
        raise InstallError(
            f"pycalico is installed in {old.prefix}; calico-node uninstall first to move it "
            f"to {prefix}"
        )
    planned = plan.files(settings, prefix, os.path.isdir(under(root, NM_DIR)))
    bundled = _bundled_plugins(root, old)
    links = plan.links(prefix, bundled)
    targets = [item.path for item in planned] + shim_paths() + [item.path for item in links]
    _refuse_foreign(root, [*targets, prefix], old)
    new_dirs = files.missing_dirs(root, [*targets, MANIFEST, prefix])
    old_dirs = old.dirs if old else ()
    dirs = tuple(sorted({*old_dirs, *new_dirs}))
    # Recorded before anything is written: an install cut short is still uninstallable.
    intent = Manifest(
        prefix,
        old.wheels if old else (),
        tuple(sorted({*targets, *(old.files if old else ())})),
        dirs,
    )
    files.make_dirs(root, new_dirs)
    files.write_manifest(root, intent)
    try:
        venv_changed = _venv(root, prefix, wheelhouse, wheels, old, log)
    except InstallError:
        _undo(root, old, new_dirs)
        raise
    changed = (
        shims.install(root, prefix, log)
        + files.write_planned(root, planned, log)
        + files.write_links(root, links, log)
    )
    stale = sorted(set(old.files if old else ()) - set(targets))
    files.remove_files(root, stale, log)
    files.write_manifest(root, Manifest(prefix, wheels, tuple(sorted(targets)), dirs))
    _tell_systemd(root, UNIT in changed, bool(changed or stale or venv_changed), log)
    portmap = f"{CNI_BIN_DIR}/portmap"
    if "portmap" not in bundled and not os.path.lexists(under(root, portmap)):
        warn(
            f"warning: the conflist chains portmap after calico, and neither {portmap} nor "
            f"{DEBIAN_CNI_DIR}/portmap exists (apt-get install containernetworking-plugins)"
        )
    if NM_CONF in changed:
        log("NetworkManager reads calico.conf when it starts again, or: nmcli general reload conf")
    if changed or stale or venv_changed or new_dirs:
        log(
            f"installed pycalico for node {settings.nodename} "
            "(start it: systemctl enable --now calico-node)"
        )
    else:
        log(f"pycalico for node {settings.nodename} is installed as asked: nothing changed")
    return 0


def _bundled_plugins(root: str, old: Manifest | None) -> list[str]:
    """The host's plugins to link into /opt/cni/bin: those Debian's package put in
    /usr/lib/cni, where /opt/cni/bin has none of its own (a link install made is not one)."""
    found = []
    for name in BUNDLED_PLUGINS:
        path = f"{CNI_BIN_DIR}/{name}"
        if not os.path.isfile(under(root, f"{DEBIAN_CNI_DIR}/{name}")):
            continue
        if os.path.lexists(under(root, path)) and not (old and old.owns(path)):
            continue
        found.append(name)
    return found


def _refuse_foreign(root: str, paths: list[str], old: Manifest | None) -> None:
    for path in paths:
        if os.path.lexists(under(root, path)) and not (old and old.owns(path)):
            raise InstallError(
                f"{path} exists and calico-node install did not write it; "
                "move it away (or uninstall what put it there) first"
            )


def _venv(
    root: str,
    prefix: str,
    wheelhouse: str,
    wheels: tuple[tuple[str, str], ...],
    old: Manifest | None,
    log: Log,
) -> bool:
    if old is not None and old.wheels == wheels and venv.installed(root, prefix):
        return False
    venv.build(root, prefix, wheelhouse, log)
    return True


def _undo(root: str, old: Manifest | None, new_dirs: list[str]) -> None:
    """A failed venv step leaves the host as it found it (the venv itself, if made now,
    is gone already)."""
    if old is None:
        files.remove_manifest(root)
    else:
        files.write_manifest(root, old)
    files.remove_dirs(root, new_dirs, lambda _line: None)


def _tell_systemd(root: str, unit_changed: bool, changed: bool, log: Log) -> None:
    if not services.systemd_runs(root):
        log(f"systemctl not used: {services.why_no_systemctl(root)}")
        return
    if unit_changed:
        services.systemctl("daemon-reload")
        log("systemctl daemon-reload")
    if changed and services.unit_active():
        # calico-node restarts; BIRD keeps running and is adopted (KillMode=process).
        services.systemctl("try-restart", "calico-node.service")
        log("restarted calico-node.service for the new install")


def uninstall(request: Uninstall, log: Log) -> int:
    root = _root(request.root)
    old = files.read_manifest(root)
    nodename = _installed_env(root, "NODENAME") if old else ""
    confd = (_installed_env(root, "CALICO_CONFD_DIR") or CONFD_DIR) if old else ""
    if old and UNIT in old.files and services.systemd_runs(root):
        services.systemctl("disable", "--now", "calico-node.service")
        log("systemctl disable --now calico-node.service")
    else:
        why = services.why_no_systemctl(root) if old else "no unit installed"
        log(f"systemctl not used: {why}")
    services.stop_by_pid_files(root, log)
    kernel_cleanup.clean(log)
    if old is None:
        log(f"nothing installed in {root} (no {MANIFEST}); the kernel is clean")
        return 0
    services.remove_enable_links(root, log)
    _remove_bird_config(root, confd, log)
    files.remove_files(root, old.files, log)
    if os.path.isdir(under(root, old.prefix)):
        shutil.rmtree(under(root, old.prefix))
        log(f"removed {old.prefix}/")
    files.remove_manifest(root)
    files.remove_dirs(root, old.dirs, log)
    if services.systemd_runs(root) and UNIT in old.files:
        services.systemctl("daemon-reload")
    who = f"calicoctl delete node {nodename}" if nodename else "calicoctl delete node NAME"
    log(
        f"uninstalled; the datastore is left as it was: `{who}` on another node releases "
        "its addresses"
    )
    return 0


def _installed_env(root: str, name: str) -> str:
    """A setting of the installed calico.env ('' if it has none)."""
    try:
        with open(under(root, CALICO_ENV), encoding="utf-8") as f:
            for line in f:
                if line.startswith(f"{name}="):
                    return line.split("=", 1)[1].strip().strip("'")
    except OSError:
        pass
    return ""


def _remove_bird_config(root: str, confd: str, log: Log) -> None:
    """The BIRD config calico-node renders (bird backend), once calico-node is stopped: it
    is made again from the datastore at every start, and by default it sits in /etc/calico,
    which install made and removes. Its directories go too, up to /etc/calico, if emptied."""
    for name in BIRD_CONFIGS:
        path = f"{confd}/{name}"
        if os.path.isfile(under(root, path)):
            os.unlink(under(root, path))
            log(f"removed {path} (calico-node's BIRD config)")
    directory = confd
    while directory.startswith(f"{CALICO_DIR}/"):
        try:
            os.rmdir(under(root, directory))
        except OSError:  # missing, or holding something else
            break
        log(f"removed {directory}/")
        directory = os.path.dirname(directory)
