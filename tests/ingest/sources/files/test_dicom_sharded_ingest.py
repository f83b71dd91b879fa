"""``ingest dicom --shard K/N``: N shard runs give what one run gives, each incremental on its
own, each with its own lock, pending transactions and state; the lake's layout is kept."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohortdb.synthetic.dicom import generate_corpus
from cohortdb.warehouse.duckdb import load_duckdb
from ingest.dicom.schema import ERRORS, SOURCES
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, part_files, read_table
from ingest.settings import Settings, resolve_settings
from ingest.sources.files.ingest import IngestSummary, ingest_dicom
from ingest.sources.files.layout import SHARDS_RECORD, check_layout, recorded_shards
from ingest.sources.files.shard import Shard, namespace, shard_of, sources_dir

PUBLIC = ("instances", "elements", "errors")


def _rows(settings: Settings, table: str) -> list[str]:
    """Every row of a lake table but its ``ingested_at``, as sorted text."""
    files = part_files(settings.dicom_lake / table)
    if not files:
        return []
    rows = pa.concat_tables(pq.read_table(f) for f in files)
    if "ingested_at" in rows.column_names:
        rows = rows.drop_columns(["ingested_at"])
    return sorted(repr(sorted(row.items())) for row in rows.to_pylist())


def _lake(settings: Settings) -> dict[str, list[str]]:
    return {table: _rows(settings, table) for table in PUBLIC}


def _source_paths(settings: Settings) -> set[str]:
    paths = set()
    for table in ("instances", "errors"):
        for f in part_files(settings.dicom_lake / table):
            paths |= set(pq.read_table(f, columns=["source_path"])["source_path"].to_pylist())
    return paths


def _ingest_shards(settings: Settings, paths: list[Path], count: int) -> list[IngestSummary]:
    """Shards 1..``count`` of ``count``, one after the other."""
    shards = [Shard(k, count) for k in range(1, count + 1)]
    return [ingest_dicom(settings, paths, workers=2, shard=shard) for shard in shards]


def _unsharded(tmp_path: Path, paths: list[Path]) -> Settings:
    """A fresh warehouse holding one unsharded run of ``paths``."""
    whole = resolve_settings(tmp_path / "whole")
    ingest_dicom(whole, paths, workers=2)
    return whole


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic .dcm files, zipped series, an unreadable file, a truncated file and a zip
    with a non-DICOM member (tests only read it)."""
    root = tmp_path_factory.mktemp("mixed")
    files = generate_corpus(root / "dcm", n_crdx=24, n_ct_series=1, ct_slices=6, n_mr_series=1,
                            mr_slices=4, seed=5, workers=1)
    generate_corpus(root / "zips", n_crdx=4, n_ct_series=1, ct_slices=5, n_mr_series=1, mr_slices=3,
                    seed=6, zip_series=True, workers=1)
    data = files[0].read_bytes()
    (root / "notes.dcm").write_text("not a DICOM file\n" * 10)
    (root / "cut.dcm").write_bytes(data[:300])
    with zipfile.ZipFile(root / "mixed.zip", "w") as archive:
        archive.writestr("a.dcm", data)
        archive.writestr("readme.txt", "not dicom")
    return root


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """A small corpus of .dcm files the test may change."""
    root = tmp_path / "src"
    generate_corpus(root, n_crdx=16, n_ct_series=1, ct_slices=4, n_mr_series=0, mr_slices=0,
                    seed=7, workers=1)
    return root


