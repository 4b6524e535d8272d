"""`calico-node install` / `uninstall` for real, into throwaway roots: a venv built from the
wheelhouse, compiled shims, Calico's files; idempotence; systemd-analyze on the unit; and
uninstall removing exactly what install wrote and what calico-node left in the kernel of a
network namespace made for the test (never the host's)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pycalico.datastore.sqlite import SqliteBackend
from tests.support import readme_install
from tests.support.install_root import contents, files_in, snapshot
from tests.support.lab_driver import wait_for
from tests.support.node_namespace import node_namespace, sh
from tests.support.wheelhouse_cache import cached_wheelhouse

pytestmark = pytest.mark.integration

CALICO_NODE = os.path.join(os.path.dirname(sys.executable), "calico-node")
SETTINGS = ("NODENAME=node1", "IP=192.0.2.11/24", "CALICO_IPV4POOL_CIDR=10.65.0.0/16")
README_INSTALL = readme_install.command("pycalico.node.main install")
README_SETTINGS = readme_install.settings(README_INSTALL)
INSTALLED = {
    "/etc/calico/.pycalico-install",
    "/etc/calico/calico.env",
    "/etc/calico/calicoctl.cfg",
    "/etc/cni/net.d/10-calico.conflist",
    "/etc/systemd/system/calico-node.service",
    "/etc/NetworkManager/conf.d/calico.conf",
    "/opt/cni/bin/calico",
    "/opt/cni/bin/calico-ipam",
    "/opt/cni/bin/loopback",
    "/opt/cni/bin/portmap",
    "/usr/local/bin/calico-node",
    "/usr/local/bin/calicoctl",
}
# What new_root's Debian host has of its own (containernetworking-plugins).
DEBIAN_PLUGINS = {"/usr/lib/cni/loopback", "/usr/lib/cni/portmap"}


@pytest.fixture(scope="session")
def wheelhouse() -> Path:
    return cached_wheelhouse()


def calico_node(
    *args: str, netns: str | None = None, program: str = CALICO_NODE
) -> subprocess.CompletedProcess[str]:
    """This checkout's calico-node (or `program`), in the test's namespace when `netns` is
    given."""
    prefix = ["nsenter", f"--net=/run/netns/{netns}"] if netns else []
    return subprocess.run(
        [*prefix, program, *args], capture_output=True, text=True, check=False, timeout=120
    )


def install(root: Path, wheelhouse: Path, *settings: str) -> subprocess.CompletedProcess[str]:
    out = calico_node("install", f"--root={root}", f"--wheelhouse={wheelhouse}", *settings)
    assert out.returncode == 0, out.stderr
    return out


def new_root(tmp_path: Path, name: str = "root", plugins: bool = True) -> Path:
    """A root as a Debian host has it: /etc with NetworkManager's conf.d, /opt,
    /usr/local/bin and (with `plugins`) two of containernetworking-plugins' executables."""
    root = tmp_path / name
    (root / "etc/NetworkManager/conf.d").mkdir(parents=True)
    (root / "opt").mkdir()
    (root / "usr/local/bin").mkdir(parents=True)
    if plugins:
        (root / "usr/lib/cni").mkdir(parents=True)
        for path in DEBIAN_PLUGINS:
            (root / path.lstrip("/")).write_bytes(b"\x7fELF Debian's plugin")
            (root / path.lstrip("/")).chmod(0o755)
    return root


