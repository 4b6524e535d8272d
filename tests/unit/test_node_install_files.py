"""Install's file writer under a throwaway root: a file is rewritten only when its bytes or
mode differ; removal takes exactly the listed files and only the directories left empty."""

from __future__ import annotations

import os
from pathlib import Path

from pycalico.node.install import files, services
from pycalico.node.install.manifest import Manifest
from pycalico.node.install.plan import PlannedFile
from tests.support.install_root import snapshot

PLANNED = [
    PlannedFile("/etc/calico/calico.env", "NODENAME=node1\n", 0o600),
    PlannedFile("/etc/calico/calicoctl.cfg", "kind: CalicoAPIConfig\n", 0o644),
]


def _write(root: Path, planned: list[PlannedFile]) -> list[str]:
    files.make_dirs(str(root), files.missing_dirs(str(root), [p.path for p in planned]))
    return files.write_planned(str(root), planned, lambda _line: None)


def test_files_are_written_with_their_modes_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o077)
    try:
        assert _write(tmp_path, PLANNED) == ["/etc/calico/calico.env", "/etc/calico/calicoctl.cfg"]
    finally:
        os.umask(old)
    assert (tmp_path / "etc/calico/calico.env").read_text() == "NODENAME=node1\n"
    assert (tmp_path / "etc/calico/calico.env").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "etc/calico/calicoctl.cfg").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "etc/calico").stat().st_mode & 0o777 == 0o755


def test_writing_the_same_files_again_touches_nothing(tmp_path: Path) -> None:
    _write(tmp_path, PLANNED)
    before = snapshot(tmp_path)
    assert _write(tmp_path, PLANNED) == []
    assert snapshot(tmp_path) == before


def test_a_changed_mode_alone_is_rewritten(tmp_path: Path) -> None:
    _write(tmp_path, PLANNED)
    os.chmod(tmp_path / "etc/calico/calico.env", 0o644)
    assert _write(tmp_path, PLANNED) == ["/etc/calico/calico.env"]
    assert (tmp_path / "etc/calico/calico.env").stat().st_mode & 0o777 == 0o600


def test_missing_directories_are_listed_parents_first_and_existing_ones_not(
    tmp_path: Path,
) -> None:
    (tmp_path / "etc").mkdir()
    assert files.missing_dirs(str(tmp_path), ["/etc/cni/net.d/x", "/opt/cni/bin/calico"]) == [
        "/opt",
        "/etc/cni",
        "/opt/cni",
        "/etc/cni/net.d",
        "/opt/cni/bin",
    ]


def test_removal_keeps_a_directory_that_holds_a_file_install_did_not_write(
    tmp_path: Path,
) -> None:
    made = files.missing_dirs(str(tmp_path), [p.path for p in PLANNED])
    _write(tmp_path, PLANNED)
    (tmp_path / "etc/calico/mine.yaml").write_text("a user's file\n")
    lines: list[str] = []
    files.remove_files(str(tmp_path), [p.path for p in PLANNED], lines.append)
    files.remove_dirs(str(tmp_path), made, lines.append)
    assert (tmp_path / "etc/calico/mine.yaml").read_text() == "a user's file\n"
    assert set(snapshot(tmp_path)) == {"/etc", "/etc/calico", "/etc/calico/mine.yaml"}
    assert lines == [
        "removed /etc/calico/calico.env",
        "removed /etc/calico/calicoctl.cfg",
        "kept /etc/calico: it holds files install did not write",
        "kept /etc: it holds files install did not write",
    ]


def test_the_manifest_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    manifest = Manifest("/opt/pycalico", files=("/etc/calico/calico.env",))
    (tmp_path / "etc/calico").mkdir(parents=True)
    assert files.read_manifest(str(tmp_path)) is None
    assert files.write_manifest(str(tmp_path), manifest)
    assert not files.write_manifest(str(tmp_path), manifest)
    assert files.read_manifest(str(tmp_path)) == manifest


def test_the_enable_links_systemctl_enable_made_go_and_others_stay(tmp_path: Path) -> None:
    wants = tmp_path / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(parents=True)
    (wants / "calico-node.service").symlink_to("/etc/systemd/system/calico-node.service")
    (wants / "ssh.service").symlink_to("/lib/systemd/system/ssh.service")
    lines: list[str] = []
    services.remove_enable_links(str(tmp_path), lines.append)
    assert sorted(os.listdir(wants)) == ["ssh.service"]
    assert lines == ["removed /etc/systemd/system/multi-user.target.wants/calico-node.service"]


def test_a_link_is_made_once_and_repointed_in_one_rename(tmp_path: Path) -> None:
    (tmp_path / "usr/local/bin").mkdir(parents=True)
    link = tmp_path / "usr/local/bin/calicoctl"
    assert files.write_link(str(tmp_path), "/usr/local/bin/calicoctl", "/opt/a/bin/calicoctl")
    before = snapshot(tmp_path)
    assert not files.write_link(str(tmp_path), "/usr/local/bin/calicoctl", "/opt/a/bin/calicoctl")
    assert snapshot(tmp_path) == before
    assert files.write_link(str(tmp_path), "/usr/local/bin/calicoctl", "/opt/b/bin/calicoctl")
    assert os.readlink(link) == "/opt/b/bin/calicoctl"
    assert sorted(os.listdir(tmp_path / "usr/local/bin")) == ["calicoctl"]
