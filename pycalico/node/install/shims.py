"""The CNI executables in /opt/cni/bin: pycalico's shim, as `calico` and `calico-ipam`.

They are made by the installed venv's own `pycalico.cni.install.install()` (so the shim is
the one of the wheel just installed, compiled against the venv's python, with the agent
socket calico-node listens on), into a scratch directory first: a file is replaced only if
it differs, so a repeated install leaves the plugins a runtime may be running untouched.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable

from pycalico.node.install.errors import InstallError
from pycalico.node.install.files import write_if_changed
from pycalico.node.install.layout import AGENT_SOCKET, CNI_BIN_DIR, CNI_PLUGINS, under, venv_python
from pycalico.node.install.venv import clean_env

Log = Callable[[str], None]
_INSTALL = (
    "import sys\n"
    "from pycalico.cni.install import install\n"
    "install(sys.argv[1], socket=sys.argv[2], python=sys.argv[3])\n"
)


def install(root: str, prefix: str, log: Log) -> list[str]:
    """Put the shims in place; the host paths that changed."""
    scratch = tempfile.mkdtemp(prefix="pycalico-shims-")
    try:
        out = subprocess.run(
            [
                under(root, venv_python(prefix)),
                "-c",
                _INSTALL,
                scratch,
                AGENT_SOCKET,
                venv_python(prefix),
            ],
            capture_output=True,
            text=True,
            check=False,
            env=clean_env(),
        )
        if out.returncode != 0:
            lines = out.stderr.strip().splitlines() or [f"exit status {out.returncode}"]
            raise InstallError(f"cannot build the CNI shims: {lines[-1]}")
        changed = []
        for name in CNI_PLUGINS:
            built = os.path.join(scratch, name)
            with open(built, "rb") as f:
                data = f.read()
            path = f"{CNI_BIN_DIR}/{name}"
            if write_if_changed(root, path, data, stat.S_IMODE(os.stat(built).st_mode)):
                # install() falls back to the Python shim where no C compiler is found.
                kind = "compiled shim" if data.startswith(b"\x7fELF") else "Python shim: no cc"
                log(f"wrote {path} ({kind})")
                changed.append(path)
        return changed
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
