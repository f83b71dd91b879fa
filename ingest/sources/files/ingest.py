"""``cohortdb ingest dicom``: sources → lake, incrementally, on every core.

A run (1) walks the given paths (reusing the remembered listing of every
directory unchanged since the last committed run, see :mod:`ingest.sources.files.walk`),
(2) compares each file's size and mtime with the lake state, (3) commits one
transaction removing the rows of changed and vanished sources, then (4) reads
new and changed sources in batches, each batch committed on its own. When
nothing under the given paths was read before (a first ingest), files are read
as the walk finds them, not after it. A run killed at any point leaves every
committed batch in place and nothing else; the next run reads only what is missing.
The directory listings are saved once the walk is done, while the batches
are read (they say what is there, the state what was read).

With a ``shard`` (K of N, see :mod:`ingest.sources.files.shard`), a run reads only the
sources of its shard and keeps its own lock, pending transactions, state and
listings, so the N shards of a lake run at the same time without blocking each
other; their part files go to the same tables.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import multiprocessing
import multiprocessing.pool
import os
import queue
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.arrow_setup import skip_pandas_check
from ingest.collector import gc_paused
from ingest.dicom.header import ReadError
from ingest.dicom.parts import BatchParts
from ingest.dicom.schema import SOURCES
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, new_part_id, part_files, write_parquet
from ingest.settings import Settings, make_warehouse_dir
from ingest.sources.files.batch import TABLES, BatchResult, process_batch
from ingest.sources.files.layout import check_layout, layout_conflict
from ingest.sources.files.read import Source
from ingest.sources.files.shard import Shard, in_shard, listings_path, namespace, sources_dir
from ingest.sources.files.state import read_state, save_snapshot
from ingest.sources.files.walk import (
    load_listings,
    save_listings,
    share_listings,
    sources,
    under_mask,
    walk_sources,
)

MAX_BATCH = 1000
"""Sources per batch (a batch is one set of part files and one commit). Worker memory is
bounded by :data:`~ingest.sources.files.batch.ROW_GROUP_ROWS`; fewer, larger batches cost less
(each has its own files, commit and cold caches; bench/ingest_dicom.py measures it)."""


@dataclass
class IngestSummary:
    """Counts of one run; ``seconds`` is wall time; RSS in MiB (peak of any worker)."""

    n_sources: int = 0
    n_read: int = 0
    n_unchanged: int = 0
    n_removed: int = 0
    n_instances: int = 0
    n_errors: int = 0
    """Sources (or zip members) not read: ``dicom_errors`` rows of severity ``error``."""
    n_warnings: int = 0
    """Instances read in part (truncated): ``dicom_errors`` rows of severity ``warning``."""
    n_elements: int = 0
    n_fast: int = 0
    seconds: float = 0.0
    peak_rss_mib: float = 0.0
    batches: list[BatchResult] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.n_instances} instances{f' ({self.n_warnings} truncated)' if self.n_warnings else ''}, "
            f"{self.n_errors} errors "
            f"({self.n_read} sources read, {self.n_unchanged} unchanged, "
            f"{self.n_removed} removed, {self.n_elements} elements) in {self.seconds:.1f} s"
        )


def _table_dir(settings: Settings, table: str, shard: Shard | None) -> Path:
    if table == "sources":
        return sources_dir(settings, shard)
    return settings.dicom_lake / table


def _remove_sources(
    settings: Settings, shard: Shard | None, state: pa.Table, doomed: set[str]
) -> pa.Table:
    """One transaction rewriting the parts that hold rows of ``doomed`` sources without them;
    the ``state`` after it (see :func:`_without_sources`)."""
    if not doomed:
        return state
    tx = Transaction(settings.lake_dir, namespace(shard))
    after = _without_sources(settings, shard, state, doomed, tx)
    tx.commit()
    return after


def _without_sources(
    settings: Settings, shard: Shard | None, state: pa.Table, doomed: set[str], tx: Transaction
) -> pa.Table:
    """Rewrite, in ``tx``, the parts holding rows of ``doomed`` sources without them.

    ``state``: rows of the lake state (:data:`~ingest.dicom.schema.SOURCES`) naming at least the
    doomed sources. Returns ``state`` as it is once ``tx`` commits: the doomed rows gone, the
    others of a rewritten part pointing at its new part.
    """
    doomed_array = pa.array(sorted(doomed), pa.string())
    hit = pc.is_in(state["source_path"], doomed_array)
    parts = sorted(set(state.filter(hit)["part"].to_pylist()))
    renamed: dict[str, str] = {}
    for part in parts:
        files = {t: _table_dir(settings, t, shard) / f"{part}.parquet" for t in TABLES}
        tables = {t: pq.read_table(path) for t, path in files.items()}
        instances = tables["instances"]
        gone_ids = instances.filter(pc.is_in(instances["source_path"], doomed_array))["file_id"]
        for table, rows in tables.items():
            column, banned = ("file_id", gone_ids) if table == "elements" else ("source_path", doomed_array)
            tables[table] = rows.filter(pc.invert(pc.is_in(rows[column], banned)))
        if tables["sources"].num_rows:
            new_part = renamed[part] = new_part_id()
            sources = tables["sources"]
            tables["sources"] = sources.set_column(
                sources.schema.get_field_index("part"), "part", pa.array([new_part] * sources.num_rows)
            )
            for table, rows in tables.items():
                tx.add(rows, _table_dir(settings, table, shard) / f"{new_part}.parquet")
        tx.delete(files.values())
    kept = state.filter(pc.invert(hit))
    if not renamed:
        return kept
    moved = pc.fill_null(pc.take(pa.array(list(renamed.values()), pa.string()),
                                 pc.index_in(kept["part"], value_set=pa.array(list(renamed), pa.string()))),
                         kept["part"])
    return kept.set_column(kept.schema.get_field_index("part"), "part", moved)


def _batches(sources: list[Source], workers: int) -> list[list[Source]]:
    size = max(1, min(MAX_BATCH, -(-len(sources) // (workers * 4))))
    return [sources[i : i + size] for i in range(0, len(sources), size)]


POLL_SECONDS = 0.5
"""How often the main process, waiting for batches, checks that their workers are alive."""
WORKER_PID = "worker.pid"
"""In a batch's staging directory: the pid of the worker reading it (written when it starts)."""
KILL_WORKER_ON = "COHORTDB_TEST_KILL_WORKER_ON"
"""Test hook: a pool worker given a batch holding a source of this file name kills itself
(SIGKILL, as the out-of-memory killer would)."""


