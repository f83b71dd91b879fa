"""Faults of a run (issue 11): the same source given twice, dead workers, FIFOs, Ctrl-C."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ingest.lake import part_files
from ingest.settings import Settings, resolve_settings
from ingest.sources.files.ingest import KILL_WORKER_ON, ingest_dicom
from ingest.sources.files.shard import Shard
from ingest.sources.files.walk import KILL_WALKER_ON

ROOT = Path(__file__).resolve().parents[4]


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


def _sigint_default() -> None:
    """In the child: Ctrl-C as a terminal gives it, whatever this process does with SIGINT (a shell
    starts background jobs with SIGINT ignored, and an ignored signal is inherited through exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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


def _cohortdb(settings: Settings, *args: str, env: dict[str, str] | None = None,
              timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``cohortdb --warehouse W ARGS`` in a subprocess of this worktree's code; fails (not hangs) after ``timeout``."""
    environment = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), *args],
                          env=environment, capture_output=True, text=True, timeout=timeout, check=False)


def test_a_killed_worker_fails_its_batch_and_the_run_goes_on(settings: Settings, tree: Path) -> None:
    doomed = sorted(tree.glob("sub/d3/*.dcm"))[0]
    done = _cohortdb(settings, "ingest", "dicom", "--workers", "2", str(tree),
                     env={KILL_WORKER_ON: doomed.name})
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    errors = {r["source_path"]: r for r in _rows(settings, "errors")}
    assert errors[str(doomed)]["error_type"] == "worker_died"
    assert "died" in errors[str(doomed)]["message"]
    died = {path for path, r in errors.items() if r["error_type"] == "worker_died"}
    ingested = {r["source_path"] for r in _rows(settings, "instances")}
    n_files = len([p for p in tree.rglob("*") if p.is_file()])
    assert len(ingested) + len(errors) == n_files and died and len(ingested) > 0
    _assert_unique(settings)
    again = _cohortdb(settings, "ingest", "dicom", "--workers", "2", "--full", str(tree))
    assert again.returncode == 0, again.stderr
    assert not {r["source_path"] for r in _rows(settings, "errors")} & died
    _assert_unique(settings)


def test_a_walk_worker_killed_never_hangs_the_run_and_loses_nothing(
        settings: Settings, tmp_path: Path, corpus_files: list[Path]) -> None:
    root = tmp_path / "wide"
    dicom = [p for p in corpus_files if p.suffix == ".dcm"][:40]
    for index, path in enumerate(dicom):  # 40 subtrees: listed by the pool's jobs, not the main process
        where = root / f"s{index:02d}" / ("doomed" if index == 17 else "leaf")
        where.mkdir(parents=True)
        shutil.copy(path, where / path.name)
    kill = {KILL_WALKER_ON: "doomed"}
    first = _cohortdb(settings, "ingest", "dicom", "--workers", "2", str(root), env=kill)
    assert first.returncode == 0, first.stderr
    ingested = {r["source_path"] for r in _rows(settings, "instances")} | {
        r["source_path"] for r in _rows(settings, "errors")}
    assert ingested == {str(p) for p in root.rglob("*.dcm")}
    _assert_unique(settings)
    # the next run stats the remembered directories in the pool: a worker killed there too
    again = _cohortdb(settings, "ingest", "dicom", "--workers", "2", str(root), env=kill)
    assert again.returncode == 0, again.stderr
    assert "0 instances" in again.stdout and "40 unchanged" in again.stdout
    _assert_unique(settings)


def test_fifos_sockets_and_devices_are_never_opened(settings: Settings, tree: Path, tmp_path: Path) -> None:
    specials = tmp_path / "specials"
    specials.mkdir()
    os.mkfifo(specials / "given.fifo")
    os.mkfifo(specials / "target.fifo")
    (tree / "link_to_fifo.dcm").symlink_to(specials / "target.fifo")
    os.mkfifo(tree / "sub" / "plain.fifo")  # in a walked directory: skipped
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(specials / "given.sock"))
        paths = [tree, specials / "given.fifo", specials / "given.sock", Path("/dev/null")]
        done = _cohortdb(settings, "ingest", "dicom", "--workers", "2", *map(str, paths))
        assert done.returncode == 0, done.stderr
        single = resolve_settings(tmp_path / "single")
        alone = _cohortdb(single, "ingest", "dicom", "--workers", "1", str(specials / "given.fifo"),
                          str(tree / "link_to_fifo.dcm"))
        assert alone.returncode == 0, alone.stderr
    assert {r["error_type"] for r in _rows(single, "errors")} == {"not_a_file"}
    errors = {r["source_path"]: r for r in _rows(settings, "errors")}
    for path in (specials / "given.fifo", tree / "link_to_fifo.dcm", specials / "given.sock", Path("/dev/null")):
        assert errors[str(path)]["error_type"] == "not_a_file", path
    assert "FIFO" in errors[str(specials / "given.fifo")]["message"]
    assert str(tree / "sub" / "plain.fifo") not in errors


def _interrupt(settings: Settings, corpus: Path) -> tuple[int | None, str]:
    """Run ``ingest dicom corpus``, send SIGINT to its process group (as Ctrl-C does) once a new
    batch is committed; its exit code and stderr."""
    before = set(part_files(settings.dicom_lake / "instances"))
    process = subprocess.Popen(  # in its own process group, which Ctrl-C signals as a whole
        [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), "ingest", "dicom",
         "--workers", "2", str(corpus)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
        preexec_fn=_sigint_default,
    )
    try:
        deadline = time.monotonic() + 60
        while set(part_files(settings.dicom_lake / "instances")) <= before and time.monotonic() < deadline:
            time.sleep(0.005)
        os.killpg(process.pid, signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode, stderr


def test_ctrl_c_stops_the_run_with_one_line_and_the_next_run_completes_it(tmp_path: Path) -> None:
    from cohortdb.synthetic.dicom import generate_corpus

    corpus = tmp_path / "corpus"
    files = generate_corpus(corpus, n_crdx=4000, n_ct_series=0, n_mr_series=0, workers=2)
    settings = resolve_settings(tmp_path / "warehouse")
    for _ in range(2):  # a first run (read while walking), then an incremental one
        returncode, stderr = _interrupt(settings, corpus)
        assert returncode == 130, stderr
        assert "Traceback" not in stderr
        assert stderr.strip().splitlines() == ["interrupted"], stderr
        _assert_unique(settings)
    n_done = len(_rows(settings, "instances"))
    assert 0 < n_done < len(files), "interrupted too late to test"
    again = _cohortdb(settings, "ingest", "dicom", "--workers", "2", str(corpus))
    assert again.returncode == 0, again.stderr
    assert _assert_unique(settings) == (len(files), 0)
