"""Incremental runs and crash safety: no duplicate, no lost row, the lake always readable."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.lake import Transaction, part_files, recover
from ingest.settings import Settings, resolve_settings
from ingest.sources.files import ingest as dicom_ingest
from ingest.sources.files.ingest import ingest_dicom


def _table(settings: Settings, name: str) -> pa.Table:
    files = part_files(settings.dicom_lake / name)
    return pa.concat_tables(pq.read_table(f) for f in files) if files else pa.table({})


def _snapshot(settings: Settings) -> tuple[list, list, list]:
    """Content of the lake without run-dependent columns, sorted."""
    instances = sorted((r["file_id"], r["source_path"], r["sop_instance_uid"], r["n_elements"])
                       for r in _table(settings, "instances").to_pylist())
    elements = _table(settings, "elements")
    element_keys = sorted(zip(elements["file_id"].to_pylist(), elements["tag_path"].to_pylist(),
                              elements["value_text"].to_pylist(), strict=True)) if elements.num_rows else []
    errors = sorted((r["source_path"], r["error_type"]) for r in _table(settings, "errors").to_pylist())
    return instances, element_keys, errors


@pytest.fixture
def small_corpus(tmp_path: Path, corpus_files: list[Path]) -> Path:
    root = tmp_path / "src"
    (root / "sub").mkdir(parents=True)
    for index, path in enumerate(corpus_files[:60]):
        shutil.copy(path, root / ("sub" if index % 2 else "") / f"{index:03d}_{path.name}")
    return root


def test_rerun_skips_unchanged_and_rereads_changed(settings: Settings, small_corpus: Path) -> None:
    first = ingest_dicom(settings, [small_corpus], workers=2)
    before = _snapshot(settings)
    again = ingest_dicom(settings, [small_corpus], workers=2)
    assert (again.n_read, again.n_unchanged, again.n_instances) == (0, first.n_sources, 0)
    assert _snapshot(settings) == before

    changed = sorted(small_corpus.glob("*.dcm"))[0]
    os.utime(changed, ns=(time.time_ns(), time.time_ns()))
    third = ingest_dicom(settings, [small_corpus], workers=2)
    assert third.n_read == 1
    assert _snapshot(settings) == before  # same content, re-read once, no duplicate

    full = ingest_dicom(settings, [small_corpus], workers=2, full=True)
    assert full.n_read == first.n_sources
    assert _snapshot(settings) == before


def test_vanished_sources_are_removed_only_under_the_given_roots(
    settings: Settings, small_corpus: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(next(small_corpus.glob("*.dcm")), other / "kept.dcm")
    ingest_dicom(settings, [small_corpus], workers=1)
    ingest_dicom(settings, [other], workers=1)
    shutil.rmtree(small_corpus / "sub")
    summary = ingest_dicom(settings, [small_corpus], workers=1)
    assert summary.n_removed > 0
    paths = {r["source_path"] for r in _table(settings, "instances").to_pylist()}
    paths |= {r["source_path"] for r in _table(settings, "errors").to_pylist()}
    assert not any("/sub/" in p for p in paths)
    assert str(other / "kept.dcm") in paths
    fresh = resolve_settings(tmp_path / "fresh")
    ingest_dicom(fresh, [small_corpus, other], workers=1)
    assert _snapshot(settings) == _snapshot(fresh)


@pytest.mark.parametrize("workers", [1, 2])
def test_changed_and_vanished_sources_of_one_part_in_one_run(
        settings: Settings, small_corpus: Path, tmp_path: Path, workers: int) -> None:
    ingest_dicom(settings, [small_corpus], workers=1)  # one part holds them all
    files = sorted(small_corpus.glob("*.dcm"))
    files[0].unlink()
    shutil.copy(files[2], files[1])  # changed: another instance now
    again = ingest_dicom(settings, [small_corpus], workers=workers)
    assert (again.n_read, again.n_removed) == (1, 1)
    clean = resolve_settings(tmp_path / "clean")
    ingest_dicom(clean, [small_corpus], workers=workers)
    assert _snapshot(settings) == _snapshot(clean)


def test_an_uncommitted_transaction_vanishes_and_a_committed_one_completes(settings: Settings) -> None:
    lake = settings.lake_dir
    target = lake / "t" / "a.parquet"
    half = Transaction(lake)
    half.add(pa.table({"x": [1]}), target)  # staged, never committed
    whole = Transaction(lake)
    whole.add(pa.table({"x": [2]}), lake / "t" / "b.parquet")
    whole.write_journal()  # as if killed right after the journal was written
    assert recover(lake) == 2
    assert [p.name for p in part_files(lake / "t")] == ["b.parquet"]
    assert not (lake / "_state" / "pending").exists() or not any((lake / "_state" / "pending").iterdir())


def test_reading_while_walking_gives_the_rows_of_reading_after_the_walk(
    tmp_path: Path, small_corpus: Path, corpus_files: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first ingest on two workers reads files as the walk finds them (the files given
    directly after it); one worker reads after the walk. Same rows either way."""
    monkeypatch.setattr(dicom_ingest, "MAX_BATCH", 7)  # batches go to the workers during the walk
    for index in range(40):  # enough directories for the walk to be split among the workers
        branch = small_corpus / f"d{index % 7}" / f"e{index}"
        branch.mkdir(parents=True)
        shutil.copy(corpus_files[index], branch / corpus_files[index].name)
    alone = next(p for p in corpus_files[60:] if p.suffix == ".dcm")
    streamed, walked = resolve_settings(tmp_path / "streamed"), resolve_settings(tmp_path / "walked")
    two = ingest_dicom(streamed, [small_corpus, alone], workers=2)
    one = ingest_dicom(walked, [small_corpus, alone], workers=1)
    assert two.n_read == one.n_read == two.n_sources == 101
    assert len(two.batches) > 1
    assert _snapshot(streamed) == _snapshot(walked)
    assert ingest_dicom(streamed, [small_corpus, alone], workers=2).n_read == 0


@pytest.mark.parametrize("workers", [1, 2])
def test_killed_ingest_leaves_a_readable_lake_and_the_next_run_completes_it(
    tmp_path: Path, corpus_files: list[Path], workers: int
) -> None:
    source = tmp_path / "many"
    source.mkdir()
    dicom = [p for p in corpus_files if p.suffix == ".dcm"][:40]
    for copy in range(12):  # ≈480 files in 12 directories → several commits
        (source / f"{copy:02d}").mkdir()
        for index, path in enumerate(dicom):
            shutil.copy(path, source / f"{copy:02d}" / f"{index:03d}_{path.name}")
    killed = resolve_settings(tmp_path / "killed")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[4])}
    process = subprocess.Popen(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(killed.warehouse_dir), "ingest", "dicom",
         "--workers", str(workers), str(source)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not part_files(killed.dicom_lake / "instances") and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    committed = _snapshot(killed)  # readable right after the kill
    assert committed[0], "the first batch should have been committed before the kill"
    assert len(committed[0]) + len(committed[2]) < len(list(source.glob("*/*"))), "killed too late to test"

    ingest_dicom(killed, [source], workers=2)
    clean = resolve_settings(tmp_path / "clean")
    ingest_dicom(clean, [source], workers=2)
    assert _snapshot(killed) == _snapshot(clean)
