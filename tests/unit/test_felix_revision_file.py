"""The revision file Felix writes in place for whoever waits for the dataplane to catch up."""

from __future__ import annotations

from pathlib import Path

from pycalico.felix.dataplane.status_files import RevisionFileManager, read_revision


def test_the_revision_written_is_read_back_and_only_moves_forward(tmp_path: Path) -> None:
    path = str(tmp_path / "run" / "felix-revision")
    manager = RevisionFileManager(path)

    manager.write(1234)
    manager.write(99)

    assert read_revision(path) == 1234
    manager.write(100000)
    assert read_revision(path) == 100000
    manager.close()


def test_a_file_left_by_an_earlier_run_is_overwritten_whole(tmp_path: Path) -> None:
    path = tmp_path / "felix-revision"
    path.write_text("7\n" + "x" * 200)
    manager = RevisionFileManager(str(path))

    manager.write(5)

    assert read_revision(str(path)) == 5
    manager.close()


def test_a_read_that_caught_a_write_halfway_counts_as_nothing_applied(tmp_path: Path) -> None:
    path = tmp_path / "felix-revision"
    old, new = f"{1199:020d}", f"{1234:020d}"
    path.write_text(f"{new} {old}\n")

    assert read_revision(str(path)) == 0
    assert read_revision(str(tmp_path / "missing")) == 0
