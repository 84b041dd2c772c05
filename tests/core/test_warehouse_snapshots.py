"""Warehouse snapshots (`core.warehouse_snapshots`): the legacy single file, publishing a new
snapshot through `CURRENT`, nothing published on failure, pruning to `KEEP`, readers of a pruned
snapshot, a damaged pointer, and one writer at a time."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import duckdb
import pytest

from core.warehouse_snapshots import (
    KEEP,
    LEGACY,
    POINTER,
    SnapshotError,
    current_warehouse,
    new_snapshot,
    snapshot_dir,
    snapshot_id,
)


def _rows(path: Path) -> list[int]:
    """The values of table `t` in a DuckDB file, opened read-only."""
    with duckdb.connect(str(path), read_only=True) as con:
        return sorted(r[0] for r in con.execute("SELECT x FROM t").fetchall())


def _write(home: Path, value: int, **kwargs: float) -> Path:
    """One write through `new_snapshot`: add `value` to table `t` (created when missing)."""
    with new_snapshot(home, **kwargs) as path, duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (?)", [value])
    return path


def _snapshot_files(home: Path) -> list[str]:
    return sorted(p.name for p in snapshot_dir(home).glob("*.duckdb"))


def test_a_home_without_snapshots_reads_the_legacy_file(tmp_path):
    home = tmp_path / "home"
    assert current_warehouse(home) == home / LEGACY
    home.mkdir()
    with duckdb.connect(str(home / LEGACY)) as con:
        con.execute("CREATE TABLE t AS SELECT 7 AS x")
    assert current_warehouse(home) == home / LEGACY
    assert snapshot_id(current_warehouse(home)) == "legacy"
    assert _rows(current_warehouse(home)) == [7]


def test_each_write_publishes_a_new_numbered_snapshot_named_by_current(tmp_path):
    home = tmp_path / "home"
    first = _write(home, 1)
    assert snapshot_id(first) == "000001"
    assert (snapshot_dir(home) / POINTER).read_text(encoding="ascii").strip() == first.name
    assert current_warehouse(home) == first

    second = _write(home, 2)
    assert snapshot_id(second) == "000002"
    assert current_warehouse(home) == second
    assert _rows(second) == [1, 2]  # a copy of the published one, plus the new write
    assert _rows(first) == [1]  # a published snapshot is never written again
    assert _snapshot_files(home) == sorted([first.name, second.name])


def test_the_new_file_is_not_published_before_the_block_ends(tmp_path):
    home = tmp_path / "home"
    first = _write(home, 1)
    with new_snapshot(home) as path:
        assert path != first
        assert current_warehouse(home) == first
    assert current_warehouse(home) == path


def test_an_exception_in_the_block_publishes_nothing_and_leaves_no_file(tmp_path):
    home = tmp_path / "home"
    first = _write(home, 1)
    before = sorted(p.name for p in snapshot_dir(home).iterdir())
    with pytest.raises(RuntimeError, match="load failed"):
        with new_snapshot(home) as path, duckdb.connect(str(path)) as con:
            con.execute("INSERT INTO t VALUES (99)")
            raise RuntimeError("load failed")
    assert not path.exists()
    assert not path.with_name(path.name + ".wal").exists()
    assert sorted(p.name for p in snapshot_dir(home).iterdir()) == before
    assert current_warehouse(home) == first
    assert _rows(first) == [1]


def test_the_legacy_file_is_copied_into_the_first_snapshot_then_removed(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with duckdb.connect(str(home / LEGACY)) as con:
        con.execute("CREATE TABLE t AS SELECT * FROM (VALUES (10), (20)) v(x)")
    path = _write(home, 30)
    assert snapshot_id(path) == "000001"
    assert current_warehouse(home) == path
    assert _rows(path) == [10, 20, 30]
    assert not (home / LEGACY).exists()


def test_a_failed_first_write_keeps_the_legacy_file(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    with duckdb.connect(str(home / LEGACY)) as con:
        con.execute("CREATE TABLE t AS SELECT 10 AS x")
    with pytest.raises(ValueError, match="nope"), new_snapshot(home):
        raise ValueError("nope")
    assert current_warehouse(home) == home / LEGACY
    assert _rows(home / LEGACY) == [10]
    assert _snapshot_files(home) == []


def test_only_the_newest_keep_snapshots_remain_after_several_writes(tmp_path):
    home = tmp_path / "home"
    written = [_write(home, i) for i in range(KEEP + 3)]
    assert _snapshot_files(home) == sorted(p.name for p in written[-KEEP:])
    assert [snapshot_id(p) for p in written] == [f"{i:06d}" for i in range(1, KEEP + 4)]
    assert _rows(current_warehouse(home)) == list(range(KEEP + 3))


def test_keep_is_a_parameter_of_the_writer(tmp_path):
    home = tmp_path / "home"
    written = [_write(home, i, keep=1) for i in range(3)]
    assert _snapshot_files(home) == [written[-1].name]


def test_a_reader_keeps_reading_a_snapshot_pruned_while_it_is_open(tmp_path):
    home = tmp_path / "home"
    old = _write(home, 1)
    reader = duckdb.connect(str(old), read_only=True)
    try:
        for i in range(2, KEEP + 3):
            _write(home, i)
        assert not old.exists()  # pruned: its name is gone ...
        # ... but the open file still reads, as it was when published
        assert [r[0] for r in reader.execute("SELECT x FROM t").fetchall()] == [1]
    finally:
        reader.close()
    assert _rows(current_warehouse(home)) == list(range(1, KEEP + 3))


@pytest.mark.parametrize("text", ["garbage\n", "000001-not-a-stamp.duckdb", "../warehouse.duckdb"])
def test_a_current_file_with_garbage_raises_naming_the_file(tmp_path, text):
    home = tmp_path / "home"
    _write(home, 1)
    pointer = snapshot_dir(home) / POINTER
    pointer.write_text(text, encoding="ascii")
    with pytest.raises(SnapshotError) as err:
        current_warehouse(home)
    assert str(pointer) in str(err.value)


def test_a_current_file_naming_a_missing_snapshot_raises_naming_both(tmp_path):
    home = tmp_path / "home"
    _write(home, 1)
    pointer = snapshot_dir(home) / POINTER
    missing = "000042-20250101T000000000000Z.duckdb"
    pointer.write_text(missing + "\n", encoding="ascii")
    with pytest.raises(SnapshotError) as err:
        current_warehouse(home)
    assert str(pointer) in str(err.value)
    assert missing in str(err.value)
    with pytest.raises(SnapshotError), new_snapshot(home, wait_seconds=0.5):  # writers too
        pass


def test_a_second_writer_gives_up_after_wait_seconds_while_the_first_holds_the_lock(tmp_path):
    home = tmp_path / "home"
    _write(home, 1)
    holding, release = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def first_writer() -> None:
        try:
            with new_snapshot(home) as path, duckdb.connect(str(path)) as con:
                con.execute("INSERT INTO t VALUES (2)")
                holding.set()
                release.wait(10)
        except BaseException as err:  # reported below, in the test's thread
            errors.append(err)
            holding.set()

    thread = threading.Thread(target=first_writer)
    thread.start()
    try:
        assert holding.wait(10)
        start = time.monotonic()
        with pytest.raises(SnapshotError) as err, new_snapshot(home, wait_seconds=0.5):
            pass
        waited = time.monotonic() - start
        assert str(snapshot_dir(home)) in str(err.value)
        assert 0.5 <= waited < 5
    finally:
        release.set()
        thread.join(10)
    assert errors == []
    # the first writer published; the second wrote nothing; the lock is free again
    assert _rows(current_warehouse(home)) == [1, 2]
    assert snapshot_id(_write(home, 3, wait_seconds=0.5)) == "000003"


def test_a_write_block_that_creates_no_file_publishes_nothing(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(SnapshotError, match="created no warehouse file"):
        with new_snapshot(home):
            pass  # nothing written (e.g. a caller that found nothing to load)
    assert current_warehouse(home) == home / "warehouse.duckdb"  # still readable, unchanged
    assert not (home / "warehouse" / "CURRENT").exists()
