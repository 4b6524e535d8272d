"""Real container runtimes driving pycalico's CNI: calico-node, podman, a libcni client.

calico-node runs in a node namespace of the test's own, in one of three mount-namespace
placements relative to the runtime (which always runs in the test's own mount namespace,
in the node's network namespace, through `nsenter --net`):

* `same-mntns`: calico-node shares the runtime's mount namespace (`nsenter --net`).
* `own-mntns`: calico-node under `ip netns exec`, which gives it a mount namespace of its
  own, a slave of the runtime's: mounts made later under /run/netns (a shared mount, made
  so by `ip netns` and by podman) still reach it.
* `isolated-mntns`: calico-node in a mount namespace that receives nothing from the
  runtime's (`unshare --propagation private`, then `ip netns exec`), as in a container
  without /run/netns mounted with propagation: the pod's namespace file is there, as the
  empty file it is without its bind mount, and only the runtime's side can open it.

Everything a helper starts is stopped by PID, and every directory is the test's own.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.support.node_namespace import node_namespace, sh

BIN_DIR = os.path.dirname(sys.executable)
REPO = Path(__file__).resolve().parents[2]
PLACEMENTS = ("same-mntns", "own-mntns", "isolated-mntns")
IMAGE = "localhost/pycalico-busybox:test"


def in_node(ns: str, placement: str = "same-mntns") -> list[str]:
    """The command prefix that runs a process in node `ns` with the given placement."""
    if placement == "same-mntns":
        return ["nsenter", f"--net=/run/netns/{ns}"]
    if placement == "own-mntns":
        return ["ip", "netns", "exec", ns]
    if placement == "isolated-mntns":
        return ["unshare", "--mount", "--propagation", "private", "ip", "netns", "exec", ns]
    raise ValueError(placement)


def eventually(check: Any, seconds: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} not met in {seconds:.0f} s")


def calicoctl(store: Path, *args: str, stdin: str | None = None) -> str:
    env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(store)}
    return subprocess.run(
        [os.path.join(BIN_DIR, "calicoctl"), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


# --- the libcni client ---------------------------------------------------------------

LIBCNI_SOURCE = Path(__file__).resolve().parent / "libcni_client" / "main.go"
GOPATH = "/usr/share/gocode"  # Debian's Go library packages install their source here
LIBCNI_PACKAGE = f"{GOPATH}/src/github.com/containernetworking/cni/libcni"


def libcni_client_missing() -> str | None:
    """Why the libcni client cannot be built here, or None."""
    if shutil.which("go") is None:
        return "needs Debian's golang-go (installed by make setup)"
    if not os.path.isdir(LIBCNI_PACKAGE):
        return "needs Debian's golang-github-appc-cni-dev (installed by make setup)"
    return None


def build_libcni_client(build_root: Path = REPO / "build") -> Path:
    """The client built offline against Debian's libcni (GOPATH mode), cached by the hash
    of its source, of the Go toolchain and of libcni's sources."""
    go = shutil.which("go") or "go"
    version = subprocess.run([go, "version"], capture_output=True, text=True, check=True).stdout
    digest = hashlib.sha256(LIBCNI_SOURCE.read_bytes() + version.encode())
    for path in sorted(Path(LIBCNI_PACKAGE).glob("*.go")):
        digest.update(path.name.encode() + path.read_bytes())
    target = build_root / "libcni-client" / digest.hexdigest()[:16] / "libcni-client"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": GOPATH,
        "GOFLAGS": "",
        "GOPROXY": "off",
        "CGO_ENABLED": "0",
        "GOCACHE": str(build_root / "libcni-client" / "go-cache"),
    }
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    out = subprocess.run(
        [go, "build", "-o", str(tmp), "."],
        cwd=LIBCNI_SOURCE.parent,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise AssertionError(f"building the libcni client failed:\n{out.stderr}")
    os.replace(tmp, target)
    return target


# --- calico-node -----------------------------------------------------------------------


class CalicoNode:
    """calico-node (Felix + the CNI agent) in node namespace `ns`, placed as `placement`.

    Its datastore is an SQLite file; its agent listens on `socket`. `bin_dir` holds the
    installed shims answered by the agent (their in-process fallback cannot run), and
    `solo_bin_dir` shims with no agent behind their socket, which run the plugin
    in-process, in the runtime's namespaces.
    """

    NAME = "node1"

    def __init__(self, tmp: Path, ns: str, placement: str, pool: str) -> None:
        self.tmp, self.ns, self.placement, self.pool = tmp, ns, placement, pool
        self.store = tmp / "store.db"
        self.run_dir = tmp / "run"
        self.socket = self.run_dir / "cni-agent.sock"
        self.bin_dir = tmp / "bin-agent"
        self.solo_bin_dir = tmp / "bin-in-process"
        self.log = tmp / "calico-node.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        from pycalico.cni.install import install

        env = {
            **os.environ,
            "DATASTORE_TYPE": "sqlite",
            "SQLITE_PATH": str(self.store),
            "NODENAME": self.NAME,
            "CALICO_NETWORKING_BACKEND": "vxlan",
            "CALICO_IPV4POOL_CIDR": self.pool,
            "CALICO_IPV4POOL_VXLAN": "Always",
            "CALICO_STATE_DIR": str(self.tmp / "lib"),
            "CALICO_RUN_DIR": str(self.run_dir),
            "IP_AUTODETECTION_METHOD": "interface=eth0",
        }
        with open(self.log, "ab") as log:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [*in_node(self.ns, self.placement), os.path.join(BIN_DIR, "calico-node")],
                env=env,
                stderr=log,
            )
        eventually(
            lambda: self.socket.exists() or self.proc.poll() is not None,  # type: ignore[union-attr]
            what="calico-node's CNI agent listening",
        )
        if self.proc.poll() is not None:
            raise AssertionError(f"calico-node exited: {self.log.read_text()[-2000:]}")
        # Every answer from these shims is the agent's: their own fallback cannot start.
        install(str(self.bin_dir), str(self.socket), python="/nonexistent/python")
        install(str(self.solo_bin_dir), str(self.tmp / "nobody-listens.sock"))
        for bin_dir in (self.bin_dir, self.solo_bin_dir):  # containerd's CRI calls it too
            with contextlib.suppress(FileExistsError):
                (bin_dir / "loopback").symlink_to("/usr/lib/cni/loopback")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def calicoctl(self, *args: str, stdin: str | None = None) -> str:
        return calicoctl(self.store, *args, stdin=stdin)

    def plugin_conf(self) -> dict[str, Any]:
        """The `calico` plugin's entry in a conflist, on this node's datastore."""
        return {
            "type": "calico",
            "nodename": self.NAME,
            "sqlite_path": str(self.store),
            "ipam_lock_file": str(self.tmp / "ipam.lock"),
            "mtu": 1450,
            "ipam": {"type": "calico-ipam"},
        }

    def on_node(self, *cmd: str, check: bool = True) -> str:
        return sh(self.ns, *cmd, check=check)

    def wait_programmed(self, host_if: str) -> None:
        """Until Felix has the endpoint's policy in the kernel its interface is closed."""
        status = self.run_dir / "endpoint-status" / host_if
        eventually(status.exists, what=f"Felix programming {host_if}")

    def address_in_use(self, ip: str) -> bool:
        return "is in use" in self.calicoctl("ipam", "show", f"--ip={ip}")


