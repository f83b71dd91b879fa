"""Faults of a run (issue 11): the same source given twice, dead workers, FIFOs, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.lake import part_files
from ingest.settings import Settings, resolve_settings
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.shard import Shard


def _rows(settings: Settings, name: str) -> list[dict]:
    files = part_files(settings.dicom_lake / name)
    return pa.concat_tables(pq.read_table(f) for f in files).to_pylist() if files else []


def _assert_unique(settings: Settings) -> tuple[int, int]:
    instances = [(r["source_path"], r["source_member"]) for r in _rows(settings, "instances")]
    errors = [(r["source_path"], r["source_member"]) for r in _rows(settings, "errors")]
    assert len(instances) == len(set(instances)), "an instance was ingested twice"
    assert len(errors) == len(set(errors)), "an error was recorded twice"
    sources_dirs = [p for p in (settings.lake_dir / "_state").iterdir() if p.name.startswith("dicom_sources")
                    and p.is_dir()]
    state = [r["source_path"] for d in sources_dirs for f in part_files(d) for r in pq.read_table(f).to_pylist()]
    assert len(state) == len(set(state)), "a source was recorded twice in the state"
    return len(instances), len(errors)


@pytest.fixture
def tree(tmp_path: Path, corpus_files: list[Path]) -> Path:
    """Files at 3 levels, in more directories than a parallel walk splits a tree into."""
    root = tmp_path / "src"
    dicom = [p for p in corpus_files if p.suffix == ".dcm"][:60]
    for index, path in enumerate(dicom):
        where = root / ("" if index % 3 == 0 else "sub" if index % 3 == 1 else "sub/deeper") / f"d{index % 20}"
        where.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, where / f"{index:03d}_{path.name}")
    shutil.copy(dicom[0], root / "top.dcm")
    return root


def _overlapping(root: Path) -> list[list[Path]]:
    one = sorted(root.glob("*.dcm"))[0]
    return [[root, root], [root, root / "sub"], [root / "sub", root], [root, one],
            [one, one, root / "sub"], [root / "sub" / "deeper", root / "sub", root / "sub" / "deeper"]]


@pytest.mark.parametrize("workers", [1, 2])
def test_overlapping_paths_ingest_each_source_once(
    tmp_path: Path, tree: Path, workers: int
) -> None:
    for index, paths in enumerate(_overlapping(tree)):
        settings = resolve_settings(tmp_path / f"wh{index}")
        ingest_dicom(settings, paths, workers=workers)  # fresh: read while walking
        counts = _assert_unique(settings)
        # incremental: new files and a changed one, the same overlapping paths
        shutil.copy(next(tree.glob("*.dcm")), tree / "sub" / f"new{index}.dcm")
        changed = sorted((tree / "sub" / "deeper").glob("*/*.dcm"))[0]
        os.utime(changed, ns=(time.time_ns(), time.time_ns()))
        again = ingest_dicom(settings, paths, workers=workers)
        _assert_unique(settings)
        assert again.n_read >= 1
        full = ingest_dicom(settings, paths, workers=workers, full=True)
        _assert_unique(settings)
        assert full.n_read == full.n_sources
        assert counts[0] > 0


def test_overlapping_paths_in_shards_ingest_each_source_once(
    tmp_path: Path, tree: Path
) -> None:
    for index, paths in enumerate(_overlapping(tree)):
        settings = resolve_settings(tmp_path / f"wh{index}")
        n = 0
        for k in (1, 2):
            n += ingest_dicom(settings, paths, workers=2, shard=Shard(k, 2)).n_read
        _assert_unique(settings)
        for k in (1, 2):
            ingest_dicom(settings, paths, workers=2, shard=Shard(k, 2), full=True)
        _assert_unique(settings)
