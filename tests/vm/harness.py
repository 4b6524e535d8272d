"""Run one command inside Debian's stock kernel under QEMU and get its output and exit code.

This host's kernel lacks modules (ipip) that users' kernels have, so the code that needs
them is tested in a VM booting the current `linux-image-amd64` kernel, unpacked from
the Debian package (never installed over the host's). The guest has:

* the host's root filesystem, read-only over virtio-9p, under a tmpfs overlay: it runs
  exactly what is installed here (the repo, its venv, BIRD, nft), and its writes vanish
  when it powers off;
* fresh tmpfs on /run and /tmp, so it sees none of the host's namespaces or labs;
* no network device at all (`-nic none`): the only traffic is in namespaces it creates;
* a second, read-write 9p share of a host temp dir: the job script in, its exit code and
  timing out.

The command's stdout and stderr arrive on the second serial port; the first carries the
kernel's console, kept to explain a guest that never finished.

Booting is software emulation (TCG): this host's /dev/kvm cannot run a stock kernel.
The kernel is booted as an uncompressed ELF through its PVH entry point, because
decompressing the bzImage under emulation costs seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import lzma
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

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
OUTPUT_TAIL = 4000  # console characters quoted when the guest never finished
RESULTS_MOUNT = "/run/vm"

INIT = r"""#!/bin/busybox sh
# Stage 1 (initramfs): the host root read-only over 9p under a tmpfs overlay, then
# switch_root into it. Any failure panics the kernel, which makes QEMU exit at once.
/bin/busybox --install -s /bin
fail() { echo "vm-init: $*"; echo c > /proc/sysrq-trigger; }
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do insmod "/modules/$module" || fail "insmod $module"; done < /modules.list
mkdir -p /lower /rw /newroot
mount -t 9p -o ro,trans=virtio,version=9p2000.L,msize=512000,cache=loose hostroot /lower \
    || fail "mount hostroot"
mount -t tmpfs -o mode=0755 tmpfs /rw
mkdir -p /rw/upper /rw/work
mount -t overlay overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work /newroot \
    || fail "mount overlay"
for dir in /run /tmp; do mount -t tmpfs -o mode=1777 tmpfs "/newroot$dir"; done
mkdir -p "/newroot@RESULTS@" "/newroot/lib/modules/@KVER@"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 results "/newroot@RESULTS@" \
    || fail "mount results"
mount --bind "/newroot@MODULES@" "/newroot/lib/modules/@KVER@" || fail "bind modules"
for dir in /proc /sys /dev; do mount --move "$dir" "/newroot$dir"; done
exec switch_root /newroot /bin/sh "@RESULTS@/stage2"
"""

STAGE2 = r"""# Stage 2 (PID 1 on the overlay root): the job, its exit code to the share, power off.
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /var/tmp
hostname vm
ip link set lo up
/usr/sbin/modprobe -a @MODULES@ > @RESULTS@/modprobe.log 2>&1 || cat @RESULTS@/modprobe.log
/bin/busybox stty -F /dev/ttyS1 raw -echo
started=$(date +%s.%N)
cd @CWD@ && /bin/sh @RESULTS@/job > /dev/ttyS1 2>&1
rc=$?
echo "$started $(date +%s.%N)" > @RESULTS@/job-times
echo $rc > @RESULTS@/rc.tmp && mv @RESULTS@/rc.tmp @RESULTS@/rc
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


@dataclass(frozen=True)
class VmRun:
    rc: int
    output: str  # the job's stdout and stderr
    seconds: float  # boot, job and teardown
    job_seconds: float  # the job alone, by the guest's clock

    @property
    def boot_teardown_seconds(self) -> float:
        return self.seconds - self.job_seconds


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


def _initramfs(k: Kernel, work: Path) -> Path:
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
        INIT.replace("@RESULTS@", RESULTS_MOUNT)
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


def _job_script(cmd: list[str], env: Mapping[str, str]) -> str:
    exports = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items())
    return exports + f"exec {shlex.join(cmd)}\n"


def run_in_vm(
    cmd: list[str],
    timeout: float,
    cwd: str = "/",
) -> VmRun:
    """Boot the stock kernel, run `cmd` as root in the guest, power off; its rc and output.

    A job that fails is a VmRun with its non-zero rc; VmError means the VM itself did not
    boot or did not finish within `timeout` seconds (QEMU is killed then).
    """
    k = kernel()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pycalico-vm-") as tmp:
        work = Path(tmp)
        share = work / "share"
        share.mkdir()
        base_env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": "/root",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
        }
        (share / "job").write_text(_job_script(cmd, base_env))
        (share / "stage2").write_text(
            STAGE2.replace("@RESULTS@", RESULTS_MOUNT)
            .replace("@MODULES@", " ".join(GUEST_MODULES))
            .replace("@CWD@", shlex.quote(cwd))
        )
        initrd = _initramfs(k, work)
        output, console = work / "output", work / "console"
        argv = [
            QEMU,
            "-accel", "tcg,thread=multi",
            "-cpu", "max",
            "-smp", str(GUEST_CPUS),
            "-m", str(GUEST_MEMORY_MB),
            "-machine", "q35",
            "-kernel", str(k.vmlinux),
            "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1 rdinit=/init loglevel=4 mitigations=off",
            "-nic", "none",
            "-nographic",
            "-no-reboot",
            "-monitor", "none",
            "-chardev", f"file,id=console,path={console}",
            "-serial", "chardev:console",
            "-chardev", f"file,id=job,path={output}",
            "-serial", "chardev:job",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
            "-virtfs", f"local,path={share},mount_tag=results,security_model=none",
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            qemu_said, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise VmError(
                f"the VM did not finish within {timeout:.0f}s; its output:\n"
                f"{_read(output)}\nconsole (end):\n{_read(console)[-OUTPUT_TAIL:]}"
            ) from None
        finally:
            if proc.poll() is None:  # an exception on the way out: never leave QEMU behind
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - started
        rc_file = share / "rc"
        if not rc_file.exists():
            raise VmError(
                f"the VM stopped before the job finished (QEMU exit {proc.returncode}: "
                f"{qemu_said.decode(errors='replace').strip()}); its output:\n{_read(output)}\n"
                f"console (end):\n{_read(console)[-OUTPUT_TAIL:]}"
            )
        start, end = (float(t) for t in (share / "job-times").read_text().split())
        return VmRun(int(rc_file.read_text().strip()), _read(output), seconds, end - start)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
