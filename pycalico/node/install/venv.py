"""The venv install puts pycalico in (default /opt/pycalico), built from a wheelhouse.

Debian's Python refuses `pip install` into the system (PEP 668), so pycalico gets a venv of
its own, as pipx would give it. The venv is made without pip (`--without-pip`: no ensurepip,
which Debian splits into python3-venv, and 8 s faster) and pip runs from the wheelhouse's
own pip wheel (`python pip-*.whl/pip`, pip's documented way to run itself from a wheel),
offline (`--no-index --find-links`) and ignoring the host's pip configuration
(`--isolated`), so that what is installed is exactly what the wheelhouse holds.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import subprocess
import sys
from collections.abc import Callable

from pycalico.node.install.errors import InstallError
from pycalico.node.install.layout import under, venv_calico_node, venv_python

Log = Callable[[str], None]


def wheels(wheelhouse: str) -> tuple[tuple[str, str], ...]:
    """Every wheel in `wheelhouse` with its sha256; refused unless it holds pycalico's
    wheel and pip's, one of each."""
    if not os.path.isdir(wheelhouse):
        raise InstallError(f"wheelhouse {wheelhouse} is not a directory (make wheelhouse)")
    found = sorted(glob.glob(os.path.join(wheelhouse, "*.whl")))
    for project in ("pycalico", "pip"):
        mine = [p for p in found if os.path.basename(p).split("-", 1)[0].lower() == project]
        if len(mine) != 1:
            what = "no" if not mine else f"{len(mine)}"
            raise InstallError(
                f"wheelhouse {wheelhouse} holds {what} {project} wheel"
                f"{'s' if mine else ''}; it needs one (make wheelhouse)"
            )
    return tuple((os.path.basename(p), _sha256(p)) for p in found)


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def base_python() -> str:
    """The interpreter the venv is made from: this one's base (a venv's own python would
    tie the node to whatever venv ran the installer)."""
    return getattr(sys, "_base_executable", "") or sys.executable


def installed(root: str, prefix: str) -> bool:
    return os.access(under(root, venv_calico_node(prefix)), os.X_OK)


def build(root: str, prefix: str, wheelhouse: str, log: Log) -> None:
    """Make the venv at `prefix` if missing and (re)install pycalico into it from
    `wheelhouse`. A venv made here is removed again if pip fails."""
    venv = under(root, prefix)
    created = not os.path.isdir(venv)
    if created:
        _run([base_python(), "-m", "venv", "--without-pip", venv], "cannot make the venv")
        log(f"made venv {prefix}")
    (pip_wheel,) = glob.glob(os.path.join(wheelhouse, "pip-*.whl"))
    cmd = [
        under(root, venv_python(prefix)),
        os.path.join(pip_wheel, "pip"),
        "--isolated",
        "--disable-pip-version-check",
        "install",
        "--quiet",
        "--no-index",
        "--find-links",
        wheelhouse,
        "--no-warn-script-location",
    ]
    # The version stays 0.1.0 while the code changes: pip must reinstall what it has.
    if not created:
        cmd.append("--force-reinstall")
    try:
        _run([*cmd, "pycalico"], f"pip cannot install pycalico from {wheelhouse}")
    except InstallError:
        if created:
            shutil.rmtree(venv, ignore_errors=True)
        raise
    log(f"installed pycalico into {prefix} from {wheelhouse}")


def clean_env() -> dict[str, str]:
    """The environment for the venv's python: without PYTHONPATH and the like, which would
    show it the installer's modules (run from the wheels, or another venv) instead of its
    own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}


def _run(cmd: list[str], what: str) -> None:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, env=clean_env())
    except OSError as exc:
        raise InstallError(f"{what}: {cmd[0]}: {exc.strerror}") from None
    if out.returncode != 0:
        lines = [line for line in (out.stderr or out.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"exit status {out.returncode}"
        raise InstallError(f"{what}: {reason}")
