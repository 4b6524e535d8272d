"""A pycalico cluster of guests, installed as the README's "Install on a host" says.

Each guest boots Debian's stock kernel with systemd as PID 1, its own root overlay, host
name and NIC on one segment (192.0.2.0/24, the README's addresses). The checkout and its
venv are hidden in the guests: pycalico reaches them only as the wheelhouse `make
wheelhouse` builds here. Then every command of the README's section runs, as written, where
the README says: the wheelhouse copied to each host (its `scp`: a copy from a read-only
share), etcd on host1 (its package's unit), the install on each host with that host's
`NODENAME` and `IP`, `systemctl enable --now calico-node`, podman's CNI backend and a pod.
Two things differ, because the guests have no way out: `apt-get install` is replaced by a
check that the packages are installed (the guests' root is this machine's), and
`docker.io/library/busybox` is a busybox-static image imported under that name. The guests'
root is an overlay, on which podman's overlay storage cannot sit: podman stores with vfs.

The checks then use the cluster through each guest's agent; `calico-node uninstall` and
`calicoctl delete node` run last, in test_hosts.py.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.support import readme_install
from tests.support.runtimes import busybox_rootfs_tar

from .harness import REPO, Guest, GuestResult, GuestSpec, Share, booted_guests
from .segment import SUBNET, Segment, segment

T = TypeVar("T")

INSTALL = readme_install.command("pycalico.node.main install")
SETTINGS = dict(s.split("=", 1) for s in readme_install.settings(INSTALL))
POOL = SETTINGS["CALICO_IPV4POOL_CIDR"]
NETWORK = "k8s-pod-network"  # the conflist's network name, as Calico's install-cni writes it
IMAGE = "docker.io/library/busybox:latest"  # the README's image, imported (no registry here)
HTTP_PORT = 8080
CONNECT_TIMEOUT = 3
IMAGE_APPLETS = ("sh", "ip", "ping", "sleep", "httpd", "nc", "mkdir", "echo", "printf")
PAYLOAD = "/run/pycalico-payload"  # where each guest sees what the host made (read-only)
BOOT_TIMEOUT = 240.0
READY_TIMEOUT = 300.0
INSTALL_TIMEOUT = 900.0
ETCD_PORT = 2379
RUN_DIR = "/var/run/calico"
BIRD_SOCKET = f"{RUN_DIR}/bird.ctl"
UNIT = "calico-node.service"
# Podman's overlay storage cannot sit on the guests' overlay root; the rest is the README's.
STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""


def on_each(items: Sequence[T], fn: Callable[[T], object]) -> list[object]:
    """`fn` on every item at once (the guests work in parallel); the first error raised.

    On an error or an interrupt it returns at once, without waiting for the other calls:
    the cluster is torn down next, which ends them (their guests' agents go away)."""
    pool = ThreadPoolExecutor(max_workers=max(1, len(items)))
    try:
        results = [f.result() for f in [pool.submit(fn, item) for item in items]]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return results


def wait_until(what: str, check: Callable[[], bool], timeout: float, step: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s")
        time.sleep(step)


def write_file(guest: Guest, path: str, text: str, mode: str = "0644") -> None:
    guest.run(
        "/bin/sh",
        "-ec",
        f'mkdir -p "$(dirname {path})"; cat > {path}; chmod {mode} {path}',
        input=text,
    )


def spawn(guest: Guest, argv: Sequence[str], log: str) -> int:
    """Start `argv` in the guest as a daemon of its own session, output to `log`; its pid."""
    script = f'setsid "$@" < /dev/null > {shlex.quote(log)} 2>&1 & echo $!'
    return int(guest.run("/bin/sh", "-c", script, "sh", *argv).stdout)


def readme_block(containing: str) -> list[str]:
    """The README section's `sh` block that has a command containing `containing`."""
    (block,) = [b for b in readme_install.blocks() if any(containing in c for c in b)]
    return block


def for_host(command: str, host: Guest) -> str:
    """A README command as `host` runs it: the README's host1 settings become its own
    (`NODENAME`, `IP`); `apt-get install` becomes a check that the packages are there."""
    words = command.split()
    if words[:2] == ["apt-get", "install"]:
        packages = [w for w in words[2:] if not w.startswith("-")]
        return f"dpkg-query -W {' '.join(packages)} > /dev/null"
    prefix = SUBNET.prefixlen
    return command.replace(f"NODENAME={SETTINGS['NODENAME']}", f"NODENAME={host.name}").replace(
        f"IP={SETTINGS['IP']}", f"IP={host.address}/{prefix}"
    )


def run_readme(host: Guest, commands: Sequence[str], timeout: float = 300.0) -> str:
    """README commands in one bash on `host` (stopping at the first that fails); stdout."""
    script = "\n".join(for_host(c, host) for c in commands)
    return host.run("bash", "-ec", script, timeout=timeout).stdout


@dataclass
class Pod:
    host: Guest
    name: str
    ip: str

    def exec(self, *cmd: str, timeout: float = 60.0, check: bool = True) -> GuestResult:
        return self.host.run("podman", "exec", self.name, *cmd, timeout=timeout, check=check)

    def http_get(self, ip: str, port: int = HTTP_PORT) -> str:
        """What a pod serving at `ip` answers an HTTP GET with ('' when nothing answers
        within CONNECT_TIMEOUT seconds)."""
        request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {CONNECT_TIMEOUT} {ip} {port}"
        return self.exec("sh", "-c", request, check=False).stdout

    def pid(self) -> str:
        return self.host.run("podman", "inspect", "-f", "{{.State.Pid}}", self.name).stdout.strip()


@dataclass
class Cluster:
    segment: Segment
    hosts: list[Guest]
    # What the README's commands printed on each host, by host name.
    installed: dict[str, str] = field(default_factory=dict)
    podman_run: dict[str, str] = field(default_factory=dict)
    # systemd's own account of each guest's boot (`systemd-analyze time`), by host name.
    boot_times: dict[str, str] = field(default_factory=dict)
    # (what, seconds since the previous step): where the time goes, for the suite's summary.
    steps: list[tuple[str, float]] = field(default_factory=list)
    _last: float = field(default_factory=time.monotonic)

    def step(self, what: str) -> None:
        now = time.monotonic()
        self.steps.append((what, now - self._last))
        self._last = now

    def calicoctl(
        self, *args: str, stdin: str | None = None, on: Guest | None = None, check: bool = True
    ) -> str:
        """The installed calicoctl on `on` (host1 by default), as installed (its cfg)."""
        done = (on or self.hosts[0]).run("calicoctl", *args, input=stdin, check=check)
        return done.stdout if check else done.stdout + done.stderr

    def reinstall(self, host: Guest, **settings: str) -> str:
        """The README's install command on `host` with `settings` changed (which restarts
        the running node); what it printed."""
        command = INSTALL
        for name, value in settings.items():
            command, found = re.subn(rf"\b{name}=\S+", f"{name}={value}", command)
            if not found:
                command += f" {name}={value}"
        return run_readme(host, ["cd /root", command], INSTALL_TIMEOUT)

    def restart_calico_node(self, host: Guest) -> None:
        """`systemctl restart calico-node`, then wait until it is ready."""
        host.run("systemctl", "restart", UNIT, timeout=120)
        wait_node_ready(host)

    def pod(self, host: Guest, name: str) -> Pod:
        """A podman container on `host` in Calico's network, serving HTTP on HTTP_PORT."""
        serve = "mkdir -p /www && echo hello from $(hostname) > /www/index.html"
        host.run(
            "podman", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
            "--cap-add", "NET_RAW",
            IMAGE, "sh", "-c", f"{serve} && exec httpd -f -p {HTTP_PORT} -h /www",
            timeout=180,
        )  # fmt: skip
        inspect = host.run("podman", "inspect", name).stdout
        (networks,) = [c["NetworkSettings"]["Networks"] for c in json.loads(inspect)]
        return Pod(host, name, networks[NETWORK]["IPAddress"])


@contextlib.contextmanager
def ping_stream(source: Pod, address: str, interval: float = 0.2) -> Iterator[list[str]]:
    """iputils ping from `source`'s network namespace to `address` while the block runs;
    once it ends, its output (one line per reply, then the summary) in the list."""
    out: list[str] = []
    log = f"/var/log/ping-{source.name}-{address}.log"
    argv = ["nsenter", "-t", source.pid(), "-n", "ping", "-n", "-i", str(interval), address]
    pid = str(spawn(source.host, argv, log))
    try:
        yield out
    finally:
        source.host.run("kill", "-INT", pid, check=False)
        wait_until(
            "the ping stream to stop",
            lambda: source.host.run("kill", "-0", pid, check=False).rc != 0,
            30,
            0.5,
        )
        out.extend(source.host.run("cat", log).stdout.splitlines())


def unanswered(ping_output: Sequence[str]) -> list[int]:
    """The sequence numbers of pings sent but never answered."""
    summary = next(line for line in ping_output if "packets transmitted" in line)
    sent = int(summary.split()[0])
    answered = {int(m) for line in ping_output for m in re.findall(r"icmp_seq=(\d+)", line)}
    return [seq for seq in range(1, sent + 1) if seq not in answered]


def bird_sessions(host: Guest) -> dict[str, str]:
    """BIRD's BGP protocols on `host`, by name: its `show protocols` line (state, since when,
    and the session's state)."""
    shown = host.run("birdc", "-s", BIRD_SOCKET, "show", "protocols").stdout
    return {
        line.split()[0]: " ".join(line.split()[3:])
        for line in shown.splitlines()
        if len(line.split()) > 3 and line.split()[1] == "BGP"
    }


def node_log(host: Guest) -> str:
    return host.run(
        "journalctl", "-u", UNIT, "-n", "40", "--no-pager", "-o", "cat", check=False
    ).stdout


def wait_node_ready(host: Guest) -> None:
    def ready() -> bool:
        probe = host.run("curl", "-sf", "http://127.0.0.1:9099/readiness", check=False)
        return probe.rc == 0

    try:
        wait_until(f"calico-node ready on {host.name}", ready, READY_TIMEOUT)
    except AssertionError as failed:
        raise AssertionError(f"{failed}; its journal ends:\n{node_log(host)}") from None


def copy_wheelhouse(guests: Sequence[Guest]) -> None:
    """The README's `scp -r build/wheelhouse root@IP:DEST` lines: each a copy, on the guest
    with that address, from the read-only share of the checkout's build/wheelhouse."""
    for command in readme_block("make wheelhouse"):
        words = command.split()
        if words[0] != "scp":
            continue
        source, target = words[-2], words[-1]
        address, dest = target.split("@", 1)[1].split(":", 1)
        (guest,) = [g for g in guests if g.address == address]
        guest.run("cp", "-r", f"{PAYLOAD}/{Path(source).name}", dest)


def build_wheelhouse() -> Path:
    """The README's first block on this machine: `make wheelhouse`."""
    (command, *_) = readme_block("make wheelhouse")
    subprocess.run(shlex.split(command), cwd=REPO, check=True, capture_output=True)
    return REPO / "build" / "wheelhouse"


def start_etcd(guests: Sequence[Guest]) -> None:
    """The README's etcd block, on the host whose address it names (host1)."""
    block = readme_block("etcd-server")
    (host,) = [g for g in guests if any(f"//{g.address}:" in c for c in block)]
    run_readme(host, block)

    def healthy() -> bool:
        probe = f"http://{host.address}:{ETCD_PORT}/health"
        return '"true"' in host.run("curl", "-sf", probe, check=False).stdout

    wait_until(f"etcd healthy on {host.name}", healthy, READY_TIMEOUT)


def install(c: Cluster, host: Guest) -> None:
    c.installed[host.name] = run_readme(host, readme_block(INSTALL), INSTALL_TIMEOUT)


def podman_run(c: Cluster, host: Guest) -> None:
    """The README's podman block, after this environment's storage and image."""
    write_file(host, "/etc/containers/storage.conf", STORAGE_CONF)
    host.run("podman", "import", f"{PAYLOAD}/busybox.tar", IMAGE, timeout=180)
    c.podman_run[host.name] = run_readme(host, readme_block("podman run"))


@contextlib.contextmanager
def cluster(hosts: int = 2) -> Iterator[Cluster]:
    """`hosts` guests on a fresh segment, installed and running as the README says, with
    calico-node ready on each; all of it gone on the way out, whatever happened."""
    started = time.monotonic()
    wheelhouse = build_wheelhouse()
    with tempfile.TemporaryDirectory(prefix="pcpayload-") as payload, segment() as seg:
        (Path(payload) / "busybox.tar").write_bytes(
            busybox_rootfs_tar(Path(payload), IMAGE_APPLETS)
        )
        shared = (
            Share(Path(payload), PAYLOAD),
            Share(wheelhouse, f"{PAYLOAD}/{wheelhouse.name}"),
        )
        specs = [
            GuestSpec(f"host{i + 1}", seg.nic(i), shared, systemd=True, checkout=False)
            for i in range(hosts)
        ]
        with booted_guests(specs, BOOT_TIMEOUT) as guests:
            first = f"{guests[0].address}/{SUBNET.prefixlen}"
            if (SETTINGS["NODENAME"], SETTINGS["IP"]) != (guests[0].name, first):
                raise AssertionError(
                    f"the README installs host1 as {SETTINGS['NODENAME']} {SETTINGS['IP']}; "
                    f"the segment's first guest is {guests[0].name} {first}"
                )
            c = Cluster(seg, guests, _last=started)
            c.step("booted")
            copy_wheelhouse(guests)
            start_etcd(guests)
            c.step("etcd")
            on_each(guests, lambda g: install(c, g))
            c.step("installed")
            on_each(guests, wait_node_ready)
            c.step("calico-node ready")
            on_each(guests, lambda g: podman_run(c, g))
            c.step("podman")
            for g in guests:
                analyzed = g.run("systemd-analyze", "time", check=False)
                c.boot_times[g.name] = (analyzed.stdout or analyzed.stderr).splitlines()[0]
            yield c
