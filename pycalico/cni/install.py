"""Install the CNI executables (the fast shim, as `calico` and `calico-ipam`) into a bin dir."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from pycalico.cni.agent import DEFAULT_SOCKET
from pycalico.cni.main import PLUGINS

DEFAULT_BIN_DIR = "/opt/cni/bin"


def shim_text(plugin: str, python: str, socket: str) -> str:
    from pycalico.cni import shim

    with open(shim.__file__, encoding="utf-8") as f:
        lines = f.read().splitlines(keepends=True)
    out = [f"#!{python} -IS\n"]
    for line in lines[1:]:
        if line.startswith("PLUGIN = "):
            line = f"PLUGIN = {plugin!r}\n"
        elif line.startswith("PYTHON = "):
            line = f"PYTHON = {python!r}\n"
        elif line.startswith("SOCKET = "):
            line = f"SOCKET = {socket!r}\n"
        out.append(line)
    return "".join(out)


def install(
    bin_dir: str, socket: str = DEFAULT_SOCKET, python: str = sys.executable, compiled: bool = True
) -> list[str]:
    """Write `calico` and `calico-ipam` into `bin_dir` atomically; return their paths.

    `socket` is where this node's agent listens; the shims fall back to running the plugin
    in-process when nothing listens there. The compiled shim (shim.c) is used when a C
    compiler is at hand, because a Python interpreter's start-up alone costs about as much
    as a whole Go plugin call; otherwise, or with `compiled=False`, the Python shim.
    """
    os.makedirs(bin_dir, exist_ok=True)
    written = []
    for plugin in PLUGINS:
        path = os.path.join(bin_dir, plugin)
        tmp = f"{path}.tmp{os.getpid()}"
        if not (compiled and _compile(tmp, plugin, python, socket)):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(shim_text(plugin, python, socket))
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)  # a runtime never sees a half-written plugin
        written.append(path)
    return written


def _compile(target: str, plugin: str, python: str, socket: str) -> bool:
    import shutil
    import subprocess

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return False
    source = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim.c")
    defines = [
        f'-D{name}="{value}"'
        for name, value in (("PLUGIN", plugin), ("PYTHON", python), ("SOCKET_PATH", socket))
    ]
    out = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", target, *defines, source], capture_output=True, check=False
    )
    return out.returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m pycalico.cni.install", description="Install the calico CNI plugins."
    )
    parser.add_argument("--bin-dir", default=DEFAULT_BIN_DIR)
    parser.add_argument("--agent-socket", default=DEFAULT_SOCKET)
    parser.add_argument(
        "--python-shim",
        action="store_true",
        help="install the Python shim even when a C compiler is available",
    )
    opts = parser.parse_args(argv)
    try:
        for path in install(opts.bin_dir, opts.agent_socket, compiled=not opts.python_shim):
            print(f"installed {path}")
    except OSError as exc:
        sys.stderr.write(f"cannot install into {opts.bin_dir}: {exc.strerror}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
