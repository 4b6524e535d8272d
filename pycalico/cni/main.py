"""Entry points of the `calico` and `calico-ipam` CNI executables.

A failure is a CNI error JSON on stdout and exit code 1, never a traceback.
"""

from __future__ import annotations

import os
import sys

from pycalico import __version__
from pycalico.cni.protocol import GENERIC, CniError, Request, read_request, version_result


def _run(plugin: str) -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("-v", "--version"):
        print(f"v{__version__}")
        return 0
    version = "1.1.0"
    try:
        req = read_request(os.environ, sys.stdin.buffer.read())
        version = req.version
        if req.command == "VERSION":
            sys.stdout.write(version_result(req.version))
            return 0
        if plugin == "calico-ipam":
            return _ipam(req)
        return _network(req)
    except CniError as exc:
        sys.stdout.write(exc.to_json(version))
        return 1
    except Exception as exc:  # the promise is a CNI error, never a traceback
        sys.stdout.write(
            CniError(GENERIC, f"{plugin} failed: {type(exc).__name__}: {exc}").to_json(version)
        )
        return 1


def _ipam(req: Request) -> int:
    from pycalico.cni.ipam_plugin import ipam_add, ipam_del

    if req.command == "ADD":
        sys.stdout.write(ipam_add(req).to_json(req.version))
    elif req.command == "DEL":
        ipam_del(req)
    else:
        raise CniError(GENERIC, f"calico-ipam does not support {req.command} yet")
    return 0


def _network(req: Request) -> int:
    from pycalico.cni.plugin import cmd_add, cmd_del

    if req.command == "ADD":
        sys.stdout.write(cmd_add(req).to_json(req.version))
    elif req.command == "DEL":
        cmd_del(req)
    elif req.command != "CHECK":  # Calico answers CHECK with success
        raise CniError(GENERIC, f"calico does not support {req.command} yet")
    return 0


def main() -> int:
    return _run("calico")


def ipam_main() -> int:
    return _run("calico-ipam")