@contextlib.contextmanager
def calico_node(tmp: Path, placement: str, pool: str, prefix: str) -> Iterator[CalicoNode]:
    """A node namespace with calico-node running in it; stopped and removed afterwards."""
    # A default route, so that proxy ARP answers for 169.254.1.1 on the pods' host ends.
    with node_namespace(prefix, gateway="192.0.2.1") as namespace:
        node = CalicoNode(tmp, namespace.ns, placement, pool)
        try:
            node.start()
            yield node
        finally:
            node.stop()


# --- podman ----------------------------------------------------------------------------


def podman_missing() -> str | None:
    if shutil.which("podman") is None or not os.path.exists("/bin/busybox"):
        return "needs podman and busybox-static (installed by make setup)"
    return None


def busybox_rootfs_tar(
    tmp: Path, applets: tuple[str, ...] = ("sh", "ip", "ping", "sleep")
) -> bytes:
    """A tar of a root filesystem holding busybox-static and a few of its applets."""
    rootfs = tmp / "rootfs"
    (rootfs / "bin").mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", rootfs / "bin" / "busybox")
    for applet in applets:
        with contextlib.suppress(FileExistsError):
            (rootfs / "bin" / applet).symlink_to("busybox")
    return subprocess.run(
        ["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True
    ).stdout


class Podman:
    """podman with the CNI backend, its storage, run root, config and network config dir all
    in `tmp`, running in node namespace `node` (network only: the test's mount namespace)."""

    def __init__(self, tmp: Path, node: str, plugin_dirs: list[Path]) -> None:
        self.tmp = tmp
        self.node = node
        self.net_dir = tmp / "net.d"
        self.net_dir.mkdir(parents=True, exist_ok=True)
        dirs = ", ".join(f'"{d}"' for d in [*plugin_dirs, Path("/usr/lib/cni")])
        (tmp / "containers.conf").write_text(
            f'[network]\nnetwork_backend = "cni"\ncni_plugin_dirs = [{dirs}]\n'
            f'network_config_dir = "{self.net_dir}"\n'
            # The sandbox's limits are lower than podman's defaults (infra containers too),
            # and runc copes with hybrid cgroups.
            '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]\n'
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
        )
        self.env = {**os.environ, "CONTAINERS_CONF": str(tmp / "containers.conf")}
        # podman refuses a run root path longer than 50 characters.
        self.runroot = tempfile.mkdtemp(prefix="pcpm-", dir="/tmp")
        self.base = [
            "nsenter",
            f"--net=/run/netns/{node}",
            "podman",
            "--root",
            str(tmp / "root"),
            "--runroot",
            self.runroot,
            "--storage-driver",
            "vfs",
            "--runtime",
            shutil.which("runc") or "runc",
        ]

    def __call__(self, *args: str, check: bool = True) -> str:
        out = subprocess.run(
            [*self.base, *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if check and out.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} failed: {out.stderr}")
        return out.stdout

    def network(self, name: str, plugins: list[dict[str, Any]]) -> None:
        conflist = {"cniVersion": "0.4.0", "name": name, "plugins": plugins}
        (self.net_dir / f"{name}.conflist").write_text(json.dumps(conflist))

    def import_image(self) -> None:
        imported = subprocess.run(
            [*self.base, "import", "-", IMAGE],
            env=self.env,
            input=busybox_rootfs_tar(self.tmp),
            capture_output=True,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr.decode()

    def run_detached(self, name: str, network: str) -> None:
        self(
            "run",
            "-d",
            "--name",
            name,
            "--network",
            network,
            IMAGE,
            "sleep",
            "300",
        )

    def cleanup(self) -> None:
        self("rm", "-af", "-t", "0", check=False)
        self("pod", "rm", "-af", "-t", "0", check=False)
        self("rmi", "-af", check=False)
        shutil.rmtree(self.tmp / "root", ignore_errors=True)
        shutil.rmtree(self.runroot, ignore_errors=True)


@contextlib.contextmanager
def podman(tmp: Path, node: str, plugin_dirs: list[Path]) -> Iterator[Podman]:
    p = Podman(tmp, node, plugin_dirs)
    try:
        p.import_image()
        yield p
    finally:
        p.cleanup()


# --- containerd's CRI ------------------------------------------------------------------

PAUSE_IMAGE = "localhost/pycalico-pause:test"
SHIM_SOCKET_DIR = "/run/containerd/s"


def containerd_missing() -> str | None:
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            return "needs Debian's containerd (installed by make setup)"
    if not os.path.exists("/bin/busybox"):
        return "needs busybox-static (installed by make setup)"
    try:
        from cri_api.v1 import api_pb2_grpc  # noqa: F401
    except ImportError:
        return "needs the CRI API stubs, container-runtime-interface-api (make setup)"
    return None


def oci_archive(tmp: Path, name: str, entrypoint: list[str]) -> Path:
    """An OCI image layout tarball of the busybox rootfs, named `name` for containerd."""
    import io
    import tarfile

    blobs: dict[str, bytes] = {}

    def blob(data: bytes) -> dict[str, Any]:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    layer = blob(busybox_rootfs_tar(tmp, ("sh", "sleep", "ip", "ping")))
    config = blob(
        json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "config": {"Entrypoint": entrypoint},
                "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
            }
        ).encode()
    )
    manifest = blob(
        json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", **layer}],
            }
        ).encode()
    )
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                **manifest,
                "annotations": {"io.containerd.image.name": name},
            }
        ],
    }
    files = {
        "oci-layout": b'{"imageLayoutVersion": "1.0.0"}',
        "index.json": json.dumps(index).encode(),
        **{f"blobs/sha256/{d.split(':')[1]}": data for d, data in blobs.items()},
    }
    path = tmp / "image.oci.tar"
    with tarfile.open(path, "w") as tar:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


