"""The sources state: part files are the truth, the snapshot a cache that never loses rows."""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.dicom.schema import SOURCES
from ingest.lake import part_files, read_table, write_parquet
from ingest.settings import Settings
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.shard import sources_dir
from ingest.sources.files.state import read_state, save_snapshot, snapshot_path


def _rows(table: pa.Table) -> list[tuple]:
    return sorted(zip(*(table[name].to_pylist() for name in SOURCES.names), strict=True))


def _part(directory: Path, part: str, paths: list[str]) -> None:
    rows = [{"source_path": p, "file_size": 1, "file_mtime_ns": 2, "part": part} for p in paths]
    write_parquet(pa.Table.from_pylist(rows, schema=SOURCES), directory / f"{part}.parquet")


@pytest.fixture
def ingested(settings: Settings, corpus_files: list[Path], tmp_path: Path) -> Path:
    source = tmp_path / "src"
    source.mkdir()
    for index, path in enumerate(corpus_files[:30]):
        shutil.copy(path, source / f"{index:02d}_{path.name}")
    ingest_dicom(settings, [source], workers=2)
    return sources_dir(settings, None)


def test_a_run_leaves_an_up_to_date_snapshot_that_is_read_instead_of_the_parts(ingested: Path) -> None:
    state, stale = read_state(ingested)
    assert snapshot_path(ingested).exists() and not stale
    assert _rows(state) == _rows(read_table(ingested, SOURCES)) and state.num_rows == 30
    covered = part_files(ingested)[0]
    covered.write_bytes(b"not parquet")  # the snapshot holds its rows: it is not read again
    assert _rows(read_state(ingested)[0]) == _rows(state)


def test_parts_added_and_removed_since_the_snapshot_are_seen(ingested: Path) -> None:
    before, _ = read_state(ingested)
    gone = part_files(ingested)[0]
    n_gone = before["part"].to_pylist().count(gone.stem)
    gone.unlink()
    _part(ingested, "added", ["/new/a.dcm", "/new/b.dcm"])
    now, stale = read_state(ingested)
    assert stale
    assert _rows(now) == _rows(read_table(ingested, SOURCES))
    assert now.num_rows == before.num_rows - n_gone + 2
    save_snapshot(ingested, now, stale)
    assert read_state(ingested)[1] is False


@pytest.mark.parametrize("damage", [b"", b"garbage", None])
def test_a_missing_or_damaged_snapshot_costs_a_full_read_not_rows(ingested: Path, damage: bytes | None) -> None:
    snapshot = snapshot_path(ingested)
    if damage is None:
        snapshot.unlink()
    else:
        snapshot.write_bytes(damage)
    state, stale = read_state(ingested)
    assert stale
    assert _rows(state) == _rows(read_table(ingested, SOURCES))
    save_snapshot(ingested, state, stale)
    assert read_state(ingested)[1] is False


def test_an_unchanged_run_does_not_rewrite_the_snapshot(settings: Settings, ingested: Path, tmp_path: Path) -> None:
    written = snapshot_path(ingested).stat().st_mtime_ns
    ingest_dicom(settings, [tmp_path / "src"], workers=2)
    assert snapshot_path(ingested).stat().st_mtime_ns == written