def install_as_the_readme_says(root: Path, wheelhouse: Path, workdir: Path) -> None:
    """The README's install command, as written, with `--root` added: run by bash in a
    directory holding `wheelhouse`, with only the system's python3 and programs on PATH."""
    (workdir / "wheelhouse").symlink_to(wheelhouse)
    out = subprocess.run(
        ["bash", "-c", f"{README_INSTALL} --root {root}"],
        capture_output=True, text=True, check=False, cwd=workdir,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""


@pytest.fixture(scope="module")
def installed(
    tmp_path_factory: pytest.TempPathFactory, wheelhouse: Path
) -> Iterator[tuple[Path, dict, dict, str]]:
    """One root installed twice with the README's settings, first by the README's command
    (the system's python3 from the wheels), then by this checkout's calico-node: the root,
    what it held after each install, and the second install's output."""
    base = tmp_path_factory.mktemp("installed")
    root = new_root(base)
    install_as_the_readme_says(root, wheelhouse, base)
    first = snapshot(root)
    second = install(root, wheelhouse, *README_SETTINGS)
    yield root, first, snapshot(root), second.stdout


def test_install_lays_down_calicos_files_and_the_venv(installed: tuple) -> None:
    root, first, _, _ = installed
    assert {p for p in files_in(root) if not p.startswith("/opt/pycalico/")} == (
        INSTALLED | DEBIAN_PLUGINS
    )
    modes = {path: first[path][0] & 0o7777 for path in INSTALLED}
    assert modes == {
        "/etc/calico/.pycalico-install": 0o644,
        "/etc/calico/calico.env": 0o600,
        "/etc/calico/calicoctl.cfg": 0o644,
        "/etc/cni/net.d/10-calico.conflist": 0o600,
        "/etc/systemd/system/calico-node.service": 0o644,
        "/etc/NetworkManager/conf.d/calico.conf": 0o644,
        "/opt/cni/bin/calico": 0o755,
        "/opt/cni/bin/calico-ipam": 0o755,
        "/opt/cni/bin/loopback": 0o777,
        "/opt/cni/bin/portmap": 0o777,
        "/usr/local/bin/calico-node": 0o777,
        "/usr/local/bin/calicoctl": 0o777,
    }
    links = {path: first[path][1] for path in INSTALLED if stat.S_ISLNK(first[path][0])}
    assert links == {
        "/opt/cni/bin/loopback": "/usr/lib/cni/loopback",
        "/opt/cni/bin/portmap": "/usr/lib/cni/portmap",
        "/usr/local/bin/calico-node": "/opt/pycalico/bin/calico-node",
        "/usr/local/bin/calicoctl": "/opt/pycalico/bin/calicoctl",
    }
    conflist = json.loads((root / "etc/cni/net.d/10-calico.conflist").read_text())
    assert [p["type"] for p in conflist["plugins"]] == ["calico", "portmap"]
    calico = conflist["plugins"][0]
    assert (calico["nodename"], calico["datastore_type"], calico["etcd_endpoints"]) == (
        "host1",
        "etcdv3",
        "http://192.0.2.11:2379",
    )
    env = (root / "etc/calico/calico.env").read_text().splitlines()
    # The README's settings, and Calico's manifest's default for pods reaching their host.
    expected = [*README_SETTINGS, "FELIX_DEFAULTENDPOINTTOHOSTACTION=ACCEPT"]
    assert sorted(line for line in env if not line.startswith("#")) == sorted(expected)
    manifest = json.loads((root / "etc/calico/.pycalico-install").read_text())
    assert manifest["prefix"] == "/opt/pycalico"
    assert set(manifest["files"]) == INSTALLED - {"/etc/calico/.pycalico-install"}
    # Made by install; /etc/NetworkManager/conf.d and /opt were there already.
    assert manifest["dirs"] == [
        "/etc/calico",
        "/etc/cni",
        "/etc/cni/net.d",
        "/etc/systemd",
        "/etc/systemd/system",
        "/opt/cni",
        "/opt/cni/bin",
    ]


def test_the_cni_executables_are_the_compiled_shim_for_the_venv_and_the_agent(
    installed: tuple,
) -> None:
    root = installed[0]
    for name in ("calico", "calico-ipam"):
        data = (root / "opt/cni/bin" / name).read_bytes()
        assert data.startswith(b"\x7fELF")
        assert b"/opt/pycalico/bin/python\0" in data
        assert b"/var/run/calico/cni-agent.sock\0" in data


def test_the_venvs_calico_node_and_calicoctl_run(installed: tuple, tmp_path: Path) -> None:
    root = installed[0]
    # calicoctl version asks the cluster too: give it a store of its own, not the host's.
    store = tmp_path / "calico.db"
    SqliteBackend(store, create=True).close()
    env = {**os.environ, "DATASTORE_TYPE": "sqlite", "SQLITE_PATH": str(store)}
    for program in ("calico-node", "calicoctl"):
        out = subprocess.run(
            [
                str(root / "opt/pycalico/bin" / program),
                "version" if program == "calicoctl" else "-v",
            ],
            capture_output=True,
            text=True,
            check=False,
            env=env,
        )
        assert out.returncode == 0 and "v0.1.0" in out.stdout, out.stderr


def test_a_second_install_with_the_same_settings_changes_nothing(installed: tuple) -> None:
    # Also: the README's command (the system's python3 from the wheels) and the checkout's
    # calico-node lay down the same bytes.
    _, first, second, output = installed
    assert second == first  # bytes, modes, inodes and mtimes, venv included
    assert (
        output.splitlines()[-1] == "pycalico for node host1 is installed as asked: nothing changed"
    )


def test_the_unit_passes_systemd_analyze_verify(installed: tuple) -> None:
    root = installed[0]
    unit = root / "etc/systemd/system/calico-node.service"
    # verify checks that ExecStart exists at its host path: show it the root's /opt there,
    # in a mount namespace of its own (the host's /opt is not touched).
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount --bind "$1/opt" /opt && exec systemd-analyze verify "$2"', "sh",
         str(root), str(unit)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert out.returncode == 0 and out.stderr == "", out.stderr


def test_install_with_other_settings_rewrites_only_calico_env_and_the_conflist(
    tmp_path: Path, wheelhouse: Path
) -> None:
    root = new_root(tmp_path)
    install(root, wheelhouse, *SETTINGS)
    before = snapshot(root)
    out = install(root, wheelhouse, *SETTINGS, "CALICO_NETWORKING_BACKEND=vxlan", "CNI_MTU=1440")
    after = snapshot(root)
    # Files only: a directory's mtime moves with every rename into it.
    changed = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
    assert {p for p in changed if not stat.S_ISDIR(after[p][0])} == {
        "/etc/calico/calico.env",
        "/etc/cni/net.d/10-calico.conflist",
    }
    assert "CALICO_NETWORKING_BACKEND=vxlan\n" in (root / "etc/calico/calico.env").read_text()
    assert '"mtu": 1440,' in (root / "etc/cni/net.d/10-calico.conflist").read_text()
    assert out.stdout.splitlines()[:2] == [
        "wrote /etc/cni/net.d/10-calico.conflist",
        "wrote /etc/calico/calico.env",
    ]


def test_install_links_no_plugin_over_the_hosts_own_and_warns_when_portmap_is_nowhere(
    tmp_path: Path, wheelhouse: Path
) -> None:
    root = new_root(tmp_path, plugins=False)
    out = install(root, wheelhouse, *SETTINGS)
    assert out.stderr == (
        "calico-node: warning: the conflist chains portmap after calico, and neither "
        "/opt/cni/bin/portmap nor /usr/lib/cni/portmap exists "
        "(apt-get install containernetworking-plugins)\n"
    )
    # The host's own portmap in /opt/cni/bin is used as it is, even with Debian's there too.
    (root / "opt/cni/bin/portmap").write_bytes(b"\x7fELF the host's own portmap")
    (root / "usr/lib/cni").mkdir(parents=True)
    (root / "usr/lib/cni/portmap").write_bytes(b"\x7fELF Debian's portmap")
    out = install(root, wheelhouse, *SETTINGS)
    assert out.stderr == ""
    assert out.stdout.splitlines()[-1].endswith("is installed as asked: nothing changed")
    assert (root / "opt/cni/bin/portmap").read_bytes() == b"\x7fELF the host's own portmap"


def test_a_wheelhouse_pip_cannot_install_from_leaves_the_root_as_it_was(
    tmp_path: Path, wheelhouse: Path
) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(wheelhouse, broken)
    (pycalico_wheel,) = broken.glob("pycalico-*.whl")
    pycalico_wheel.write_bytes(b"not a zip file")
    root = new_root(tmp_path)
    before = contents(root)
    out = calico_node("install", f"--root={root}", f"--wheelhouse={broken}", *SETTINGS)
    assert out.returncode == 1
    assert out.stderr.startswith(f"calico-node: pip cannot install pycalico from {broken}: ")
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert contents(root) == before


def make_calico_state(ns: str) -> None:
    """What calico-node and the CNI leave in a node's kernel, plus what is not theirs."""
    for cmd in [
        "ip link add cali1234567890a type veth peer name eth0 netns {pod}",
        "ip link set cali1234567890a up",
        "ip route add 10.65.0.5/32 dev cali1234567890a scope link",
        "ip link add vxlan.calico type vxlan id 4096 dstport 4789 dev eth0",
        "ip link set vxlan.calico up",
        "ip addr add 10.65.1.0/32 dev vxlan.calico",
        "ip route add 10.65.2.0/26 via 10.65.2.0 dev vxlan.calico onlink proto 80",
        "ip route add 10.65.3.0/26 via 192.0.2.13 dev eth0 proto 80",
        "ip route add 10.65.4.0/26 via 192.0.2.14 dev eth0 proto bird",
        "ip route add blackhole 10.65.1.0/26 proto bird",
        "ip -6 route add fd00:65::/64 via fe80::1 dev eth0 proto bird",
        "nft add table inet calico",
        "nft add chain inet calico filter-FORWARD { type filter hook forward priority 0 ; }",
        # Not Calico's: must survive.
        "ip link add mylink0 type veth peer name mylink1",
        "ip route add 198.51.100.0/24 via 192.0.2.1 dev eth0",
        "ip route add 203.0.113.0/24 via 192.0.2.1 dev eth0 proto static",
        "nft add table inet mine",
    ]:
        sh(ns, *cmd.replace("{pod}", f"{ns}-pod").split())


def kernel_state(ns: str) -> tuple[set[str], str, str]:
    links = {line.split(": ")[1].split("@")[0] for line in sh(ns, "ip", "-o", "link").splitlines()}
    return (
        links,
        sh(ns, "ip", "route") + sh(ns, "ip", "-6", "route"),
        sh(ns, "nft", "list", "tables"),
    )


def test_uninstall_removes_what_install_wrote_and_calicos_kernel_state_and_nothing_else(
    tmp_path: Path, wheelhouse: Path
) -> None:
    root = new_root(tmp_path)
    install(root, wheelhouse, *SETTINGS)
    # What the user added next to install's files, and systemctl enable's link.
    (root / "etc/calico/mine.yaml").write_text("kind: IPPool\n")
    # What calico-node with the bird backend renders into install's /etc/calico.
    confd = root / "etc/calico/confd/config"
    confd.mkdir(parents=True)
    (confd / "bird.cfg").write_text("router id 192.0.2.11;\n")
    (root / "opt/cni/bin/tuning").write_bytes(b"\x7fELF a plugin of the host's own")
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir()
    (wants / "calico-node.service").symlink_to("/etc/systemd/system/calico-node.service")
    with node_namespace("pcun", "192.0.2.11/24") as node:
        pod = f"{node.ns}-pod"
        subprocess.run(["ip", "netns", "add", pod], check=True)
        bird = None
        try:
            make_calico_state(node.ns)
            # A BIRD a crashed calico-node left running, found by its pid file.
            run = root / "var/run/calico"
            run.mkdir(parents=True)
            (tmp_path / "bird.cfg").write_text("router id 192.0.2.11;\nprotocol device {}\n")
            bird = subprocess.Popen(
                ["ip", "netns", "exec", node.ns, "bird", "-f", "-c", str(tmp_path / "bird.cfg"),
                 "-s", str(run / "bird.ctl"), "-P", str(run / "bird.pid")],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            wait_for("BIRD's pid file", (run / "bird.pid").exists, 10)

            # The installed calico-node uninstalls itself, venv and all.
            installed_node = str(root / "opt/pycalico/bin/calico-node")
            out = calico_node("uninstall", f"--root={root}", netns=node.ns, program=installed_node)
            assert out.returncode == 0, out.stderr
            assert bird.wait(timeout=10) == 0
            links, routes, tables = kernel_state(node.ns)
        finally:
            if bird is not None and bird.poll() is None:
                bird.kill()
                bird.wait()
            subprocess.run(["ip", "netns", "del", pod], check=False)
    assert links == {"lo", "eth0", "mylink0", "mylink1"}
    assert [r for r in routes.splitlines() if not r.startswith("fe80::/64")] == [
        "192.0.2.0/24 dev eth0 proto kernel scope link src 192.0.2.11 ",
        "198.51.100.0/24 via 192.0.2.1 dev eth0 ",
        "203.0.113.0/24 via 192.0.2.1 dev eth0 proto static ",
    ]
    assert tables == "table inet mine\n"
    assert files_in(root) == {"/etc/calico/mine.yaml", "/opt/cni/bin/tuning", *DEBIAN_PLUGINS}
    assert (root / "etc/NetworkManager/conf.d").is_dir()  # the package's, not install's
    lines = out.stdout.splitlines()
    assert lines[0] == f"systemctl not used: --root {root} is not this host's root"
    assert lines[1].startswith("stopping BIRD (pid ")
    assert "deleted nftables table inet calico" in lines
    assert "removed /etc/systemd/system/multi-user.target.wants/calico-node.service" in lines
    assert lines[-1] == (
        "uninstalled; the datastore is left as it was: `calicoctl delete node node1` on "
        "another node releases its addresses"
    )


def test_uninstall_again_finds_nothing_and_succeeds(tmp_path: Path) -> None:
    root = new_root(tmp_path)
    with node_namespace("pcun") as node:
        out = calico_node("uninstall", f"--root={root}", netns=node.ns)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == (
        f"nothing installed in {root} (no /etc/calico/.pycalico-install); the kernel is clean"
    )


def test_the_installed_node_runs_and_uninstall_stops_it_and_removes_its_kernel_state(
    tmp_path: Path, wheelhouse: Path
) -> None:
    root = new_root(tmp_path)
    store = root / "var/lib/calico/pycalico.db"
    install(
        root, wheelhouse, *SETTINGS, "CALICO_NETWORKING_BACKEND=vxlan",
        "CALICO_IPV4POOL_VXLAN=Always", f"SQLITE_PATH={store}",
    )  # fmt: skip
    env = {"PATH": os.environ["PATH"]}
    for line in (root / "etc/calico/calico.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value.strip("'")
    # The node's directories inside the root (the installed node's are /var/...).
    env |= {
        "CALICO_STATE_DIR": str(root / "var/lib/calico"),
        "CALICO_RUN_DIR": str(root / "var/run/calico"),
    }
    with node_namespace("pcnd", "192.0.2.11/24", gateway="192.0.2.1") as node:
        with open(tmp_path / "node.log", "wb") as log:
            proc = subprocess.Popen(
                ["nsenter", f"--net={node.path}", str(root / "opt/pycalico/bin/calico-node")],
                env=env, stdout=log, stderr=log,
            )  # fmt: skip
        try:
            wait_for(
                "calico-node's vxlan.calico and nft table",
                lambda: (
                    "vxlan.calico" in sh(node.ns, "ip", "-o", "link")
                    and "inet calico" in sh(node.ns, "nft", "list", "tables")
                    and (root / "var/run/calico/calico-node.pid").exists()
                ),
                30,
            )
            out = calico_node("uninstall", f"--root={root}", netns=node.ns)
            assert out.returncode == 0, out.stderr
            assert proc.wait(timeout=10) == 0
            links, _routes, tables = kernel_state(node.ns)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
    assert links == {"lo", "eth0"}
    assert "calico" not in tables
    assert out.stdout.splitlines()[1].startswith("stopping calico-node (pid ")
    # The datastore and calico-node's own state are left; install's files are gone.
    assert store.is_file()
    node_state = ("/var/lib/calico/", "/var/run/calico/")
    assert {p for p in files_in(root) if not p.startswith(node_state)} == DEBIAN_PLUGINS
    assert stat.S_ISDIR(os.stat(root / "var/lib/calico").st_mode)
