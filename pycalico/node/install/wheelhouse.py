"""Builds the wheelhouse `calico-node install --wheelhouse` installs from (`make wheelhouse`).

It holds pycalico's wheel, built from the source tree without the network (setuptools from
the development venv, `--no-build-isolation`, from a clean copy of the tree so that nothing
stale under build/ ends up in the wheel); the wheels of pycalico's runtime dependencies at
the versions installed here, the ones the tests ran with; and pip's own wheel, which install
runs pip from. Dependency wheels come from the package index the first time (`pip
download`) and are kept: a rebuild only replaces pycalico's wheel, offline.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from importlib import metadata

from pycalico.node.install.errors import InstallError

_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def runtime_pins() -> list[str]:
    """`name==version` for pycalico's runtime dependencies (not its extras) and pip, at
    the versions installed in this interpreter."""
    names = []
    for requirement in metadata.requires("pycalico") or []:
        if "extra ==" in requirement:
            continue
        match = _REQUIREMENT_NAME.match(requirement)
        if match:
            names.append(match[0])
    return [f"{name}=={metadata.version(name)}" for name in [*names, "pip"]]


def _present(dest: str, pin: str) -> bool:
    name, version = pin.split("==")
    return any(
        _normal(os.path.basename(p).split("-")[0]) == _normal(name)
        and os.path.basename(p).split("-")[1] == version
        for p in glob.glob(os.path.join(dest, "*.whl"))
    )


def project_dir() -> str:
    """The source tree this pycalico runs from (the development venv installs it editable)."""
    import pycalico

    return os.path.dirname(os.path.dirname(os.path.abspath(pycalico.__file__)))


def build(dest: str, source: str | None = None) -> list[str]:
    """Fill `dest`; the wheel files it holds afterwards."""
    source = source or project_dir()
    if not os.path.isfile(os.path.join(source, "pyproject.toml")):
        raise InstallError(f"{source} is not pycalico's source tree (no pyproject.toml)")
    os.makedirs(dest, exist_ok=True)
    missing = [pin for pin in runtime_pins() if not _present(dest, pin)]
    if missing:
        _pip(
            ["download", "--quiet", "--no-deps", "--only-binary=:all:", "-d", dest, *missing],
            "cannot download the dependency wheels",
        )
    for old in glob.glob(os.path.join(dest, "pycalico-*.whl")):
        os.unlink(old)
    with tempfile.TemporaryDirectory(prefix="pycalico-wheel-") as scratch:
        tree = os.path.join(scratch, "src")
        os.mkdir(tree)
        shutil.copy2(os.path.join(source, "pyproject.toml"), tree)
        shutil.copytree(
            os.path.join(source, "pycalico"),
            os.path.join(tree, "pycalico"),
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
        _pip(
            [
                "--isolated",
                "wheel",
                "--quiet",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-w",
                dest,
                tree,
            ],
            "cannot build pycalico's wheel",
        )
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(dest, "*.whl")))


def _pip(args: list[str], what: str) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        lines = [line for line in (out.stderr or out.stdout).splitlines() if line.strip()]
        raise InstallError(f"{what}: {lines[-1].strip() if lines else out.returncode}")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1 or args[0].startswith("-"):
        sys.stderr.write("usage: python -m pycalico.node.install.wheelhouse DIR\n")
        return 1
    try:
        for name in build(args[0]):
            print(f"{args[0]}/{name}")
    except InstallError as exc:
        sys.stderr.write(f"wheelhouse: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
