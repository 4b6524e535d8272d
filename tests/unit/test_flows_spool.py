"""A sender's spool: identity, records and acknowledgements survive a restart; a torn last
line is skipped; a grown journal is rewritten to what is still kept."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pycalico.flows import wire
from pycalico.flows.spool import Entry, Spool
from tests.support.flow_records import flow


def entry(seq: int, at: float = 100.0) -> Entry:
    return Entry(seq, at, wire.record(seq, flow(dest_port=seq)))


def test_a_reopened_spool_has_the_same_identity_records_and_acknowledgement(
    tmp_path: Path,
) -> None:
    spool = Spool(str(tmp_path / "s"), "node-1")
    for seq in (1, 2, 3):
        spool.append(entry(seq))
    spool.ack(2)
    spool.close()
    again = Spool(str(tmp_path / "s"), "ignored")
    assert again.sender == spool.sender
    assert again.sender.startswith("node-1-")
    assert [e.seq for e in again.entries] == [1, 2, 3]
    assert again.entries[2] == entry(3)
    assert again.acked == 2
    again.close()


def test_the_spool_is_private(tmp_path: Path) -> None:
    Spool(str(tmp_path / "s")).close()
    assert stat.S_IMODE(os.stat(tmp_path / "s").st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "s" / "sender").st_mode) == 0o600


def test_a_torn_last_line_is_skipped(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"))
    spool.append(entry(1))
    spool.close()
    with open(tmp_path / "s" / "records", "ab") as f:
        f.write(b'100.000 {"seq":2,"flo')
    again = Spool(str(tmp_path / "s"))
    assert [e.seq for e in again.entries] == [1]
    again.close()


def test_a_grown_journal_is_rewritten_to_what_is_kept(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"))
    for seq in range(1, 1201):
        spool.append(entry(seq))
        spool.ack(seq)
    kept = [entry(1200)]
    spool.compact_if_grown(kept, 1200)
    spool.append(entry(1201))
    spool.close()
    lines = (tmp_path / "s" / "records").read_bytes().splitlines()
    assert len(lines) == 3  # the kept record, the acknowledgement, the new record
    again = Spool(str(tmp_path / "s"))
    assert ([e.seq for e in again.entries], again.acked) == ([1200, 1201], 1200)
    again.close()


def test_a_small_journal_is_left_alone(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"))
    for seq in range(1, 11):
        spool.append(entry(seq))
    spool.compact_if_grown([], 10)
    spool.close()
    assert len((tmp_path / "s" / "records").read_bytes().splitlines()) == 10


def test_a_new_identity_is_kept_with_the_records_none_acknowledged(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "s"), "node-1")
    for seq in (1, 2):
        spool.append(entry(seq))
    spool.ack(2)
    spool.restart_as("node-1-fresh", [entry(2)])
    spool.close()
    again = Spool(str(tmp_path / "s"))
    assert (again.sender, [e.seq for e in again.entries], again.acked) == ("node-1-fresh", [2], 0)
    again.close()
