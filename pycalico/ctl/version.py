"""`calicoctl version`."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence

from pycalico.ctl.arguments import ArgParser
from pycalico.ctl.session import CLIENT_VERSION


def _git_commit() -> str:
    """The commit this checkout runs from; pycalico is installed from its source tree."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        out = subprocess.run(
            ["git", "-C", here, "rev-parse", "--short=9", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def version_command(args: Sequence[str]) -> int:
    parser = ArgParser(prog="calicoctl version", add_help=False)
    parser.add_argument("-c", "--config")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--poll")
    opts = parser.parse_args(list(args))
    print("Client Version:   ", CLIENT_VERSION)
    print("Git commit:       ", _git_commit())
    if opts.client:
        return 0
    cluster_version, cluster_type = "unknown", "unknown"
    try:
        from pycalico.ctl.session import cluster_information, connect

        info = cluster_information(connect(opts.config, allow_version_mismatch=True))
        if info is not None:
            cluster_version = info["spec"].get("calicoVersion") or "unknown"
            cluster_type = info["spec"].get("clusterType") or "unknown"
    except Exception as exc:  # version still prints what it knows
        sys.stdout.flush()
        sys.stderr.write(f"Unable to retrieve Cluster Version or Type: {exc}\n")
        return 1
    print("Cluster Version:  ", cluster_version)
    print("Cluster Type:     ", cluster_type)
    return 0
