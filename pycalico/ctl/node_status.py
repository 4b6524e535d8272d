"""`calicoctl node status`: is this node's calico-node running, and its BGP sessions.

Output as Calico's (reference bgp.md §12). Two pycalico differences, both because of how
pycalico runs a node:

* "Is it running" comes from pid files in the node's run directory (`$CALICO_RUN_DIR`,
  default /var/run/calico), not from a scan of every process: in the lab several nodes
  share one PID namespace, and each must report only its own calico-node and BIRD.
* One BIRD 2 process serves both families on `<run>/bird.ctl`; a peer's family is read from
  the address in its protocol name (`Mesh_192_168_56_12`, `Node_fd00__2`).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from pycalico.ctl.errors import CtlError, UsageError

DEFAULT_RUN_DIR = "/var/run/calico"
NODE_PID_FILE = "calico-node.pid"
BIRD_PID_FILE = "bird.pid"
BIRD_SOCKET = "bird.ctl"
BIRD_TIMEOUT = 2.0

USAGE = """Usage:
  calicoctl node status [--allow-version-mismatch]

Options:
  -h --help                    Show this screen.
     --allow-version-mismatch  Allow client and cluster versions mismatch.

Description:
  Check the status of the Calico node instance.  This includes the status and
  uptime of the node instance, and BGP peering states.
"""

_PEER_NAME = re.compile(r"^(Global|Node|Mesh)_(.+)$")
_PORT_SUFFIX = re.compile(r"_port_\d+$")
_PEER_TYPES = {"Global": "global", "Mesh": "node-to-node mesh", "Node": "node specific"}
_HEADINGS = ["name", "proto", "table", "state", "since", "info"]


@dataclass(frozen=True)
class Peer:
    version: int
    address: str
    type: str
    state: str
    since: str
    info: str

    def row(self) -> list[str]:
        return [self.address, self.type, self.state, self.since, self.info]


def run(args: Sequence[str]) -> int:
    if args and args[0] == "status":
        args = args[1:]
    else:
        raise UsageError("the only node subcommand is 'status'")
    unknown = [a for a in args if a not in ("-h", "--help", "--allow-version-mismatch")]
    if unknown:
        raise UsageError(f"unknown option '{unknown[0]}'")
    if "-h" in args or "--help" in args:
        sys.stdout.write(USAGE)
        return 0
    if os.geteuid() != 0:
        print("Need super user privileges: Operation not permitted")
        return 1
    run_dir = os.environ.get("CALICO_RUN_DIR") or DEFAULT_RUN_DIR
    if not pid_file_alive(os.path.join(run_dir, NODE_PID_FILE)):
        raise CtlError("Calico process is not running.")
    out = sys.stdout
    out.write("Calico process is running.\n")
    if pid_file_alive(os.path.join(run_dir, BIRD_PID_FILE)):
        for version in (4, 6):
            _print_family(out, os.path.join(run_dir, BIRD_SOCKET), version)
    else:
        out.write("\nThe BGP backend process (BIRD) is not running.\n")
    out.write("\n")
    return 0


def pid_file_alive(path: str) -> bool:
    """The pid in `path` names a live process that is not a zombie."""
    try:
        with open(path) as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except (OSError, ValueError):
        return False
    # The state letter follows the command name, which is in parentheses and may hold spaces.
    state = stat.rpartition(")")[2].split()
    return pid > 0 and bool(state) and state[0] not in ("Z", "X")


def _print_family(out: TextIO, path: str, version: int) -> None:
    out.write(f"\nIPv{version} BGP status\n")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(BIRD_TIMEOUT)
        try:
            sock.connect(path)
        except OSError as exc:
            # As calicoctl: no newline here; the next section's leading one ends the line.
            out.write(
                f"Error querying BIRD: unable to connect to BIRDv{version} socket: "
                f"{_go_dial_error(path, exc)}"
            )
            return
        try:
            sock.sendall(b"show protocols\n")
        except OSError as exc:
            raise CtlError(
                f"Error executing command: unable to write to BIRD socket: {_reason(exc)}"
            ) from None
        try:
            peers = [p for p in parse_protocols(_lines(sock)) if p.version == version]
        except OSError as exc:
            raise CtlError(f"Error executing command: {_reason(exc)}") from None
    finally:
        sock.close()
    if not peers:
        out.write(f"No IPv{version} peers found.\n")
        return
    from pycalico.ctl import boxtable

    out.write(
        boxtable.render(
            ["Peer address", "Peer type", "State", "Since", "Info"], [p.row() for p in peers]
        )
    )


def _lines(sock: socket.socket) -> Iterator[str]:
    with sock.makefile("r", encoding="utf-8", errors="replace", newline="\n") as reader:
        for line in reader:
            yield line.rstrip("\n")


def parse_protocols(lines: Iterator[str]) -> list[Peer]:
    """Calico's BGP peers from BIRD's reply to `show protocols`, in BIRD's order."""
    peers = []
    for line in lines:
        if line.startswith("0000"):
            break
        if line.startswith("0001"):
            continue
        if line.startswith("2002"):
            if [h.lower() for h in line[5:].split()] != _HEADINGS:
                raise CtlError("Error executing command: unknown BIRD table output format")
            continue
        if line.startswith("1002"):
            row = line[5:]
        elif line.startswith(" "):
            row = line[1:]
        else:
            raise CtlError("Error executing command: unexpected output line from BIRD")
        peer = _peer(row.split())
        if peer is not None:
            peers.append(peer)
    return peers


def _peer(fields: list[str]) -> Peer | None:
    if len(fields) < 6 or fields[1] != "BGP":
        return None
    match = _PEER_NAME.match(fields[0])
    if match is None:
        return None
    kind, encoded = match.groups()
    encoded = _PORT_SUFFIX.sub("", encoded)
    version, address = 4, encoded.replace("_", ".")
    try:
        ipaddress.IPv4Address(address)
    except ValueError:
        version, address = 6, encoded.replace("_", ":")
    return Peer(version, address, _PEER_TYPES[kind], fields[3], fields[4], " ".join(fields[5:]))


def _reason(exc: OSError) -> str:
    if isinstance(exc, TimeoutError):
        return "i/o timeout"
    return _go_errno_text(exc)


def _go_errno_text(exc: OSError) -> str:
    """Go words errno text in lower case ("connection refused")."""
    text = os.strerror(exc.errno) if exc.errno else str(exc)
    return text[:1].lower() + text[1:]


def _go_dial_error(path: str, exc: OSError) -> str:
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return f"dial unix {path}: i/o timeout"
    return f"dial unix {path}: connect: {_go_errno_text(exc)}"
