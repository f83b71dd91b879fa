"""kill -9 of `cohortdb ingest dicom` (the real CLI, 2 workers) at seeded random moments of first
runs and of ``--full`` re-runs. Right after a kill the lake holds every source at most once (after
a ``--full`` kill: exactly once, old rows or new); the next run exits 0 and leaves what an
uninterrupted run leaves: the same rows in every table, no duplicate instance or state row."""

from __future__ import annotations

import datetime as dt
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from pydicom.data import get_testdata_file

from cohortdb.synthetic.dicom import generate_corpus
from ingest.lake import part_files, recover
from ingest.settings import Settings, resolve_settings
from ingest.sources.files.shard import sources_dir

ROOT = Path(__file__).resolve().parents[2]
KILLS = 5
"""Kills that landed while the run was on, of each kind (first run, ``--full``)."""


@dataclass(frozen=True)
class Lake:
    """What the lake holds, its interrupted transaction completed or undone."""

    sources: Counter[str]
    """Times each source has rows (instances, or errors of severity error)."""
    instances: int
    sop_uids: int
    """Distinct sop_instance_uid of the instances."""
    elements: int
    errors: Counter[str]
    """Error rows by severity."""
    state: Counter[str]
    """Times each source is in the sources state."""
    ingested_at: list[dt.datetime]
    """Of each instance row."""

    def newer(self, than: Lake) -> int:
        """Instance rows ingested after every row of ``than``."""
        return sum(t > max(than.ingested_at) for t in self.ingested_at)

    def counts(self) -> tuple[int, int, int, dict[str, int], int]:
        return self.instances, self.sop_uids, self.elements, dict(self.errors), self.state.total()


def _table(directory: Path, columns: list[str]) -> pa.Table | None:
    files = part_files(directory)
    return pa.concat_tables(pq.read_table(f, columns=columns) for f in files) if files else None


def _lake(settings: Settings) -> Lake:
    recover(settings.lake_dir)
    instances = _table(settings.dicom_lake / "instances", ["source_path", "sop_instance_uid", "ingested_at"])
    errors = _table(settings.dicom_lake / "errors", ["source_path", "severity"])
    elements = _table(settings.dicom_lake / "elements", ["file_id"])
    state = _table(sources_dir(settings, None), ["source_path"])
    sources: Counter[str] = Counter()
    if instances is not None:
        sources.update(instances["source_path"].to_pylist())
    severities: Counter[str] = Counter()
    if errors is not None:
        severities.update(errors["severity"].to_pylist())
        sources.update(errors.filter(pc.equal(errors["severity"], "error"))["source_path"].to_pylist())
    return Lake(
        sources=sources,
        instances=0 if instances is None else instances.num_rows,
        sop_uids=0 if instances is None else len(pc.unique(instances["sop_instance_uid"])),
        elements=0 if elements is None else elements.num_rows,
        errors=severities,
        state=Counter([] if state is None else state["source_path"].to_pylist()),
        ingested_at=[] if instances is None else instances["ingested_at"].to_pylist(),
    )


def _run(settings: Settings, corpus: Path, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), "ingest", "dicom",
         "--workers", "2", *extra, str(corpus)],
        env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group: the workers die with it
    )


def _kill_after(process: subprocess.Popen[bytes], seconds: float) -> float | None:
    """SIGKILL the run's process group after ``seconds``; None if it was still running then,
    else how long it took."""
    started = time.monotonic()
    try:
        process.communicate(timeout=seconds)
        return time.monotonic() - started
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate(timeout=30)
        return None


def _complete(process: subprocess.Popen[bytes]) -> float:
    """Wait for a run; assert it succeeded; its duration (from now, roughly its start)."""
    started = time.monotonic()
    _, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr.decode()
    return time.monotonic() - started


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """500 generated instances, a truncated one (ingested, plus a warning) and a non-DICOM file (an error)."""
    out = tmp_path_factory.mktemp("kill9")
    generate_corpus(out, n_crdx=400, n_ct_series=2, ct_slices=50, n_mr_series=0, workers=2)
    shutil.copy(get_testdata_file("MR_truncated.dcm"), out / "MR_truncated.dcm")
    (out / "notes.txt").write_text("not DICOM")
    return out


def _assert_whole(lake: Lake, expected: Lake) -> None:
    assert lake.sources == expected.sources and lake.state == expected.state
    assert lake.counts() == expected.counts()


def test_kill_9_at_random_moments_of_ingest_loses_and_doubles_nothing(tmp_path: Path, corpus: Path) -> None:
    clean = resolve_settings(tmp_path / "clean")
    (tmp_path / "empty").mkdir()
    # until about then a run only starts (imports, lock): most kills are drawn after it
    startup = _complete(_run(resolve_settings(tmp_path / "none"), tmp_path / "empty"))
    first_seconds = _complete(_run(clean, corpus))
    expected = _lake(clean)
    full_seconds = _complete(_run(clean, corpus, "--full"))
    again = _lake(clean)
    _assert_whole(again, expected)
    assert again.newer(expected) == expected.instances  # --full read every source again
    assert set(expected.sources.values()) == {1} and len(expected.sources) == 502
    assert expected.sop_uids == expected.instances == 501 and expected.errors == {"error": 1, "warning": 1}
    assert set(expected.state.values()) == {1} and len(expected.state) == 502

    rng = random.Random(11)
    outcomes: list[str] = []
    kills = 0
    for attempt in range(4 * KILLS):  # a kill drawn after the run ended is not counted: draw again
        settings = resolve_settings(tmp_path / f"first{attempt}")
        delay = rng.uniform(0.8 * startup, first_seconds)
        ended = _kill_after(_run(settings, corpus), delay)
        killed = ended is None
        first_seconds = min(first_seconds, ended or first_seconds)  # (a busy machine slows some runs)
        partial = _lake(settings)
        outcomes.append(f"first run, {'killed' if killed else 'ended'} at {delay:.2f} s: "
                        f"{len(partial.sources)}/{len(expected.sources)} sources committed")
        assert set(partial.sources.values()) <= {1} and set(partial.sources) <= set(expected.sources)
        assert set(partial.state.values()) <= {1} and partial.sop_uids == partial.instances
        _complete(_run(settings, corpus))
        _assert_whole(_lake(settings), expected)
        if (kills := kills + killed) == KILLS:
            break
    assert kills == KILLS, outcomes

    kills = 0
    for _ in range(4 * KILLS):  # the lake of the last first run, read again and again
        before = _lake(settings)
        delay = rng.uniform(0.8 * startup, full_seconds)
        ended = _kill_after(_run(settings, corpus, "--full"), delay)
        killed = ended is None
        full_seconds = min(full_seconds, ended or full_seconds)
        during = _lake(settings)
        outcomes.append(f"--full, {'killed' if killed else 'ended'} at {delay:.2f} s: "
                        f"{during.newer(before)}/{expected.instances} instances' rows new")
        _assert_whole(during, expected)  # every source once, its old rows or its new ones
        _complete(_run(settings, corpus))
        _assert_whole(_lake(settings), expected)
        if (kills := kills + killed) == KILLS:
            break
    print("\n".join(outcomes))
    assert kills == KILLS, outcomes
