"""``cohortdb ingest dicom``: sources → lake, incrementally, on every core.

A run (1) walks the given paths, (2) compares each file's size and mtime with
the lake state, (3) commits one transaction removing the rows of changed and
vanished sources, then (4) reads new and changed sources in batches, each
batch committed on its own. A run killed at any point leaves every committed
batch in place and nothing else; the next run reads only what is missing.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.dicom.batch import TABLES, BatchResult, process_batch
from ingest.dicom.read import Source, walk_sources
from ingest.dicom.schema import SOURCES
from ingest.lake import LakeLock, Transaction, new_part_id, read_table
from ingest.settings import Settings

MAX_BATCH = 250
"""Sources per batch (a batch is one set of part files and one commit)."""


@dataclass
class IngestSummary:
    """Counts of one run; ``seconds`` is wall time; RSS in MiB (peak of any worker)."""

    n_sources: int = 0
    n_read: int = 0
    n_unchanged: int = 0
    n_removed: int = 0
    n_instances: int = 0
    n_errors: int = 0
    n_elements: int = 0
    n_fast: int = 0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    batches: list[BatchResult] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.n_instances} instances, {self.n_errors} errors "
            f"({self.n_read} sources read, {self.n_unchanged} unchanged, "
            f"{self.n_removed} removed, {self.n_elements} elements) in {self.seconds:.1f} s"
        )


def _table_dir(settings: Settings, table: str) -> Path:
    if table == "sources":
        return settings.state_dir / "dicom_sources"
    return settings.dicom_lake / table


def _under(path: str, roots: list[str]) -> bool:
    return any(path == root or path.startswith(root.rstrip(os.sep) + os.sep) for root in roots)


def _remove_sources(settings: Settings, state: pa.Table, doomed: set[str]) -> int:
    """One transaction rewriting the parts that hold rows of ``doomed`` sources without them."""
    if not doomed:
        return 0
    doomed_array = pa.array(sorted(doomed))
    hit = pc.is_in(state["source_path"], doomed_array)
    parts = sorted(set(state.filter(hit)["part"].to_pylist()))
    tx = Transaction(settings.lake_dir)
    for part in parts:
        files = {t: _table_dir(settings, t) / f"{part}.parquet" for t in TABLES}
        tables = {t: pq.read_table(path) for t, path in files.items()}
        instances = tables["instances"]
        gone_ids = instances.filter(pc.is_in(instances["source_path"], doomed_array))["file_id"]
        for table, rows in tables.items():
            column, banned = ("file_id", gone_ids) if table == "elements" else ("source_path", doomed_array)
            tables[table] = rows.filter(pc.invert(pc.is_in(rows[column], banned)))
        if tables["sources"].num_rows:
            new_part = new_part_id()
            sources = tables["sources"]
            tables["sources"] = sources.set_column(
                sources.schema.get_field_index("part"), "part", pa.array([new_part] * sources.num_rows)
            )
            for table, rows in tables.items():
                tx.add(rows, _table_dir(settings, table) / f"{new_part}.parquet")
        tx.delete(files.values())
    tx.commit()
    return len(doomed)


def _batches(sources: list[Source], workers: int) -> list[list[Source]]:
    size = max(1, min(MAX_BATCH, -(-len(sources) // (workers * 4))))
    return [sources[i : i + size] for i in range(0, len(sources), size)]


def _run_batch(args: tuple[Path, str, list[Source], dt.datetime]) -> BatchResult:
    return process_batch(*args)


def _close_inherited(fd: int) -> None:
    # Forked workers must not keep the lake lock alive if the parent dies.
    try:
        os.close(fd)
    except OSError:
        pass


def _commit_batch(settings: Settings, tx: Transaction) -> None:
    for table in TABLES:
        tx.add_file(tx.stage_path(f"{table}.parquet"), _table_dir(settings, table) / f"{tx.txid}.parquet")
    tx.commit()


def ingest_dicom(
    settings: Settings,
    paths: Iterable[str | os.PathLike[str]],
    *,
    full: bool = False,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest DICOM files, directories and zip archives into the lake.

    Args:
        settings: where the lake is.
        paths: files, directories (walked recursively) and zip archives.
        full: re-read every source, even unchanged ones.
        workers: processes to use (default: every core).
        on_progress: called with (sources done, sources to read) after each batch.

    Raises:
        UserError: a path does not exist, or another process writes to the lake.
    """
    started = time.perf_counter()
    workers = workers or os.cpu_count() or 1
    sources, roots = walk_sources(list(paths))
    summary = IngestSummary(n_sources=len(sources))
    with LakeLock(settings.lake_dir) as lock:
        state = read_table(_table_dir(settings, "sources"), SOURCES)
        known = {
            path: (size, mtime)
            for path, size, mtime in zip(
                state["source_path"].to_pylist(), state["file_size"].to_pylist(),
                state["file_mtime_ns"].to_pylist(), strict=True,
            )
        }
        present = {s.path for s in sources}
        to_read = [s for s in sources if full or known.get(s.path) != (s.size, s.mtime_ns)]
        doomed = {p for p in known if _under(p, roots) and p not in present}
        doomed |= {s.path for s in to_read if s.path in known}
        summary.n_removed = len(doomed - present)
        summary.n_unchanged = len(sources) - len(to_read)
        _remove_sources(settings, state, doomed)

        ingested_at = dt.datetime.now(dt.UTC)
        batches = _batches(to_read, workers)
        jobs = []
        for batch in batches:
            tx = Transaction(settings.lake_dir)
            jobs.append((tx, (tx.staging, tx.txid, batch, ingested_at)))
        done = 0

        def finish(tx: Transaction, result: BatchResult) -> None:
            nonlocal done
            _commit_batch(settings, tx)
            summary.batches.append(result)
            done += result.n_sources
            if on_progress:
                on_progress(done, len(to_read))

        if workers > 1 and len(batches) > 1:
            context = multiprocessing.get_context("fork")
            with context.Pool(workers, initializer=_close_inherited, initargs=(lock.fd,)) as pool:
                by_part = {tx.txid: tx for tx, _ in jobs}
                for result in pool.imap_unordered(_run_batch, [args for _, args in jobs]):
                    finish(by_part[result.part], result)
        else:
            for tx, args in jobs:
                finish(tx, _run_batch(args))

    for result in summary.batches:
        summary.n_read += result.n_sources
        summary.n_instances += result.n_instances
        summary.n_errors += result.n_errors
        summary.n_elements += result.n_elements
        summary.n_fast += result.n_fast
        summary.peak_rss_mib = max(summary.peak_rss_mib, result.peak_rss_mib)
    summary.seconds = time.perf_counter() - started
    return summary