def test_three_shards_together_equal_one_unsharded_run(tmp_path: Path, mixed: Path) -> None:
    sharded = resolve_settings(tmp_path / "sharded")
    summaries = _ingest_shards(sharded, [mixed], 3)
    whole = resolve_settings(tmp_path / "whole")
    one = ingest_dicom(whole, [mixed], workers=2)

    assert all(s.n_sources > 0 for s in summaries), "a shard without sources tests nothing"
    assert sum(s.n_sources for s in summaries) == one.n_sources
    assert sum(s.n_errors for s in summaries) == one.n_errors >= 3
    assert _lake(sharded) == _lake(whole)
    assert recorded_shards(sharded) == 3 and recorded_shards(whole) is None
    zipped = [r for r in _rows(sharded, "instances") if "'source_member', '" in r and ".zip'" in r]
    assert len(zipped) > 10

    for k in (1, 2, 3):
        state = read_table(sources_dir(sharded, Shard(k, 3)), SOURCES)
        assert state.num_rows == summaries[k - 1].n_sources
        assert {shard_of(path, 3) for path in state["source_path"].to_pylist()} == {k}
        for part in set(state["part"].to_pylist()):  # a zip's members sit with its archive
            for table in ("instances", "errors"):
                rows = pq.read_table(sharded.dicom_lake / table / f"{part}.parquet")
                assert {shard_of(path, 3) for path in rows["source_path"].to_pylist()} <= {k}


def _pick(paths: list[Path], shard: Shard) -> list[Path]:
    return [p for p in sorted(paths) if shard_of(str(p), shard.count) == shard.index]


def test_each_shard_is_incremental_and_touches_only_its_own(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    first, second = _ingest_shards(settings, [corpus], 2)
    files = list(corpus.rglob("*.dcm"))
    mine, theirs = _pick(files, Shard(1, 2)), _pick(files, Shard(2, 2))
    assert len(mine) >= 3 and theirs

    later = time.time_ns() + 5_000_000_000
    os.utime(mine[0], ns=(later, later))  # changed
    mine[1].unlink()  # vanished (shard 1)
    theirs[0].unlink()  # vanished (shard 2)
    names = (corpus / f"new{i}.dcm" for i in range(100))
    new = next(path for path in names if shard_of(str(path), 2) == 1)
    shutil.copy(mine[2], new)
    theirs_parts = set(read_table(sources_dir(settings, Shard(2, 2)), SOURCES)["part"].to_pylist())
    theirs_files = {path: path.stat().st_mtime_ns for table in PUBLIC
                    for path in part_files(settings.dicom_lake / table)
                    if path.stem in theirs_parts}

    again = ingest_dicom(settings, [corpus], workers=2, shard=Shard(1, 2))
    assert (again.n_read, again.n_removed, again.n_unchanged) == (2, 1, first.n_sources - 2)
    assert str(theirs[0]) in _source_paths(settings)  # not this shard's to remove
    assert str(mine[1]) not in _source_paths(settings)
    assert {path: path.stat().st_mtime_ns for path in theirs_files} == theirs_files  # untouched

    other = ingest_dicom(settings, [corpus], workers=2, shard=Shard(2, 2))
    assert (other.n_read, other.n_removed, other.n_unchanged) == (0, 1, second.n_sources - 1)
    assert str(theirs[0]) not in _source_paths(settings)
    assert ingest_dicom(settings, [corpus], workers=2, shard=Shard(1, 2)).n_read == 0
    assert _lake(settings) == _lake(_unsharded(tmp_path, [corpus]))


def test_a_shard_recovers_only_its_own_and_load_recovers_all(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    _ingest_shards(settings, [corpus], 2)
    lake, errors_dir = settings.lake_dir, settings.dicom_lake / "errors"
    row = pa.table({"source_path": ["/x.dcm"], "source_member": [None], "error_type": ["Test"], "severity": ["error"],
                    "message": ["staged by a killed shard"], "ingested_at": [None]}, schema=ERRORS)
    committed = Transaction(lake, namespace(Shard(1, 2)))
    committed.add(row, errors_dir / "committed.parquet")
    committed.write_journal()  # as if shard 1 was killed right after its journal was written
    uncommitted = Transaction(lake, namespace(Shard(2, 2)))
    uncommitted.add(row, errors_dir / "uncommitted.parquet")  # as if shard 2 was killed staging
    assert committed.staging.parent.name == "pending-dicom-1-of-2"

    ingest_dicom(settings, [corpus], workers=1, shard=Shard(2, 2))
    assert not uncommitted.staging.exists()
    assert committed.staging.exists() and not (errors_dir / "committed.parquet").exists()

    counts = load_duckdb(settings)
    assert not committed.staging.exists() and (errors_dir / "committed.parquet").exists()
    assert counts["dicom_errors"] == 1
    assert not (errors_dir / "uncommitted.parquet").exists()


def test_a_killed_shard_is_completed_by_its_next_run(tmp_path: Path) -> None:
    source = tmp_path / "many"
    # 480 files, ≈240 in shard 1; 1 worker: batches of ≈60 (4 commits)
    files = generate_corpus(source, n_crdx=400, n_ct_series=1, ct_slices=40, n_mr_series=1,
                            mr_slices=40, seed=9)
    settings = resolve_settings(tmp_path / "w")
    process = _cli("--warehouse", str(settings.warehouse_dir), "ingest", "dicom", "--workers", "1",
                   "--shard", "1/2", str(source))
    state = sources_dir(settings, Shard(1, 2))
    deadline = time.monotonic() + 60
    while not part_files(state) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.kill()
    process.communicate(timeout=30)
    committed = read_table(state, SOURCES).num_rows
    mine = len(_pick(files, Shard(1, 2)))
    assert 0 < committed < mine, "killed too early or too late to test"

    assert ingest_dicom(settings, [source], workers=2, shard=Shard(2, 2)).n_read > 0
    again = ingest_dicom(settings, [source], workers=2, shard=Shard(1, 2))
    assert (again.n_read, again.n_unchanged) == (mine - committed, committed)
    assert _lake(settings) == _lake(_unsharded(tmp_path, [source]))


def test_a_held_shard_lock_blocks_only_that_shard_and_load(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    with LakeLock(settings.lake_dir, namespace(Shard(1, 2))):
        with pytest.raises(UserError, match="dicom-1-of-2"):
            ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 2))
        assert ingest_dicom(settings, [corpus], workers=1, shard=Shard(2, 2)).n_read > 0
        with pytest.raises(UserError, match="dicom-1-of-2"):
            load_duckdb(settings)
    assert ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 2)).n_read > 0
    assert load_duckdb(settings)["dicom_instances"] > 0