def _read_batch(staging: Path, part: str, batch: list[Source], ingested_at: dt.datetime) -> BatchResult:
    """:func:`process_batch` in a pool worker, the worker's pid written first (see :meth:`_Reader.check_workers`)."""
    (staging / WORKER_PID).write_text(str(os.getpid()))
    if (doomed := os.environ.get(KILL_WORKER_ON)) and any(os.path.basename(s.path) == doomed for s in batch):
        os.kill(os.getpid(), signal.SIGKILL)
    return process_batch(staging, part, batch, ingested_at)


def _dead_batch(staging: Path, part: str, batch: list[Source], ingested_at: dt.datetime) -> BatchResult:
    """The parts of a batch whose worker died: a ``worker_died`` error row per source (in the state
    as read, so a source that kills its reader does not kill every run; ``--full`` reads it again)."""
    error = ReadError("worker_died", f"the worker process reading this batch of {len(batch)} sources died "
                      "(killed, perhaps out of memory); touch the file or re-run with --full to read it again")
    parts = BatchParts(staging, ingested_at)
    for source in batch:
        parts.add_error(error, source_path=source.path, member=None)
    counts = parts.close()
    state = [{"source_path": s.path, "file_size": s.size, "file_mtime_ns": s.mtime_ns, "part": part} for s in batch]
    write_parquet(pa.Table.from_pylist(state, schema=SOURCES), staging / "sources.parquet")
    return BatchResult(part, len(batch), counts.n_instances, counts.n_errors, counts.n_elements, counts.n_fast, 0.0)


