"""A pycalico cluster of guests: each its own kernel, root and host name, on one segment.

host1 runs etcd (the datastore, on the segment); every host runs calico-node and podman
(CNI backend) with pycalico's CNI plugin, so pods are made by a real runtime. The guests
boot at once (`harness.booted_guests`); commands go to them through their agents.
"""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from tests.support.runtimes import busybox_rootfs_tar

from .harness import Guest, GuestResult, GuestSpec, Share, booted_guests
from .segment import Segment, segment

T = TypeVar("T")

POOL = "10.244.0.0/16"
ETCD_PORT = 2379
NETWORK = "k8s-pod-network"  # the conflist's network name, as Calico's install-cni writes it
IMAGE = "localhost/pycalico-busybox:hosts"
HTTP_PORT = 8080
CONNECT_TIMEOUT = 3
IMAGE_APPLETS = ("sh", "ip", "ping", "sleep", "httpd", "nc", "printf", "mkdir", "echo")
PAYLOAD = "/run/pycalico-payload"  # where each guest sees the host-made payload (read-only)
BOOT_TIMEOUT = 180.0
READY_TIMEOUT = 240.0
CALICO_NODE_LOG = "/var/log/calico-node.log"
RUN_DIR = "/var/run/calico"
BIRD_SOCKET = f"{RUN_DIR}/bird.ctl"
# The checkout's calico-node (the guests see the checkout and its venv at their host paths).
CHECKOUT_BIN = Path(sys.prefix) / "bin"

CONTAINERS_CONF = """\
[network]
network_backend = "cni"
cni_plugin_dirs = ["/opt/cni/bin", "/usr/lib/cni"]
network_config_dir = "/etc/cni/net.d"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
"""
# Guest roots are an overlay on tmpfs: vfs needs nothing of the filesystem under it.
STORAGE_CONF = """\
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
"""


def on_each(items: Sequence[T], fn: Callable[[T], object]) -> list[object]:
    """`fn` on every item at once (the guests work in parallel); the first error raised."""
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return [f.result() for f in [pool.submit(fn, item) for item in items]]


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


def spawn(guest: Guest, argv: Sequence[str], log: str, env: dict[str, str] | None = None) -> int:
    """Start `argv` in the guest as a daemon of its own session, output to `log`; its pid."""
    script = f'setsid "$@" < /dev/null > {shlex.quote(log)} 2>&1 & echo $!'
    return int(guest.run("/bin/sh", "-c", script, "sh", *argv, env=env).stdout)


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


@dataclass
class Cluster:
    segment: Segment
    hosts: list[Guest]
    # (what, seconds since the previous step): where the time goes, for the suite's summary.
    steps: list[tuple[str, float]] = field(default_factory=list)
    _last: float = field(default_factory=time.monotonic)

    def step(self, what: str) -> None:
        now = time.monotonic()
        self.steps.append((what, now - self._last))
        self._last = now

    @property
    def etcd_endpoints(self) -> str:
        return f"http://{self.hosts[0].address}:{ETCD_PORT}"

    def node_env(self, host: Guest) -> dict[str, str]:
        """calico-node's environment on `host` (what calico.env holds)."""
        return {
            "NODENAME": host.name,
            "IP": "autodetect",
            "IP_AUTODETECTION_METHOD": "interface=eth0",
            "CALICO_NETWORKING_BACKEND": "vxlan",
            "CALICO_IPV4POOL_CIDR": POOL,
            "CALICO_IPV4POOL_VXLAN": "Always",
            "DATASTORE_TYPE": "etcdv3",
            "ETCD_ENDPOINTS": self.etcd_endpoints,
        }

    def calicoctl(
        self, *args: str, stdin: str | None = None, on: Guest | None = None, check: bool = True
    ) -> str:
        """calicoctl on `on` (host1 by default), against the cluster's etcd."""
        env = {"DATASTORE_TYPE": "etcdv3", "ETCD_ENDPOINTS": self.etcd_endpoints}
        done = (on or self.hosts[0]).run(
            str(CHECKOUT_BIN / "calicoctl"), *args, input=stdin, env=env, check=check
        )
        return done.stdout if check else done.stdout + done.stderr

    def configure(self, host: Guest, **env: str) -> None:
        """calico.env on `host` with `env` over the cluster's settings (read at next start)."""
        settings = {**self.node_env(host), **env}
        write_file(
            host, "/etc/calico/calico.env", "".join(f"{k}={v}\n" for k, v in settings.items())
        )

    def restart_calico_node(self, host: Guest) -> None:
        """Stop calico-node as systemd stops the unit (SIGTERM to the main process alone:
        KillMode=process), start it again, wait until it is ready."""
        pid = host.run("cat", f"{RUN_DIR}/calico-node.pid").stdout.strip()
        host.run("kill", "-TERM", pid)
        wait_until(
            f"calico-node {pid} on {host.name} to exit",
            lambda: host.run("kill", "-0", pid, check=False).rc != 0,
            60,
            0.5,
        )
        start_calico_node(host)
        wait_node_ready(host)

    def pod(self, host: Guest, name: str) -> Pod:
        """A podman container on `host` in Calico's network, serving HTTP on 8080."""
        serve = "mkdir -p /www && echo hello from $(hostname) > /www/index.html"
        host.run(
            "podman", "run", "-d", "--name", name, "--hostname", name, "--network", NETWORK,
            "--cap-add", "NET_RAW",
            IMAGE, "sh", "-c", f"{serve} && exec httpd -f -p {HTTP_PORT} -h /www",
            timeout=120,
        )  # fmt: skip
        inspect = host.run("podman", "inspect", name).stdout
        (networks,) = [c["NetworkSettings"]["Networks"] for c in json.loads(inspect)]
        return Pod(host, name, networks[NETWORK]["IPAddress"])


