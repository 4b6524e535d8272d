"""Entry points of the `calico` and `calico-ipam` CNI executables.

`handle()` answers one CNI call from its environment and stdin; the executables and the
node agent (which serves the fast shim) both go through it. A failure is a CNI error JSON
on stdout and exit code 1, never a traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping

from pycalico import __version__
from pycalico.cni import netconf_fields
from pycalico.cni.protocol import (
    GENERIC,
    INVALID_CONFIG,
    IO_FAILURE,
    MAX_CONFIG,
    CniError,
    Request,
    read_request,
    version_result,
)

PLUGINS = ("calico", "calico-ipam")


def handle(
    plugin: str,
    env: Mapping[str, str],
    stdin: bytes,
    netns_opener: Callable[[str], int] | None = None,
) -> tuple[str, int]:
    """(stdout, exit code) of one call of `plugin`. `netns_opener`: see Request."""
    version = "1.1.0"
    req: Request | None = None
    try:
        req = read_request(env, stdin)
        req.netns_opener = netns_opener
        version = req.version
        if req.command == "VERSION":
            return version_result(req.version), 0
        problem = netconf_fields.wrong_type(req.config)
        if problem:
            raise CniError(INVALID_CONFIG, problem)
        if plugin == "calico-ipam":
            return _ipam(req), 0
        return _network(req), 0
    except CniError as exc:
        _log_failure(plugin, req, exc)
        return exc.to_json(version), 1
    except Exception as exc:  # the promise is a CNI error, never a traceback
        from pycalico.datastore.backend import DatastoreError

        if isinstance(exc, DatastoreError):
            # Worded as calico-ipam words it, the datastore's own one line as the details.
            error = CniError(IO_FAILURE, "data store connection failed", str(exc))
        else:
            error = CniError(GENERIC, f"{plugin} failed: {type(exc).__name__}: {exc}")
        _log_failure(plugin, req, error)
        return error.to_json(version), 1


def _log_failure(plugin: str, req: Request | None, error: CniError) -> None:
    """A failed ADD or DEL of the network plugin, in its log (see call_log)."""
    if req is None or plugin != "calico" or req.command not in ("ADD", "DEL"):
        return
    from pycalico.cni import call_log

    details = f" ({error.details})" if error.details else ""
    call_log.write(
        req.config,
        logging.ERROR,
        f"{req.command} ContainerID={req.container_id} failed: {error.msg}{details}",
    )


def _ipam(req: Request) -> str:
    from pycalico.cni.ipam_plugin import ipam_add, ipam_del, ipam_gc, ipam_status

    if req.command == "ADD":
        return ipam_add(req).to_json(req.version)
    if req.command == "DEL":
        ipam_del(req)
    elif req.command == "STATUS":
        ipam_status(req)
    elif req.command == "GC":
        ipam_gc(req)
    else:
        raise CniError(GENERIC, f"calico-ipam does not support {req.command}")
    return ""


def _network(req: Request) -> str:
    from pycalico.cni.plugin import cmd_add, cmd_del, cmd_gc, cmd_status

    if req.command == "ADD":
        return cmd_add(req).to_json(req.version)
    if req.command == "DEL":
        cmd_del(req)
    elif req.command == "STATUS":
        cmd_status(req)
    elif req.command == "GC":
        cmd_gc(req)
    # CHECK: Calico answers it with success.
    return ""


def _run(plugin: str) -> int:
    if len(sys.argv) > 1 and sys.argv[1] in ("-v", "--version"):
        print(f"v{__version__}")
        return 0
    # One byte more than accepted is enough to refuse it: the rest is never read.
    out, code = handle(plugin, os.environ, sys.stdin.buffer.read(MAX_CONFIG + 1))
    sys.stdout.write(out)
    return code


def main() -> int:
    return _run("calico")


def ipam_main() -> int:
    return _run("calico-ipam")


if __name__ == "__main__":
    # The shim's fallback runs `python -m pycalico.cni.main <plugin>`.
    if len(sys.argv) < 2 or sys.argv[1] not in PLUGINS:
        sys.stderr.write(f"usage: python -m pycalico.cni.main {{{','.join(PLUGINS)}}}\n")
        sys.exit(2)
    plugin_name = sys.argv.pop(1)
    sys.exit(_run(plugin_name))
