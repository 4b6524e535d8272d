"""Debian's stock kernel under QEMU: one command run in a guest (`run_in_vm`), or several
guests booted at once as hosts on a segment, driven through an agent (`booted_guests`).

This host's kernel lacks modules (ipip) that users' kernels have, so the code that needs
them is tested in a VM booting the current `linux-image-amd64` kernel, unpacked from
the Debian package (never installed over the host's). The guest has:

* the host's root filesystem, read-only over virtio-9p, under a tmpfs overlay: it runs
  exactly what is installed here (BIRD, nft, Python), and its writes vanish when it powers
  off;
* fresh tmpfs on /run, /tmp and /var/tmp, so it sees none of the host's namespaces or labs;
* then, mounted over those, the host directories `shares()` lists, each its own 9p share
  at the same path as on the host: the checkout and its venv (whose scripts and editable
  install name absolute paths), wherever they live, even under /tmp; the job's directory
  (its script in, its exit code and timing out); and whatever the caller adds;
* no network device at all (`-nic none`): the only traffic is in namespaces it creates.

A guest of `booted_guests` differs where its GuestSpec says: its own host name and
machine id; a virtio NIC whose tap QEMU makes in a namespace the caller made (never on the
host's interfaces); systemd as PID 1 on a root made a fresh host's (see SYSTEMD_PREPARE);
the checkout and its venv hidden instead of shared. Its job is guest_agent.py, which runs
the host's commands over a virtio-serial port (`Guest.run`).

The command's stdout and stderr arrive on the second serial port; the first carries the
kernel's console, quoted when the job fails (`VmRun.check`) or the guest never finished.

Booting is software emulation (TCG): this host's /dev/kvm cannot run a stock kernel.
The kernel is booted as an uncompressed ELF through its PVH entry point, because
decompressing the bzImage under emulation costs seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import lzma
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

QEMU = "qemu-system-x86_64"
BUSYBOX = "/bin/busybox"
META_PACKAGE = "linux-image-amd64"
XZ_MAGIC = b"\xfd7zXZ\x00"
ELF_MAGIC = b"\x7fELF"
# Loaded by the initramfs, before the host root can be mounted (with their dependencies).
EARLY_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
# Loaded after switch_root, as a node with Calico would have them; anything else the guest
# needs the kernel loads on demand through the host's /sbin/modprobe.
GUEST_MODULES = (
    "ipip",
    "vxlan",
    "veth",
    "bridge",
    "nf_tables",
    "nft_chain_nat",
    "nft_masq",
    "nft_ct",
    "nf_conntrack",
    "wireguard",
)
GUEST_MEMORY_MB = 2048
GUEST_CPUS = 2
OUTPUT_TAIL = 4000  # console characters quoted when the job failed or never finished
TERMINAL_CODES = re.compile(r"\x1b(?:\[[0-9;?]*[A-Za-z]|c)")
JOB_DIR = "/run/vm"  # where the guest sees the job's directory
REPO = Path(__file__).resolve().parents[2]
# Fresh in the guest (the host's own are hidden); shares under them are mounted after.
GUEST_TMPFS = ("/run", "/tmp", "/var/tmp")
NINEP = "trans=virtio,version=9p2000.L,msize=512000"

INIT = r"""#!/bin/busybox sh
# Stage 1 (initramfs): the host root read-only over 9p under a tmpfs overlay, the guest's
# own tmpfs, the shares, then switch_root. Any failure panics the kernel, which makes QEMU
# exit at once.
/bin/busybox --install -s /bin
fail() { echo "vm-init: $*"; echo c > /proc/sysrq-trigger; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "/modules/$module" || fail "insmod $module"; done < /modules.list
mkdir -p /rw && mount -t tmpfs -o mode=0755 tmpfs /rw || fail "mount /rw"
@MOUNTS@
@HIDE@
mkdir -p "/newroot/lib/modules/@KVER@"
mount --bind "/newroot@MODULES@" "/newroot/lib/modules/@KVER@" || fail "bind modules"
# A host of its own: its name, and a machine id that is not the host's (shared with the root).
echo @HOSTNAME@ > /newroot/etc/hostname
tr -d - < /proc/sys/kernel/random/uuid > /newroot/etc/machine-id
@PREPARE@
for dir in /proc /sys /dev; do mount --move "$dir" "/newroot$dir"; done
exec switch_root /newroot @PID1@
"""
# PID 1 after switch_root: stage 2 itself, or systemd, which runs stage 2 as a service.
SHELL_PID1 = '/bin/sh "@JOB_DIR@/stage2"'
SYSTEMD_PID1 = "/lib/systemd/systemd"
# Before systemd starts, the overlay becomes a fresh host's root: none of the host's own
# enabled units (etcd, BIRD, timers, ...), no fstab entries, the guest's units in place, and
# no /.dockerenv (this host may be a container: systemd would think the guest one too, and
# ignore the kernel's command line).
SYSTEMD_PREPARE = r"""rm -rf /newroot/etc/systemd/system/*.wants /newroot/.dockerenv
cp /newroot@JOB_DIR@/units/* /newroot/etc/systemd/system/ || fail "copy units"
: > /newroot/etc/fstab
"""
SYSTEMD_TARGET = "pycalico-guest.target"
# The guest boots as a host does (multi-user.target), and runs stage 2 (its job) from the
# start, alongside.
SYSTEMD_UNITS = {
    SYSTEMD_TARGET: """\
[Unit]
Description=pycalico test guest
Wants=multi-user.target pycalico-guest.service
AllowIsolate=yes
""",
    "pycalico-guest.service": """\
[Unit]
Description=pycalico test guest: modules, network, then the job
DefaultDependencies=no

[Service]
ExecStart=/bin/sh @JOB_DIR@/stage2
""",
}

STAGE2 = r"""# Stage 2 (PID 1 on the overlay root, or systemd's service): the job, its exit code to
# the share, power off.
@EARLY@
ip link set lo up
/usr/sbin/modprobe -a @MODULES@ > @JOB_DIR@/modprobe.log 2>&1 || cat @JOB_DIR@/modprobe.log
@NETWORK@
/bin/busybox stty -F /dev/ttyS1 raw -echo
started=$(date +%s.%N)
/bin/sh @JOB_DIR@/job > /dev/ttyS1 2>&1
rc=$?
echo "$started $(date +%s.%N)" > @JOB_DIR@/job-times
echo $rc > @JOB_DIR@/rc.tmp && mv @JOB_DIR@/rc.tmp @JOB_DIR@/rc
sync
/bin/busybox poweroff -f
"""


class VmError(RuntimeError):
    """The VM could not be prepared or did not finish (not: the job inside it failed)."""


@dataclass(frozen=True)
class Kernel:
    version: str  # e.g. 6.1.0-56-amd64
    vmlinux: Path
    modules: Path  # .../lib/modules/<version>, with modules.dep


class VmJobFailed(AssertionError):
    """The job ran in the VM and exited non-zero; the message carries what it printed."""


@dataclass(frozen=True)
class VmRun:
    command: str  # the job, as a shell line
    cwd: str  # where in the guest it ran
    rc: int
    output: str  # the job's stdout and stderr
    console: str  # the end of the guest's console: the kernel's log, stage 2's complaints
    seconds: float  # boot, job and teardown
    job_seconds: float  # the job alone, by the guest's clock

    @property
    def boot_teardown_seconds(self) -> float:
        return self.seconds - self.job_seconds

    def failure(self, what: str) -> str:
        """`what`, then everything known about the run: its command, exit code, output and
        the console's end (the only witness when the job printed nothing)."""
        return (
            f"{what}: `{self.command}` (in {self.cwd}) exited {self.rc} "
            f"after {self.job_seconds:.1f}s\n"
            f"its output:\n{self.output.rstrip() or '(none)'}\n"
            f"the VM's console (end):\n{self.console.rstrip() or '(empty)'}"
        )

    def check(self, what: str = "the job failed in the VM") -> VmRun:
        """This run, if its job exited 0; otherwise VmJobFailed with `failure(what)`."""
        if self.rc != 0:
            raise VmJobFailed(self.failure(what))
        return self


@dataclass(frozen=True)
class Share:
    """A host directory the guest sees at `guest`, over a 9p share of its own.

    Read-only shares sit under a tmpfs overlay in the guest, as its root does: the guest can
    write there, and its writes vanish at power-off. A writable share's writes reach the
    host (the way results come back).
    """

    host: Path
    guest: str
    writable: bool = False

    @classmethod
    def same_path(cls, host: str | Path, writable: bool = False) -> Share:
        path = Path(host).resolve()
        return cls(path, str(path), writable)


def hidden_in_guest(path: Path) -> bool:
    """Whether the guest's own tmpfs hides this host path unless it is shared."""
    return any(path.is_relative_to(d) for d in GUEST_TMPFS)


def checkout_shares(
    repo: Path = REPO, prefix: str = sys.prefix, base_prefix: str = sys.base_prefix
) -> list[Share]:
    """The checkout and the Python running it, at their host paths: the venv's scripts and
    editable install name the checkout by absolute path, and the venv's `python` links to
    its base interpreter (shared only when the guest's tmpfs would hide it)."""
    paths = [repo.resolve()]
    venv, base = Path(prefix).resolve(), Path(base_prefix).resolve()
    for path in (venv, base) if hidden_in_guest(base) else (venv,):
        if not any(path.is_relative_to(p) for p in paths):
            paths.append(path)
    return [Share.same_path(p) for p in paths]


def shares(job_dir: Path, extra: Sequence[Share] = (), checkout: bool = True) -> list[Share]:
    """What of the host the guest sees, and where, in the order it is mounted: the host's
    root at / (read-only), then — after the guest's fresh tmpfs on GUEST_TMPFS — the
    checkout and its Python (`checkout_shares`; not with `checkout=False`), the job's
    directory at JOB_DIR (writable), and `extra`, each parent before anything inside it."""
    mine = checkout_shares() if checkout else []
    rest = [*mine, Share(job_dir, JOB_DIR, writable=True), *extra]
    for share in rest:
        if not share.guest.startswith("/") or share.guest == "/":
            raise VmError(f"a share's guest path must be absolute and not /: {share.guest!r}")
    rest.sort(key=lambda share: len(Path(share.guest).parts))
    return [Share(Path("/"), "/"), *rest]


def _tag(index: int) -> str:
    return f"share{index}"


def _virtfs_args(plan: Sequence[Share]) -> list[str]:
    args = []
    for index, share in enumerate(plan):
        path = str(share.host).replace(",", ",,")  # QEMU's option syntax escapes commas
        options = f"local,path={path},mount_tag={_tag(index)},security_model=none,multidevs=remap"
        args += ["-virtfs", options if share.writable else f"{options},readonly=on"]
    return args


def _mount_lines(plan: Sequence[Share]) -> str:
    """Stage 1's mounts of `plan` (from `shares`) under /newroot."""
    lines = []
    for index, share in enumerate(plan):
        tag = _tag(index)
        target = shlex.quote("/newroot" + share.guest.rstrip("/"))
        failed = "|| fail " + shlex.quote(f"mount {share.guest}")
        lines.append(f"mkdir -p {target}")
        if share.writable:
            lines.append(f"mount -t 9p -o {NINEP} {tag} {target} {failed}")
        else:
            lower, upper, work = f"/lower/{index}", f"/rw/{index}/upper", f"/rw/{index}/work"
            lines += [
                f"mkdir -p {lower} {upper} {work}",
                f"mount -t 9p -o ro,{NINEP},cache=loose {tag} {lower} {failed}",
                f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} "
                f"{target} {failed}",
            ]
        if share.guest == "/":
            lines += [f"mount -t tmpfs -o mode=1777 tmpfs /newroot{d}" for d in GUEST_TMPFS]
    return "\n".join(lines)


def _hide_lines(hidden: Sequence[Share]) -> str:
    """Stage 1's empty tmpfs over each of `hidden`'s host paths (seen through the root
    share otherwise), mounted after every share."""
    lines = []
    for share in hidden:
        target = shlex.quote(f"/newroot{share.host}")
        lines += [
            f"mkdir -p {target}",
            f"mount -t tmpfs -o mode=0755 tmpfs {target} || fail "
            + shlex.quote(f"hide {share.host}"),
        ]
    return "\n".join(lines)


def qemu_unusable() -> str | None:
    """Why QEMU cannot run here at all, or None when it can."""
    path = shutil.which(QEMU)
    if path is None:
        return f"{QEMU} is not installed (Debian qemu-system-x86; `make setup` installs it)"
    out = subprocess.run([path, "-version"], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        return f"{QEMU} -version failed: {out.stderr.strip() or out.returncode}"
    return None


def cache_root() -> Path:
    """/var/cache/pycalico-vm, or the user's cache when that is not writable."""
    system = Path("/var/cache/pycalico-vm")
    with contextlib.suppress(OSError):
        system.mkdir(parents=True, exist_ok=True)
    if os.access(system, os.W_OK):
        return system
    user = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "pycalico-vm"
    user.mkdir(parents=True, exist_ok=True)
    return user


def _run(*cmd: str, cwd: Path | None = None) -> str:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=cwd)
    if out.returncode != 0:
        raise VmError(f"`{' '.join(cmd)}` failed: {out.stderr.strip()}")
    return out.stdout


def kernel_package() -> str:
    """The image package linux-image-amd64 depends on now (it moves with security updates)."""
    depends = _run("apt-cache", "depends", META_PACKAGE)
    found = re.findall(r"Depends: (linux-image-\S+-amd64)", depends)
    if not found:
        raise VmError(f"apt-cache depends {META_PACKAGE} names no linux-image package")
    return found[0]


def extract_vmlinux(vmlinuz: bytes) -> bytes:
    """The ELF kernel inside a bzImage whose payload is xz (Debian's)."""
    start = vmlinuz.find(XZ_MAGIC)
    if start < 0:
        raise VmError("no xz payload in vmlinuz")
    elf = lzma.LZMADecompressor(format=lzma.FORMAT_XZ).decompress(vmlinuz[start:])
    if not elf.startswith(ELF_MAGIC):
        raise VmError("the xz payload of vmlinuz is not an ELF kernel")
    return elf


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def kernel() -> Kernel:
    """Debian's current stock kernel, downloaded and prepared once, then from the cache."""
    try:
        package = kernel_package()
    except VmError:
        _run("apt-get", "update", "-qq")  # a fresh machine may have no package lists yet
        package = kernel_package()
    version = package.removeprefix("linux-image-")
    root = cache_root()
    with _locked(root / ".lock"):
        home = root / package
        done = home / "ready"
        if not done.exists():
            for old in root.iterdir():
                if old.is_dir():  # a superseded kernel, or a half-prepared one
                    shutil.rmtree(old)
            _prepare(home, package, version)
            done.touch()
    return Kernel(version, home / "vmlinux", home / "root" / "lib" / "modules" / version)


def _prepare(home: Path, package: str, version: str) -> None:
    started = time.monotonic()
    home.mkdir()
    download = home / "download"
    download.mkdir()
    try:
        _run("apt-get", "download", package, cwd=download)
    except VmError:
        # The lists may be older than the archive (the package superseded): refresh once.
        _run("apt-get", "update", "-qq")
        _run("apt-get", "download", package, cwd=download)
    (deb,) = download.glob("*.deb")
    _run("dpkg-deb", "-x", str(deb), str(home / "root"))
    shutil.rmtree(download)
    vmlinuz = home / "root" / "boot" / f"vmlinuz-{version}"
    (home / "vmlinux").write_bytes(extract_vmlinux(vmlinuz.read_bytes()))
    vmlinuz.unlink()
    # The package ships no modules.dep (the installer's postinst would make it).
    _run("depmod", "-b", str(home / "root"), version)
    print(f"vm: prepared {package} in {time.monotonic() - started:.1f}s", file=sys.stderr)


def _module_files(k: Kernel, names: tuple[str, ...]) -> list[Path]:
    """The .ko files to insmod for `names`, dependencies first, each once."""
    base = k.modules.parents[2]  # the unpacked package's root
    files: list[Path] = []
    for name in names:
        shown = _run("modprobe", "-d", str(base), "-S", k.version, "--show-depends", name)
        for line in shown.splitlines():
            if line.startswith("insmod "):
                path = Path(line.split()[1])
                if path not in files:
                    files.append(path)
    return files


def _initramfs(k: Kernel, work: Path, plan: Sequence[Share], spec: GuestSpec) -> Path:
    tree = work / "initramfs"
    for sub in ("bin", "modules", "proc", "sys", "dev"):
        (tree / sub).mkdir(parents=True)
    shutil.copy2(BUSYBOX, tree / "bin" / "busybox")
    names = []
    for module in _module_files(k, EARLY_MODULES):
        shutil.copy2(module, tree / "modules" / module.name)
        names.append(module.name)
    (tree / "modules.list").write_text("\n".join(names) + "\n")
    init = (
        INIT.replace("@MOUNTS@", _mount_lines(plan))
        .replace("@HIDE@", "" if spec.checkout else _hide_lines(checkout_shares()))
        .replace("@PREPARE@", SYSTEMD_PREPARE if spec.systemd else "")
        .replace("@PID1@", SYSTEMD_PID1 if spec.systemd else SHELL_PID1)
        .replace("@HOSTNAME@", spec.hostname)
        .replace("@JOB_DIR@", JOB_DIR)
        .replace("@KVER@", k.version)
        .replace("@MODULES@", str(k.modules))
    )
    (tree / "init").write_text(init)
    (tree / "init").chmod(0o755)
    image = work / "initramfs.cpio"
    listing = "\n".join(str(p.relative_to(tree)) for p in sorted(tree.rglob("*"))) + "\n"
    with open(image, "wb") as out:
        subprocess.run(
            ["cpio", "-o", "-H", "newc", "--quiet"],
            input=listing.encode(),
            stdout=out,
            cwd=tree,
            check=True,
        )
    return image


def _job_script(cmd: list[str], env: Mapping[str, str], cwd: str) -> str:
    """The job as the guest runs it: a `cd` that fails says so in the job's own output."""
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    return exports + f"cd {shlex.quote(cwd)} || exit\nexec {shlex.join(cmd)}\n"


@dataclass(frozen=True)
class Nic:
    """The guest's eth0: a tap QEMU makes in the host namespace `netns`, where the caller's
    `bridge` is; the guest gives it `address` (CIDR) and a default route via `gateway`."""

    netns: str
    bridge: str
    tap: str
    mac: str
    address: str
    gateway: str | None = None

    def qemu_args(self) -> list[str]:
        return [
            "-netdev", f"tap,id=net0,ifname={self.tap},script=no,downscript=no",
            "-device", f"virtio-net-pci,netdev=net0,mac={self.mac}",
        ]  # fmt: skip

    def guest_lines(self) -> str:
        lines = ["ip link set eth0 up", f"ip addr add {self.address} dev eth0"]
        if self.gateway:
            lines.append(f"ip route add default via {self.gateway}")
        return "\n".join(lines)


@dataclass(frozen=True)
class GuestSpec:
    """One guest: its host name, its NIC (none: `-nic none`), what else it sees, its PID 1
    (stage 2 itself, or with `systemd=True` systemd, booting the guest's own target), and
    whether it sees the checkout and its venv (with `checkout=False` they are not shared,
    and an empty tmpfs hides them where the root share would show them)."""

    hostname: str = "vm"
    nic: Nic | None = None
    extra_shares: tuple[Share, ...] = ()
    systemd: bool = False
    checkout: bool = True


@dataclass
class _Launched:
    proc: subprocess.Popen[bytes]
    work: Path
    job_dir: Path
    output: Path
    console: Path
    started: float

    def console_tail(self) -> str:
        return _console_tail(self.console)

    def output_text(self) -> str:
        return _read(self.output)


# What systemd, as PID 1, does itself; stage 2 as PID 1 must.
SHELL_EARLY = """\
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t cgroup2 cgroup2 /sys/fs/cgroup
hostname @HOSTNAME@"""
BASE_ENV = {
    "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "TERM": "dumb",
}
# The extra modules a guest on the segment needs: its NIC and the agent's port.
NIC_MODULES = ("virtio_net",)
AGENT_MODULES = ("virtio_console",)
AGENT_PORT = "org.pycalico.agent"
AGENT_SOURCE = Path(__file__).with_name("guest_agent.py")
# QEMU (exec'd under the same pid) is killed when the thread that started it dies, so a
# killed test run leaves no guest behind either. Start guests from the main thread.
DIE_WITH_PARENT = ("/usr/bin/setpriv", "--pdeathsig", "KILL", "--")


@contextlib.contextmanager
def _launched(
    spec: GuestSpec, cmd: list[str], cwd: str, extra_args: Sequence[str] = ()
) -> Iterator[_Launched]:
    """QEMU booting the stock kernel into `spec`'s guest, whose stage 2 runs `cmd`; killed
    on the way out, whatever happened, and its directory removed."""
    k = kernel()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pycalico-vm-") as tmp:
        work = Path(tmp)
        job_dir = work / "job"
        job_dir.mkdir()
        plan = shares(job_dir, spec.extra_shares, spec.checkout)
        (job_dir / "job").write_text(_job_script(cmd, BASE_ENV, cwd))
        modules = [*GUEST_MODULES, *(NIC_MODULES if spec.nic else ())]
        if any(a.startswith("virtserialport") for a in extra_args):
            modules += AGENT_MODULES
        (job_dir / "stage2").write_text(
            STAGE2.replace("@EARLY@", "" if spec.systemd else SHELL_EARLY)
            .replace("@JOB_DIR@", JOB_DIR)
            .replace("@MODULES@", " ".join(modules))
            .replace("@HOSTNAME@", spec.hostname)
            .replace("@NETWORK@", spec.nic.guest_lines() if spec.nic else "")
        )
        append = "console=ttyS0 panic=-1 rdinit=/init loglevel=4 mitigations=off"
        if spec.systemd:
            (job_dir / "units").mkdir()
            for name, text in SYSTEMD_UNITS.items():
                (job_dir / "units" / name).write_text(text.replace("@JOB_DIR@", JOB_DIR))
            # eth0 stays eth0 (no predictable names), as the shell-booted guests have it.
            append += f" systemd.unit={SYSTEMD_TARGET} net.ifnames=0"
        initrd = _initramfs(k, work, plan, spec)
        output, console = work / "output", work / "console"
        # QEMU makes the tap in the namespace it runs in: the segment's, never the host's.
        netns = ["nsenter", f"--net=/run/netns/{spec.nic.netns}"] if spec.nic else []
        argv = [
            *DIE_WITH_PARENT,
            *netns,
            QEMU,
            "-accel", "tcg,thread=multi",
            "-cpu", "max",
            "-smp", str(GUEST_CPUS),
            "-m", str(GUEST_MEMORY_MB),
            "-machine", "q35",
            "-kernel", str(k.vmlinux),
            "-initrd", str(initrd),
            "-append", append,
            *(spec.nic.qemu_args() if spec.nic else ["-nic", "none"]),
            "-nographic",
            "-no-reboot",
            "-monitor", "none",
            "-chardev", f"file,id=console,path={console}",
            "-serial", "chardev:console",
            "-chardev", f"file,id=job,path={output}",
            "-serial", "chardev:job",
            *_virtfs_args(plan),
            *extra_args,
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            yield _Launched(proc, work, job_dir, output, console, started)
        finally:
            if proc.poll() is None:  # never leave QEMU behind
                proc.kill()
            proc.communicate()


def run_in_vm(
    cmd: list[str],
    timeout: float,
    cwd: str = "/",
    extra_shares: Sequence[Share] = (),
) -> VmRun:
    """Boot the stock kernel, run `cmd` as root in the guest in `cwd`, power off; its rc and
    output. The guest sees what `shares(..., extra_shares)` lists.

    A job that fails is a VmRun with its non-zero rc (`VmRun.check` raises with everything
    it printed); VmError means the VM itself did not boot or did not finish within
    `timeout` seconds (QEMU is killed then).
    """
    with _launched(GuestSpec(extra_shares=tuple(extra_shares)), cmd, cwd) as vm:
        try:
            qemu_said, _ = vm.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise VmError(
                f"the VM did not finish within {timeout:.0f}s; its output:\n"
                f"{vm.output_text()}\nconsole (end):\n{vm.console_tail()}"
            ) from None
        seconds = time.monotonic() - vm.started
        rc_file = vm.job_dir / "rc"
        if not rc_file.exists():
            raise VmError(
                f"the VM stopped before the job finished (QEMU exit {vm.proc.returncode}: "
                f"{qemu_said.decode(errors='replace').strip()}); its output:\n"
                f"{vm.output_text()}\nconsole (end):\n{vm.console_tail()}"
            )
        begun, ended = (float(t) for t in (vm.job_dir / "job-times").read_text().split())
        return VmRun(
            command=shlex.join(cmd),
            cwd=cwd,
            rc=int(rc_file.read_text().strip()),
            output=vm.output_text(),
            console=vm.console_tail(),
            seconds=seconds,
            job_seconds=ended - begun,
        )


@dataclass(frozen=True)
class GuestResult:
    guest: str
    argv: tuple[str, ...]
    rc: int
    stdout: str
    stderr: str

    def check(self) -> GuestResult:
        if self.rc != 0:
            raise VmJobFailed(
                f"on {self.guest}: `{shlex.join(self.argv)}` exited {self.rc}\n"
                f"stdout:\n{self.stdout.rstrip() or '(none)'}\n"
                f"stderr:\n{self.stderr.rstrip() or '(none)'}"
            )
        return self


class Guest:
    """A booted guest whose agent runs the host's commands (see guest_agent.py)."""

    # Added to a command's own timeout before the host gives up on the agent's answer.
    AGENT_SLACK = 30.0

    def __init__(self, spec: GuestSpec, vm: _Launched, socket_path: Path) -> None:
        self.spec = spec
        self.name = spec.hostname
        self._vm = vm
        self._socket_path = socket_path
        self._socket: socket.socket | None = None
        self._reader: BinaryIO | None = None
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        """The guest's address on the segment (without the prefix length)."""
        if self.spec.nic is None:
            raise VmError(f"{self.name} has no NIC")
        return self.spec.nic.address.split("/")[0]

    @property
    def ready_file(self) -> Path:
        return self._vm.job_dir / "agent-ready"

    def exited(self) -> bool:
        return self._vm.proc.poll() is not None

    def console_tail(self) -> str:
        return self._vm.console_tail()

    def agent_output(self) -> str:
        return self._vm.output_text()

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(str(self._socket_path))
        self._socket, self._reader = sock, sock.makefile("rb")

    def run(
        self,
        *argv: str,
        timeout: float = 60.0,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
    ) -> GuestResult:
        """Run `argv` as root in the guest; its exit code and output (VmJobFailed when it
        exits non-zero and `check`; VmError when the guest does not answer)."""
        if self._socket is None or self._reader is None:
            raise VmError(f"{self.name}: not connected to its agent")
        request = {"argv": list(argv), "timeout": timeout, "input": input, "env": env}
        with self._lock:
            self._socket.settimeout(timeout + self.AGENT_SLACK)
            try:
                self._socket.sendall(json.dumps(request).encode() + b"\n")
                line = self._reader.readline()
            except OSError as exc:
                line, why = b"", str(exc)
            else:
                why = "the agent closed its port"
        if not line:
            raise VmError(
                f"{self.name} did not answer `{shlex.join(argv)}` ({why}); "
                f"console (end):\n{self.console_tail()}"
            )
        answer = json.loads(line)
        result = GuestResult(self.name, argv, answer["rc"], answer["stdout"], answer["stderr"])
        return result.check() if check else result

    def sh(self, script: str, timeout: float = 60.0, check: bool = True) -> str:
        """A shell script's stdout (`sh -ec`)."""
        return self.run("/bin/sh", "-ec", script, timeout=timeout, check=check).stdout

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def _attach_tap(nic: Nic, guest: _Launched, deadline: float) -> None:
    """Put the tap QEMU made on the segment's bridge (QEMU makes it as it starts)."""
    ns = ["ip", "-n", nic.netns]
    while subprocess.run([*ns, "link", "show", nic.tap], capture_output=True).returncode:
        if guest.proc.poll() is not None or time.monotonic() > deadline:
            said = guest.proc.communicate()[0].decode(errors="replace").strip()
            raise VmError(f"QEMU made no tap {nic.tap} in {nic.netns}: {said}")
        time.sleep(0.02)
    _run(*ns, "link", "set", nic.tap, "master", nic.bridge, "up")


@contextlib.contextmanager
def booted_guests(specs: Sequence[GuestSpec], timeout: float) -> Iterator[list[Guest]]:
    """Boot every guest of `specs` at once; each runs the agent, and is connected to once
    it listens (VmError if one does not within `timeout` seconds). Every QEMU is killed on
    the way out, whatever happened."""
    with contextlib.ExitStack() as stack:
        guests = []
        for spec in specs:
            agent_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="pcva-")))
            sock = agent_dir / "agent.sock"
            extra = [
                "-device", "virtio-serial-pci,id=vser0",
                "-chardev", f"socket,id=agent,path={sock},server=on,wait=off",
                "-device", f"virtserialport,bus=vser0.0,chardev=agent,name={AGENT_PORT}",
            ]  # fmt: skip
            agent = f"{JOB_DIR}/{AGENT_SOURCE.name}"
            cmd = ["/usr/bin/python3", agent, AGENT_PORT, f"{JOB_DIR}/agent-ready"]
            vm = stack.enter_context(_launched(spec, cmd, "/", extra))
            shutil.copy(AGENT_SOURCE, vm.job_dir / AGENT_SOURCE.name)
            guest = Guest(spec, vm, sock)
            stack.callback(guest.close)
            guests.append(guest)
        deadline = time.monotonic() + timeout
        for guest in guests:
            if guest.spec.nic is not None:
                _attach_tap(guest.spec.nic, guest._vm, deadline)
        for guest in guests:
            while not guest.ready_file.exists():
                if guest.exited() or time.monotonic() > deadline:
                    raise VmError(
                        f"{guest.name}'s agent did not start within {timeout:.0f}s; its "
                        f"output:\n{guest.agent_output()}\nconsole (end):\n{guest.console_tail()}"
                    )
                time.sleep(0.1)
            guest.connect()
        yield guests


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def _console_tail(path: Path) -> str:
    """The console's last OUTPUT_TAIL characters, without the firmware's terminal codes."""
    return TERMINAL_CODES.sub("", _read(path))[-OUTPUT_TAIL:]