def _cli(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "COLUMNS": "200", "TERMINAL_WIDTH": "200"}
    return subprocess.Popen([sys.executable, "-m", "cohortdb", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_two_shard_processes_run_at_the_same_time_on_a_fresh_lake(tmp_path: Path) -> None:
    source = tmp_path / "src"
    generate_corpus(source, n_crdx=80, n_ct_series=2, ct_slices=20, n_mr_series=1, mr_slices=10,
                    seed=8)
    warehouse = str(tmp_path / "w")
    processes = [_cli("--warehouse", warehouse, "ingest", "dicom", "--workers", "1",
                      "--shard", f"{k}/2", str(source)) for k in (1, 2)]
    outcomes = [process.communicate(timeout=300) for process in processes]
    for process, (_, stderr) in zip(processes, outcomes, strict=True):
        assert process.returncode == 0, stderr
    settings = resolve_settings(warehouse)
    assert recorded_shards(settings) == 2
    assert _lake(settings) == _lake(_unsharded(tmp_path, [source]))


def _waits_for_a_lock(pid: int) -> bool:
    """Whether process ``pid`` is blocked in ``flock`` (``->`` lines of /proc/locks)."""
    return any(line.split()[2:6] == ["FLOCK", "ADVISORY", "WRITE", str(pid)]
               for line in Path("/proc/locks").read_text().splitlines() if " -> " in line)


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks")
def test_a_first_sharded_run_waits_for_the_unsharded_lock(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    with LakeLock(settings.lake_dir):  # e.g. another shard recording the layout, or a load
        process = _cli("--warehouse", str(settings.warehouse_dir), "ingest", "dicom",
                       "--workers", "1", "--shard", "2/2", str(corpus))
        deadline = time.monotonic() + 120
        while process.poll() is None and time.monotonic() < deadline:
            if _waits_for_a_lock(process.pid):
                break
            time.sleep(0.01)
        assert process.poll() is None, process.communicate()[1]
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert recorded_shards(settings) == 2


def test_another_layout_is_refused_and_full_starts_afresh(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    _ingest_shards(settings, [corpus], 2)
    before = _lake(settings)
    with pytest.raises(UserError, match=r"in 2 shards: run with --shard K/2, or add --full"):
        ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 3))
    with pytest.raises(UserError, match=r"in 2 shards: .* again without --shard"):
        ingest_dicom(settings, [corpus], workers=1)
    assert _lake(settings) == before and recorded_shards(settings) == 2
    assert not (settings.state_dir / "lock-dicom-1-of-3").exists()  # refused before walking
    # refused again under the locks (for a run that walked before the layout changed)
    with pytest.raises(UserError, match="--full"):
        check_layout(settings, Shard(1, 3), full=False)
    assert recorded_shards(settings) == 2

    old_shard_at_work = LakeLock(settings.lake_dir, namespace(Shard(2, 2)))
    with old_shard_at_work, pytest.raises(UserError, match="dicom-2-of-2"):
        ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 3), full=True)
    assert _lake(settings) == before and recorded_shards(settings) == 2

    ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 3), full=True)
    assert recorded_shards(settings) == 3
    assert {shard_of(path, 3) for path in _source_paths(settings)} == {1}  # the old rows dropped
    assert not any(sources_dir(settings, Shard(k, 2)).exists() for k in (1, 2))
    for k in (2, 3):
        ingest_dicom(settings, [corpus], workers=1, shard=Shard(k, 3))
    whole = _lake(_unsharded(tmp_path, [corpus]))
    assert _lake(settings) == whole

    ingest_dicom(settings, [corpus], workers=1, full=True)  # back to unsharded
    assert recorded_shards(settings) is None and not (settings.state_dir / SHARDS_RECORD).exists()
    assert _lake(settings) == whole
    assert ingest_dicom(settings, [corpus], workers=1).n_read == 0