class Containerd:
    """containerd with its CRI plugin, in node namespace `node` (network only), its root,
    state, sockets and CNI config all in `tmp`; pods are named by the test."""

    def __init__(self, tmp: Path, node: str, cni_bin_dir: Path) -> None:
        self.tmp, self.node = tmp, node
        # Unix socket paths are short (108 bytes): the sockets go in a short temp dir.
        self.short = Path(tempfile.mkdtemp(prefix="pccd-", dir="/tmp"))
        self.address = self.short / "containerd.sock"
        self.state = self.short / "state"
        self.net_dir = tmp / "net.d"
        self.net_dir.mkdir(parents=True, exist_ok=True)
        self.config = tmp / "containerd.toml"
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        self.config.write_text(
            f'version = 2\nroot = "{tmp / "root"}"\nstate = "{self.state}"\n'
            f'[grpc]\naddress = "{self.address}"\n'
            f'[ttrpc]\naddress = "{self.address}.ttrpc"\n'
            '[debug]\naddress = ""\n[metrics]\naddress = ""\n'
            f'[plugins."io.containerd.internal.v1.opt"]\npath = "{tmp / "opt"}"\n'
            f'[{cri}]\nsandbox_image = "{PAUSE_IMAGE}"\ndisable_apparmor = true\n'
            # No CAP_SYS_RESOURCE here: a sandbox asks for no lower OOM score than ours.
            "restrict_oom_score_adj = true\n"
            'stream_server_address = "127.0.0.1"\nstream_server_port = "0"\n'
            f'[{cri}.containerd]\nsnapshotter = "native"\ndefault_runtime_name = "runc"\n'
            f'[{cri}.containerd.runtimes.runc]\nruntime_type = "io.containerd.runc.v2"\n'
            f"[{cri}.containerd.runtimes.runc.options]\nSystemdCgroup = false\n"
            f'BinaryName = "{shutil.which("runc") or "runc"}"\nRoot = "{self.short / "runc"}"\n'
            f'[{cri}.cni]\nbin_dir = "{cni_bin_dir}"\nconf_dir = "{self.net_dir}"\n'
            "max_conf_num = 1\n"
        )
        self.log = tmp / "containerd.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.sandboxes: list[str] = []
        # The shims' sockets go under /run/containerd/s whatever the config says: those
        # directories are removed again if this run made them (and they are left empty).
        self.made_run_dir = not os.path.exists(SHIM_SOCKET_DIR)

    def network(self, name: str, plugins: list[dict[str, Any]]) -> None:
        conflist = {"cniVersion": "1.0.0", "name": name, "plugins": plugins}
        (self.net_dir / f"10-{name}.conflist").write_text(json.dumps(conflist))

    def start(self) -> None:
        import grpc
        from cri_api.v1 import api_pb2, api_pb2_grpc

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [*in_node(self.node), "containerd", "--config", str(self.config)],
                stdout=log,
                stderr=log,
            )
        self.channel = grpc.insecure_channel(f"unix://{self.address}")
        self.cri = api_pb2_grpc.RuntimeServiceStub(self.channel)
        self.pb = api_pb2

        def ready() -> bool:
            if self.proc.poll() is not None:  # type: ignore[union-attr]
                raise AssertionError(f"containerd exited: {self.log.read_text()[-2000:]}")
            try:
                status = self.cri.Status(api_pb2.StatusRequest(), timeout=2)
            except grpc.RpcError:
                return False
            return all(c.status for c in status.status.conditions)

        eventually(ready, what="containerd's CRI ready (runtime and network)")
        imported = subprocess.run(
            [
                "ctr",
                "--address",
                str(self.address),
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
                str(oci_archive(self.tmp, PAUSE_IMAGE, ["/bin/sleep", "86400"])),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert imported.returncode == 0, imported.stderr

    def run_pod(self, name: str) -> str:
        """RunPodSandbox; the sandbox's ID."""
        pb = self.pb
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=name, namespace="default"),
            hostname=name,
            log_directory=str(self.tmp / "pod-logs" / name),
            linux=pb.LinuxPodSandboxConfig(),
        )
        reply = self.cri.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=120)
        self.sandboxes.append(reply.pod_sandbox_id)
        return reply.pod_sandbox_id

    def pod_status(self, sandbox: str) -> tuple[str, str]:
        """The sandbox's pod IP and the path of its network namespace."""
        reply = self.cri.PodSandboxStatus(
            self.pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox, verbose=True), timeout=30
        )
        spec = json.loads(reply.info["info"])["runtimeSpec"]
        [netns] = [n["path"] for n in spec["linux"]["namespaces"] if n["type"] == "network"]
        return reply.status.network.ip, netns

    def remove_pod(self, sandbox: str) -> None:
        """StopPodSandbox (the CNI DEL), then RemovePodSandbox."""
        pb = self.pb
        self.cri.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox), timeout=120)
        self.cri.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox), timeout=120)
        self.sandboxes.remove(sandbox)

    def stop(self) -> None:
        """Every sandbox removed, containerd stopped, its shims too (by PID), dirs gone."""
        import contextlib as cl

        for sandbox in list(self.sandboxes):
            with cl.suppress(Exception):
                self.remove_pod(sandbox)
        shim_pids = [
            int(p.read_text())
            for p in self.state.glob("io.containerd.runtime.v2.task/*/*/shim.pid")
            if p.read_text().strip().isdigit()
        ]
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pid in shim_pids:
            with cl.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if hasattr(self, "channel"):
            self.channel.close()
        # containerd's snapshots and the sandboxes' /dev/shm are mounts under its dirs.
        for mount in reversed(Path("/proc/self/mounts").read_text().splitlines()):
            target = mount.split()[1]
            if target.startswith((str(self.tmp), str(self.short))):
                subprocess.run(["umount", "-l", target], capture_output=True, check=False)
        shutil.rmtree(self.tmp / "root", ignore_errors=True)
        shutil.rmtree(self.short, ignore_errors=True)
        if self.made_run_dir:
            for directory in (SHIM_SOCKET_DIR, os.path.dirname(SHIM_SOCKET_DIR)):
                with cl.suppress(OSError):
                    os.rmdir(directory)


@contextlib.contextmanager
def containerd(
    tmp: Path, node: str, cni_bin_dir: Path, network: dict[str, Any]
) -> Iterator[Containerd]:
    c = Containerd(tmp, node, cni_bin_dir)
    try:
        c.network(network["name"], network["plugins"])
        c.start()
        yield c
    finally:
        c.stop()
