"""`calico-node install` refuses, in one line with exit status 1, whatever it cannot do
right, before it changes anything: bad settings, a wheelhouse it cannot install from, a file
or venv it did not write, certificate files that are not there, another install's prefix."""

from __future__ import annotations

from pathlib import Path

import pytest

from pycalico.node import main as node_main
from pycalico.node.install import files
from pycalico.node.install.manifest import Manifest
from tests.support.install_root import snapshot


@pytest.fixture
def wheelhouse(tmp_path: Path) -> Path:
    """Wheel-named files: every case here is refused before a wheel is opened."""
    path = tmp_path / "wheelhouse"
    path.mkdir()
    for name in ("pycalico-0.1.0-py3-none-any.whl", "pip-26.3-py3-none-any.whl"):
        (path / name).write_bytes(b"not opened")
    return path


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    (path / "etc").mkdir(parents=True)
    return path


def refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    monkeypatch.setattr("sys.argv", ["calico-node", *argv])
    assert node_main.main() == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("calico-node: ") and err.count("\n") == 1
    return err.removeprefix("calico-node: ").rstrip("\n")


@pytest.mark.parametrize(
    ("setup", "argv", "message"),
    [
        (None, ["NODENAME=Node1"], "invalid node name 'Node1'"),
        (None, ["CALICO_NETWORKING_BACKEND=calico"], "CALICO_NETWORKING_BACKEND=calico is not"),
        (None, ["IP=192.0.2.300"], "IP=192.0.2.300 is not autodetect, none, or an IPv4 address"),
        (
            None,
            [
                "DATASTORE_TYPE=etcdv3",
                "ETCD_ENDPOINTS=https://192.0.2.1:2379",
                "ETCD_CA_CERT_FILE=/etc/calico/pki/ca.pem",
            ],
            "/etc/calico/pki/ca.pem does not exist (etcd client certificate files)",
        ),
        (
            "etc/calico/calicoctl.cfg",
            [],
            "/etc/calico/calicoctl.cfg exists and calico-node install did not write it",
        ),
        ("opt/cni/bin/calico", [], "/opt/cni/bin/calico exists and calico-node install did not"),
        ("opt/pycalico/", [], "/opt/pycalico exists and calico-node install did not write it"),
    ],
)
def test_install_refuses_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root: Path,
    wheelhouse: Path,
    setup: str | None,
    argv: list[str],
    message: str,
) -> None:
    if setup is not None:
        target = root / setup
        target.parent.mkdir(parents=True, exist_ok=True)
        if setup.endswith("/"):
            target.mkdir()
        else:
            target.write_text("someone else's\n")
    before = snapshot(root)
    if not any(arg.startswith("NODENAME=") for arg in argv):
        argv = ["NODENAME=node1", *argv]
    line = refused(
        monkeypatch, capsys, "install", "--root", str(root), "--wheelhouse", str(wheelhouse), *argv
    )
    assert line.startswith(message)
    assert snapshot(root) == before


@pytest.mark.parametrize(
    ("wheels", "message"),
    [
        (None, "is not a directory (make wheelhouse)"),
        (["pycalico-0.1.0-py3-none-any.whl"], "holds no pip wheel; it needs one (make wheelhouse)"),
        (["pip-26.3-py3-none-any.whl"], "holds no pycalico wheel; it needs one (make wheelhouse)"),
        (
            [
                "pip-26.3-py3-none-any.whl",
                "pycalico-0.1.0-py3-none-any.whl",
                "pycalico-0.2.0-py3-none-any.whl",
            ],
            "holds 2 pycalico wheels; it needs one (make wheelhouse)",
        ),
    ],
)
def test_install_refuses_a_wheelhouse_it_cannot_install_from(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    root: Path,
    wheels: list[str] | None,
    message: str,
) -> None:
    house = tmp_path / "house"
    if wheels is not None:
        house.mkdir()
        for name in wheels:
            (house / name).write_bytes(b"")
    before = snapshot(root)
    line = refused(monkeypatch, capsys, "install", f"--root={root}", f"--wheelhouse={house}")
    assert line == f"wheelhouse {house} {message}"
    assert snapshot(root) == before


def test_install_refuses_to_move_an_installed_venv_to_another_prefix(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root: Path,
    wheelhouse: Path,
) -> None:
    (root / "etc/calico").mkdir()
    files.write_manifest(str(root), Manifest("/opt/pycalico"))
    before = snapshot(root)
    line = refused(
        monkeypatch, capsys, "install", f"--root={root}", f"--wheelhouse={wheelhouse}",
        "--prefix=/opt/other", "NODENAME=node1",
    )  # fmt: skip
    assert line == (
        "pycalico is installed in /opt/pycalico; calico-node uninstall first to move it to "
        "/opt/other"
    )
    assert snapshot(root) == before


def test_install_and_uninstall_refuse_a_manifest_they_did_not_write(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    root: Path,
    wheelhouse: Path,
) -> None:
    (root / "etc/calico").mkdir()
    (root / "etc/calico/.pycalico-install").write_text('{"prefix": "/"}')
    before = snapshot(root)
    message = "/etc/calico/.pycalico-install is not a manifest calico-node install wrote"
    for argv in (
        ["install", f"--root={root}", f"--wheelhouse={wheelhouse}", "NODENAME=node1"],
        ["uninstall", f"--root={root}"],
    ):
        assert refused(monkeypatch, capsys, *argv).startswith(message)
    assert snapshot(root) == before


def test_a_root_that_is_not_a_directory_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    assert refused(monkeypatch, capsys, "uninstall", f"--root={missing}") == (
        f"--root {missing} is not a directory"
    )


def test_install_help_prints_and_changes_nothing(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.argv", ["calico-node", "install", "--help"])
    assert node_main.main() == 0
    assert capsys.readouterr().out.startswith("Usage: calico-node install --wheelhouse DIR")