def pod_pid(pod: Pod) -> str:
    return pod.host.run("podman", "inspect", "-f", "{{.State.Pid}}", pod.name).stdout.strip()


@contextlib.contextmanager
def ping_stream(source: Pod, address: str, interval: float = 0.2) -> Iterator[list[str]]:
    """iputils ping from `source`'s network namespace to `address` while the block runs;
    once it ends, its output (one line per reply, then the summary) in the list."""
    out: list[str] = []
    log = f"/var/log/ping-{source.name}-{address}.log"
    argv = ["nsenter", "-t", pod_pid(source), "-n", "ping", "-n", "-i", str(interval), address]
    pid = spawn(source.host, argv, log)
    try:
        yield out
    finally:
        source.host.run("kill", "-INT", str(pid), check=False)
        wait_until(
            "the ping stream to stop",
            lambda: source.host.run("kill", "-0", str(pid), check=False).rc != 0,
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


def start_etcd(guest: Guest) -> None:
    """One etcd member on `guest`, serving clients on the segment and on loopback."""
    me = f"http://{guest.address}:{ETCD_PORT}"
    spawn(
        guest,
        ["etcd", "--name", guest.name, "--data-dir", "/var/lib/pycalico-etcd",
         "--listen-client-urls", f"{me},http://127.0.0.1:{ETCD_PORT}",
         "--advertise-client-urls", me,
         "--listen-peer-urls", "http://127.0.0.1:2380",
         "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
         "--initial-cluster", f"{guest.name}=http://127.0.0.1:2380"],
        "/var/log/etcd.log",
    )  # fmt: skip

    def healthy() -> bool:
        probe = f"http://127.0.0.1:{ETCD_PORT}/health"
        return '"true"' in guest.run("curl", "-sf", probe, check=False).stdout

    wait_until(f"etcd healthy on {guest.name}", healthy, READY_TIMEOUT)


def setup_podman(guest: Guest) -> None:
    write_file(guest, "/etc/containers/containers.conf", CONTAINERS_CONF)
    write_file(guest, "/etc/containers/storage.conf", STORAGE_CONF)
    guest.run("podman", "import", f"{PAYLOAD}/busybox.tar", IMAGE, timeout=120)


def install_from_checkout(cluster: Cluster, guest: Guest) -> None:
    """The CNI shims and conflist, and calico.env, from the checkout (no installer yet)."""
    guest.run(
        str(CHECKOUT_BIN / "python"), "-m", "pycalico.cni.install",
        "--bin-dir", "/opt/cni/bin", "--agent-socket", "/var/run/calico/cni-agent.sock",
        timeout=120,
    )  # fmt: skip
    conflist = {
        "name": NETWORK,
        "cniVersion": "1.0.0",
        "plugins": [
            {
                "type": "calico",
                "datastore_type": "etcdv3",
                "etcd_endpoints": cluster.etcd_endpoints,
                "mtu": 0,
                "ipam": {"type": "calico-ipam"},
            }
        ],
    }
    write_file(guest, "/etc/cni/net.d/10-calico.conflist", json.dumps(conflist), "0600")
    cluster.configure(guest)


def start_calico_node(guest: Guest) -> None:
    """calico-node with calico.env's environment, as the unit would start it."""
    script = (
        f"set -a; . /etc/calico/calico.env; set +a; mkdir -p {RUN_DIR}; "
        f"exec {CHECKOUT_BIN / 'calico-node'}"
    )
    spawn(guest, ["/bin/sh", "-c", script], CALICO_NODE_LOG)


def wait_node_ready(guest: Guest) -> None:
    def ready() -> bool:
        probe = guest.run("curl", "-sf", "http://127.0.0.1:9099/readiness", check=False)
        return probe.rc == 0

    try:
        wait_until(f"calico-node ready on {guest.name}", ready, READY_TIMEOUT)
    except AssertionError as failed:
        log = guest.run("tail", "-n", "40", CALICO_NODE_LOG, check=False).stdout
        raise AssertionError(f"{failed}; its log ends:\n{log}") from None


@contextlib.contextmanager
def cluster(hosts: int = 2) -> Iterator[Cluster]:
    """`hosts` guests on a fresh segment, etcd on the first, calico-node and podman on each,
    every one ready; all of it gone on the way out, whatever happened."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pcpayload-") as payload, segment() as seg:
        (Path(payload) / "busybox.tar").write_bytes(
            busybox_rootfs_tar(Path(payload), IMAGE_APPLETS)
        )
        shared = (Share(Path(payload), PAYLOAD),)
        specs = [
            GuestSpec(hostname=f"host{i + 1}", nic=seg.nic(i), extra_shares=shared)
            for i in range(hosts)
        ]
        with booted_guests(specs, BOOT_TIMEOUT) as guests:
            c = Cluster(seg, guests, _last=started)
            c.step("booted")
            start_etcd(guests[0])
            c.step("etcd")
            on_each(guests, lambda g: install_from_checkout(c, g))
            c.step("installed")
            on_each(guests, start_calico_node)
            on_each(guests, setup_podman)
            c.step("podman")
            on_each(guests, wait_node_ready)
            c.step("calico-node ready")
            yield c