def test_a_sharded_run_on_an_unsharded_lake_needs_full(tmp_path: Path, corpus: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    ingest_dicom(settings, [corpus], workers=1)
    before = _lake(settings)
    refusal = r"without --shard: run without --shard, or add --full .* in 2 shards"
    with pytest.raises(UserError, match=refusal):
        ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 2))
    assert _lake(settings) == before and recorded_shards(settings) is None
    ingest_dicom(settings, [corpus], workers=1, shard=Shard(2, 2), full=True)
    assert recorded_shards(settings) == 2 and not part_files(sources_dir(settings, None))
    ingest_dicom(settings, [corpus], workers=1, shard=Shard(1, 2))
    assert _lake(settings) == before


def test_cli_help_and_one_line_errors(tmp_path: Path, corpus: Path) -> None:
    help_text, _ = _cli("ingest", "dicom", "--help").communicate(timeout=60)
    assert "--shard" in help_text and "K/N" in help_text
    assert "Read only shard K (from 1) of N" in help_text
    assert "Processes (default: every core)." in help_text
    warehouse = str(tmp_path / "w")
    for bad in ("0/2", "3/2", "two", "1/0"):
        process = _cli("--warehouse", warehouse, "ingest", "dicom", "--shard", bad, str(corpus))
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 2, stderr
        assert stderr.strip().count("\n") == 0 and "--shard" in stderr and "Traceback" not in stderr
    process = _cli("--warehouse", warehouse, "ingest", "dicom", "--workers", "1",
                   "--shard", "1/2", str(corpus))
    assert process.communicate(timeout=120) and process.returncode == 0
    process = _cli("--warehouse", warehouse, "ingest", "dicom", "--shard", "1/4", str(corpus))
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 2 and stderr.strip().count("\n") == 0 and "--full" in stderr