def _worker_pid(staging: Path) -> int | None:
    """The pid of the worker that started reading the batch staged in ``staging`` (None: not started)."""
    try:
        return int((staging / WORKER_PID).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def _worker_pool(workers: int, remembered: pa.Table) -> Iterator[multiprocessing.pool.Pool | None]:
    """``workers`` forked processes (None for one), forked now: before walking and
    reading the state, so their memory does not grow with the corpus (nor hold the lake lock).
    They inherit the ``remembered`` listings (shared by the fork, not copied).

    The workers ignore SIGINT: Ctrl-C reaches the whole process group, and only this
    process stops the run (the pool is terminated on the way out, nothing half-committed)."""
    if workers <= 1:
        yield None
        return
    context = multiprocessing.get_context("fork")
    main = threading.current_thread() is threading.main_thread()  # (signal handlers are set there only)
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # inherited: no window
    try:
        pool = context.Pool(workers, initializer=_worker_init, initargs=(remembered,))
    finally:
        if main:
            signal.signal(signal.SIGINT, interrupt)
    with pool:
        yield pool


def _worker_init(remembered: pa.Table) -> None:
    """A pool worker's initializer (also of those replacing dead ones): SIGINT ignored, listings shared."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    share_listings(remembered)


def _commit_batch(settings: Settings, shard: Shard | None, tx: Transaction) -> None:
    for table in TABLES:
        target = _table_dir(settings, table, shard) / f"{tx.txid}.parquet"
        tx.add_file(tx.stage_path(f"{table}.parquet"), target)
    tx.commit()


class _Reader:
    """Reads batches of sources (in the pool's workers, or here without a pool) and
    commits each batch as soon as it is read; more can be submitted meanwhile."""

    def __init__(
        self, settings: Settings, shard: Shard | None, pool: multiprocessing.pool.Pool | None, workers: int,
        summary: IngestSummary, on_progress: Callable[[int, int], None] | None,
        stream: Callable[[], bool] = lambda: False,
    ) -> None:
        self.settings = settings
        self.shard = shard
        self.stream = stream
        self.pool = pool
        self.workers = workers
        self.summary = summary
        self.on_progress = on_progress
        self.ingested_at = dt.datetime.now(dt.UTC)
        self.submitted: set[str] = set()
        self._waiting: list[Source] = []
        self._pending: dict[str, Transaction] = {}
        self._batches: dict[str, list[Source]] = {}  # of the pending transactions read in the pool
        self._results: queue.SimpleQueue[BatchResult | BaseException] = queue.SimpleQueue()
        self._done = 0
        self.replacing: pa.Table = SOURCES.empty_table()
        """The state rows of the sources read again: a batch's transaction rewrites their parts without them."""

    def found(self, sources: list[Source]) -> None:
        """:meth:`submit` those of the ``sources`` (found by a walk) that are in the run's shard,
        when it is right to read them before the walk ends (``stream``, asked once)."""
        if not self.stream():
            return
        if self.shard:
            sources = [source for source in sources if self.shard.owns(source.path)]
        self.submit(sources)

    def submit(self, sources: list[Source], *, last: bool = False) -> None:
        """Read ``sources`` (in their order: a walk's lists a directory's files together);
        commit what is read by now. Batches of :data:`MAX_BATCH` are read at once, the
        rest waits for more sources or ``last`` (then split evenly). The last ``workers``
        × ``MAX_BATCH`` always wait: split evenly, the workers finish together."""
        sources = _new_sources(sources, self.submitted)  # a source is read once per run (overlapping paths)
        self._waiting += sources
        if last:
            batches, self._waiting = _batches(self._waiting, self.workers), []
        else:
            n_full = max(0, len(self._waiting) - self.workers * MAX_BATCH) // MAX_BATCH * MAX_BATCH
            batches = [self._waiting[i : i + MAX_BATCH] for i in range(0, n_full, MAX_BATCH)]
            del self._waiting[:n_full]
        for batch in batches:
            tx = Transaction(self.settings.lake_dir, namespace(self.shard))
            self._pending[tx.txid] = tx
            self._batches[tx.txid] = batch
            job = (tx.staging, tx.txid, batch, self.ingested_at)
            if self.pool is None:
                self._commit(process_batch(*job))
            else:
                self.pool.apply_async(
                    _read_batch, job, callback=self._results.put, error_callback=self._results.put
                )
        self.commit_read(wait=False)

    def commit_read(self, *, wait: bool = True) -> None:
        """Commit the batches read by now; with ``wait``, wait for every batch submitted.

        Raises:
            BaseException: what a worker raised (never a bad source: that is an error row).
        """
        while self._pending:
            try:
                result = self._results.get(block=wait, timeout=POLL_SECONDS if wait else None)
            except queue.Empty:
                if not wait:
                    return
                self.check_workers()
                continue
            if isinstance(result, BaseException):
                raise result
            self._commit(result)

    def check_workers(self) -> None:
        """Commit ``worker_died`` error rows for the batches whose worker died (a killed pool
        worker is replaced, but its batch would never be reported)."""
        alive = {process.pid for process in multiprocessing.active_children()}
        dead = [txid for txid, tx in self._pending.items()
                if (pid := _worker_pid(tx.staging)) is not None and pid not in alive]
        if not dead:
            return
        # a worker reports a batch before taking the next: results already sent are not lost
        time.sleep(POLL_SECONDS)
        while True:
            try:
                result = self._results.get(block=False)
            except queue.Empty:
                break
            if isinstance(result, BaseException):
                raise result
            self._commit(result)
        for txid in dead:
            if txid in self._pending:
                self._pending.pop(txid).abort()
                tx = Transaction(self.settings.lake_dir, namespace(self.shard))
                self._pending[tx.txid] = tx
                batch = self._batches[tx.txid] = self._batches.pop(txid)
                self._commit(_dead_batch(tx.staging, tx.txid, batch, self.ingested_at))

    def _commit(self, result: BatchResult) -> None:
        tx = self._pending.pop(result.part)
        batch = self._batches.pop(result.part)
        if self.replacing.num_rows:
            paths = pa.array([source.path for source in batch], pa.string())
            replaced = self.replacing.filter(pc.is_in(self.replacing["source_path"], value_set=paths))
            if replaced.num_rows:
                doomed = set(replaced["source_path"].to_pylist())
                self.replacing = _without_sources(self.settings, self.shard, self.replacing, doomed, tx)
        _commit_batch(self.settings, self.shard, tx)
        self.summary.batches.append(result)
        self._done += result.n_sources
        if self.on_progress:
            self.on_progress(self._done, len(self.submitted))


def _new_sources(sources: list[Source], submitted: set[str]) -> list[Source]:
    """Those of ``sources`` whose path is not in ``submitted``, each once; adds them to ``submitted``."""
    new: list[Source] = []
    for source in sources:
        if source.path not in submitted:
            submitted.add(source.path)
            new.append(source)
    return new


def _unique_roots(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """The absolute ``paths``, each once, in order: ``D D`` walks ``D`` once."""
    return list(dict.fromkeys(os.path.abspath(os.fspath(path)) for path in paths))


def _diff(
    found: pa.Table, state: pa.Table, roots: list[str], full: bool
) -> tuple[pa.Table, set[str], set[str]]:
    """Compare the files ``found`` (:data:`~ingest.sources.files.walk.FOUND`) with the lake ``state``.

    Returns the files to read (new, changed, or all when ``full``; :data:`~ingest.sources.files.walk.FOUND`),
    the paths read before that are read again (their rows go when their batch commits), and the
    paths read before that vanished under ``roots`` (their rows go now).
    """
    at = pc.index_in(found["path"], value_set=state["source_path"])  # null: never read
    same = pc.and_(
        pc.equal(pc.take(state["file_size"], at), found["size"]),
        pc.equal(pc.take(state["file_mtime_ns"], at), found["mtime_ns"]),
    )
    stale = pc.or_(pc.invert(pc.fill_null(same, False)), pa.scalar(full))
    to_read = found.filter(stale)
    reread = found.filter(pc.and_(stale, pc.is_valid(at)))
    vanished: set[str] = set()
    if pc.count(at).as_py() < state.num_rows:  # some source read before was not found (paths are unique)
        gone = state.filter(pc.invert(pc.is_in(state["source_path"], value_set=found["path"])))
        vanished = set(gone.filter(under_mask(gone["source_path"], roots))["source_path"].to_pylist())
    return to_read, set(reread["path"].to_pylist()), vanished


def ingest_dicom(
    settings: Settings,
    paths: Iterable[str | os.PathLike[str]],
    *,
    full: bool = False,
    workers: int | None = None,
    shard: Shard | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> IngestSummary:
    """Ingest DICOM files, directories and zip archives into the lake.

    Args:
        settings: where the lake is.
        paths: files, directories (walked recursively) and zip archives.
        full: re-read every source, even unchanged ones; when the lake was ingested
            in another shard layout, drop every DICOM row first (see :mod:`ingest.sources.files.layout`).
        workers: processes to use (default: every core).
        shard: read only the sources of this shard (K of N, K 1-based); None: all.
        on_progress: called with (sources done, sources to read) after each batch.

    Raises:
        UserError: a path does not exist, another process writes to the lake
            (to this shard of it), or the lake was ingested in another shard layout.
    """
    started = time.perf_counter()
    make_warehouse_dir(settings)
    if not full and (conflict := layout_conflict(settings, shard)):
        raise UserError(conflict)  # early, before the walk; checked again under the lock
    workers = workers or os.cpu_count() or 1
    summary = IngestSummary()
    skip_pandas_check()  # before the workers fork: none of them needs pandas
    remembered = load_listings(listings_path(settings, shard))
    roots = _unique_roots(paths)
    with (
        _worker_pool(workers, remembered) as pool,
        LakeLock(settings.lake_dir, namespace(shard)),
        ThreadPoolExecutor(1) as background,
    ):
        check_layout(settings, shard, full=full)
        state_dir = _table_dir(settings, "sources", shard)
        reading = background.submit(read_state, state_dir)  # during the walk (the workers are busy)

        @functools.cache
        def stream() -> bool:
            """Nothing was read before under these paths: read what the walk finds while it goes on."""
            return not pc.any(under_mask(reading.result()[0]["source_path"], roots)).as_py()

        reader = _Reader(settings, shard, pool, workers, summary, on_progress, stream)
        with gc_paused():  # up to tens of thousands of tuples and lists, no cycles
            walk = walk_sources(roots, pool, None if full else remembered, reader.found if pool else None)
        found = walk.found.filter(in_shard(walk.found["path"], shard)) if shard else walk.found
        summary.n_sources = found.num_rows
        state, stale = reading.result()
        to_read, reread, vanished = _diff(found, state, walk.roots, full)
        summary.n_unchanged, summary.n_removed = summary.n_sources - to_read.num_rows, len(vanished)
        now = _remove_sources(settings, shard, state, vanished)
        # the rows of a source read again go in the transaction of its new rows: never neither, never both
        reader.replacing = now.filter(pc.is_in(now["source_path"], pa.array(sorted(reread), pa.string())))
        if reader.submitted:  # (read while walking)
            submitted = pa.array(list(reader.submitted), pa.string())
            to_read = to_read.filter(pc.invert(pc.is_in(to_read["path"], value_set=submitted)))
        reader.submit(sources(to_read), last=True)
        # listings saved while the workers read: a run that fails now finds the files unread next time
        saving = background.submit(save_listings, listings_path(settings, shard), remembered, walk)
        reader.commit_read()
        saving.result()
        save_snapshot(state_dir, state, stale)

    for result in summary.batches:
        summary.n_read += result.n_sources
        summary.n_instances += result.n_instances
        summary.n_errors += result.n_errors
        summary.n_warnings += result.n_warnings
        summary.n_elements += result.n_elements
        summary.n_fast += result.n_fast
        summary.peak_rss_mib = max(summary.peak_rss_mib, result.peak_rss_mib)
    summary.seconds = time.perf_counter() - started
    return summary


def errors_recorded(
    settings: Settings, paths: Iterable[str | os.PathLike[str]], shard: Shard | None = None
) -> int:
    """The sources (or zip members) under ``paths`` (of ``shard``; None: all) that the lake
    records as not read: ``dicom_errors`` rows of severity ``error``, whichever run wrote them
    (a source that failed and is unchanged since is not read again)."""
    roots = _unique_roots(paths)
    count = 0
    for part in part_files(settings.dicom_lake / "errors"):
        try:
            parquet = pq.ParquetFile(part)
        except FileNotFoundError:  # rewritten meanwhile by another shard's run (no lock is held here)
            continue
        has_severity = "severity" in parquet.schema_arrow.names  # (parts older than warnings: all errors)
        rows = parquet.read(columns=["source_path", "severity"] if has_severity else ["source_path"])
        if has_severity:
            rows = rows.filter(pc.equal(rows["severity"], "error"))
        mine = under_mask(rows["source_path"], roots)
        if shard is not None:
            mine = pc.and_(mine, in_shard(rows["source_path"], shard))
        count += pc.sum(mine).as_py() or 0
    return count
