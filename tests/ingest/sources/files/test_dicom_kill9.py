"""kill -9 of `cohortdb ingest dicom` at seeded random moments, first runs and ``--full`` re-runs:
the lake right after each kill holds every source at most once (after ``--full``: every source
exactly once, old or new rows), and the next run completes it to what an uninterrupted run gives."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cohortdb.synthetic.dicom import generate_corpus
from ingest.lake import part_files, recover
from ingest.settings import Settings, resolve_settings

ROOT = Path(__file__).resolve().parents[4]
KILLS = 5


def _sources(settings: Settings) -> Counter[str]:
    """How many times the lake (its interrupted transaction completed or undone) holds each source."""
    recover(settings.lake_dir)
    seen: Counter[str] = Counter()
    for table in ("instances", "errors"):
        files = part_files(settings.dicom_lake / table)
        if files:
            rows = pa.concat_tables(pq.read_table(f, columns=["source_path"]) for f in files)
            seen.update(rows["source_path"].to_pylist())
    return seen


def _run(settings: Settings, corpus: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), "ingest", "dicom",
         "--workers", "2", *extra, str(corpus)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # the workers die with it
    )


def _kill_after(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """SIGKILL the run's process group after ``seconds``; whether it was still running."""
    try:
        process.communicate(timeout=seconds)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        return True


def _complete(process: subprocess.Popen[bytes]) -> None:
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("kill9")
    generate_corpus(out, n_crdx=1200, n_ct_series=4, ct_slices=50, n_mr_series=0, workers=2)
    return out


def test_kill_9_at_random_moments_loses_and_doubles_nothing(tmp_path: Path, corpus: Path) -> None:
    clean = resolve_settings(tmp_path / "clean")
    started = time.monotonic()
    _complete(_run(clean, corpus))  # how long a whole run takes here, now
    duration = time.monotonic() - started
    expected = _sources(clean)
    assert set(expected.values()) == {1} and len(expected) >= 1400

    rng = random.Random(11)
    kills = {"first": 0, "full": 0}
    for attempt in range(3 * KILLS):  # a kill drawn after the run ended is not counted: draw again
        if min(kills.values()) >= KILLS:
            break
        first = resolve_settings(tmp_path / f"first{attempt}")
        if _kill_after(_run(first, corpus), rng.uniform(0.3 * duration, duration)):
            kills["first"] += 1
        partial = _sources(first)
        print(f"first run killed: {len(partial)} of {len(expected)} sources committed")
        assert set(partial.values()) <= {1} and set(partial) <= set(expected)
        _complete(_run(first, corpus))
        assert _sources(first) == expected

        if _kill_after(_run(first, corpus, "--full"), rng.uniform(0.3 * duration, duration)):
            kills["full"] += 1
        print(f"--full killed: {len(_sources(first))} of {len(expected)} sources in the lake")
        assert _sources(first) == expected  # every source once, old rows or new, at any moment
        _complete(_run(first, corpus))
        assert _sources(first) == expected
    assert min(kills.values()) >= KILLS, kills
