"""``cohortdb ingest dicomweb``: a DICOMweb server's headers → the DICOM lake tables.

A run (1) lists the server's studies with QIDO-RS (paged; ``--since`` as a
StudyDate range, ``--study`` as UID lists, ``--modality`` checked here on each
study's ModalitiesInStudy, which also avoids Orthanc 1.10's empty pages for
``ModalitiesInStudy`` with ``offset``), (2) compares each study's numbers of
series and instances with the study state (:mod:`~ingest.sources.dicomweb.state`)
and skips the unchanged, (3) reads the others in batches on ``concurrency`` forked
processes (:mod:`~ingest.sources.dicomweb.batch`: WADO-RS metadata per study, per
series for big ones, with the small bulk values; the DICOM JSON flattened straight
to rows by :mod:`~ingest.sources.dicomweb.flatten` and written through
:class:`~ingest.dicom.parts.BatchParts` as the file ingestor's are), and (4)
commits everything in **one** transaction: the new rows, and the old rows of the
studies read again and of those no longer on the server removed. A run that
fails (server gone, credentials refused, Ctrl-C) leaves the lake as it was.

DICOMweb has no change feed: deletions are found by diffing the study list with
the state, on runs that list every study of the server (no ``--since`` and no
``--modality``; with ``--study``, the given studies missing from the server).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import multiprocessing
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.arrow_setup import skip_pandas_check
from ingest.dicom.schema import TABLES
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, new_part_id
from ingest.settings import Settings
from ingest.sources.dicomweb.batch import STATE_PART, BatchResult, read_batch
from ingest.sources.dicomweb.client import PAGE_SIZE, DicomWebClient, StudyListing
from ingest.sources.dicomweb.state import orphans, read_studies, studies_dir

BATCH_INSTANCES = 2000
"""Instances per batch at most (one set of part files, read by one worker; all committed together)."""
UID_CHUNK = 50
"""StudyInstanceUIDs per QIDO-RS query for ``--study`` (a list match, comma-separated)."""


@dataclass
class DicomWebSummary:
    """Counts of one run (studies and instances); ``seconds`` is wall time."""

    n_listed: int = 0
    n_read: int = 0
    n_unchanged: int = 0
    n_removed: int = 0
    n_instances: int = 0
    n_errors: int = 0
    n_elements: int = 0
    n_bulk: int = 0
    """Bulk values fetched (small binary values)."""
    n_requests: int = 0
    seconds: float = 0.0
    parts: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"{self.n_instances} instances, {self.n_errors} errors ({self.n_listed} studies listed: "
                f"{self.n_read} read, {self.n_unchanged} unchanged, {self.n_removed} removed; "
                f"{self.n_elements} elements) in {self.seconds:.1f} s")


_DATE = re.compile(r"\d{8}")


def check_since(since: str) -> str:
    """``YYYYMMDD`` checked.

    Raises:
        UserError: not a valid date in that form.
    """
    if not _DATE.fullmatch(since):
        raise UserError(f"--since {since!r}: expected a date as YYYYMMDD, e.g. 20240131")
    try:
        dt.date(int(since[:4]), int(since[4:6]), int(since[6:]))
    except ValueError:
        raise UserError(f"--since {since!r} is not a valid date") from None
    return since


def _list_studies(
    client: DicomWebClient, study_uids: list[str] | None, since: str | None, page_size: int
) -> Iterator[StudyListing]:
    date_filter = [("StudyDate", f"{since}-")] if since else []
    if not study_uids:
        yield from client.studies(date_filter, page_size=page_size)
        return
    for start in range(0, len(study_uids), UID_CHUNK):
        chunk = ",".join(study_uids[start : start + UID_CHUNK])
        yield from client.studies([*date_filter, ("StudyInstanceUID", chunk)], page_size=page_size)


def _study_of(member: str | None) -> str | None:
    """The study UID of a ``source_member`` written by this source."""
    if not member or not member.startswith("studies/"):
        return None
    return member.split("/", 2)[1]


def _remove_studies(settings: Settings, state: pa.Table, doomed: set[str], server: str, tx: Transaction) -> None:
    """Stage, in ``tx``, the rewrite of every part holding rows of the ``doomed`` studies of
    ``server`` without them (other studies' rows move to a new part of the same content)."""
    hit = pc.is_in(state["study_instance_uid"], pa.array(sorted(doomed), pa.string()))
    for part in sorted(set(state.filter(hit)["part"].to_pylist())):
        files = {table: settings.dicom_lake / table / f"{part}.parquet" for table in TABLES}
        files["studies"] = studies_dir(settings) / f"{part}.parquet"
        tables = {name: pq.read_table(path) for name, path in files.items() if path.exists()}
        if len(tables) < len(files):  # (a part half gone: drop what is left of it)
            tx.delete([path for path in files.values() if path.exists()])
            continue

        def doomed_rows(table: pa.Table) -> pa.Array:
            studies = [_study_of(member) for member in table["source_member"].to_pylist()]
            return pa.array([path == server and study in doomed
                             for path, study in zip(table["source_path"].to_pylist(), studies, strict=True)],
                            pa.bool_())

        gone_ids = tables["instances"].filter(doomed_rows(tables["instances"]))["file_id"]
        kept = {
            "instances": tables["instances"].filter(pc.invert(doomed_rows(tables["instances"]))),
            "errors": tables["errors"].filter(pc.invert(doomed_rows(tables["errors"]))),
            "elements": tables["elements"].filter(pc.invert(pc.is_in(tables["elements"]["file_id"], gone_ids))),
            "studies": tables["studies"].filter(pc.invert(pc.is_in(
                tables["studies"]["study_instance_uid"], pa.array(sorted(doomed), pa.string())))),
        }
        tx.delete(files.values())
        if not kept["studies"].num_rows:
            continue
        new_part = new_part_id()
        studies = kept["studies"]
        kept["studies"] = studies.set_column(studies.schema.get_field_index("part"), "part",
                                             pa.array([new_part] * studies.num_rows, pa.string()))
        for name, rows in kept.items():
            target_dir = studies_dir(settings) if name == "studies" else settings.dicom_lake / name
            tx.add(rows, target_dir / f"{new_part}.parquet")


def _changed(listing: StudyListing, known: dict[str, tuple[int | None, int | None]]) -> bool:
    counts = known.get(listing.study_uid)
    if counts is None or listing.n_series is None or listing.n_instances is None:
        return True
    return counts != (listing.n_series, listing.n_instances)


def ingest_dicomweb(
    settings: Settings,
    client: DicomWebClient,
    *,
    study_uids: list[str] | None = None,
    modalities: list[str] | None = None,
    since: str | None = None,
    concurrency: int | None = None,
    bulk_max_bytes: int = 64,
    full: bool = False,
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[int, int], None] | None = None,
) -> DicomWebSummary:
    """Ingest a DICOMweb server's headers into the lake (incremental; all or nothing).

    Args:
        settings: where the lake is.
        client: the server (base URL, credentials, retries).
        study_uids: only these studies (their absence from the server removes them from the lake).
        modalities: only studies whose ModalitiesInStudy holds one of these.
        since: ``YYYYMMDD``: only studies of that date or later.
        concurrency: worker processes, each reading a batch of studies (fetching the next study
            while flattening one) with its own connections; 1: in this process; default: one per core.
        bulk_max_bytes: binary values up to this size are fetched from their BulkDataURI
            (0: none is); larger ones keep their URI (and length when the server says it).
        full: read every listed study, even unchanged ones.
        page_size: studies per QIDO-RS page.
        on_progress: called with (studies done, studies to read).

    Raises:
        UserError: bad arguments, the lake is locked, credentials refused, the server
            unreachable or failing (the lake is then unchanged).
    """
    started = time.perf_counter()
    if since is not None:
        check_since(since)
    concurrency = concurrency or os.cpu_count() or 1
    if concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    wanted = {m.strip().upper() for m in modalities or [] if m.strip()}
    summary = DicomWebSummary()
    skip_pandas_check()
    server = client.url
    with LakeLock(settings.lake_dir) as lock:
        listed = list(_list_studies(client, study_uids, since, page_size))
        if wanted:
            listed = [study for study in listed if wanted & {m.upper() for m in study.modalities}]
        summary.n_listed = len(listed)
        state = read_studies(settings, server)
        known = dict(zip(state["study_instance_uid"].to_pylist(),
                         zip(state["n_series"].to_pylist(), state["n_instances"].to_pylist(), strict=True),
                         strict=True))
        to_read = [study for study in listed if full or _changed(study, known)]
        summary.n_unchanged = summary.n_listed - len(to_read)
        on_server = {study.study_uid for study in listed}
        gone: set[str] = set()
        if not wanted and since is None:
            scope = set(study_uids) if study_uids else set(known)
            gone = {uid for uid in scope if uid in known and uid not in on_server}
        summary.n_removed = len(gone)
        doomed = gone | {study.study_uid for study in to_read if study.study_uid in known}
        tx = Transaction(settings.lake_dir)
        try:
            if doomed:
                _remove_studies(settings, state, doomed, server, tx)
            tx.delete(orphans(settings))
            summary.n_requests = client.n_requests  # (listing; each batch counts its own)
            for result in _read(client, tx, to_read, concurrency, bulk_max_bytes, lock.fd):
                _stage(settings, tx, result, summary)
                summary.n_read += result.n_studies
                if on_progress:
                    on_progress(summary.n_read, len(to_read))
            tx.commit()
        except BaseException:
            tx.abort()
            raise
    summary.seconds = time.perf_counter() - started
    return summary


def _batches(studies: list[StudyListing], workers: int) -> list[list[StudyListing]]:
    """Studies in batches of about the same number of instances: at least ``4 × workers`` batches
    when there are enough studies (so the workers finish together), at most :data:`BATCH_INSTANCES`
    instances each (but a bigger study is a batch of its own)."""
    sizes = [study.n_instances or 1 for study in studies]
    target = max(1, min(BATCH_INSTANCES, -(-sum(sizes) // (4 * workers))))
    batches: list[list[StudyListing]] = [[]]
    filled = 0
    for study, size in zip(studies, sizes, strict=True):
        if batches[-1] and filled + size > target:
            batches.append([])
            filled = 0
        batches[-1].append(study)
        filled += size
    return [batch for batch in batches if batch]


_worker_client: DicomWebClient | None = None
"""The client of a pool worker (inherited by the fork, given its own connections)."""
SWITCH_INTERVAL = 0.0005
"""Seconds between GIL hand-overs while a batch is read: the fetching thread gets the socket's data
without waiting out the flattening thread's default 5 ms turns (which made fetching no faster
than one thread)."""


def _worker_init(client: DicomWebClient, lock_fd: int) -> None:
    global _worker_client
    os.close(lock_fd)  # the parent's lake lock: a worker outliving it must not hold it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the main process's to handle
    sys.setswitchinterval(SWITCH_INTERVAL)
    client.reset_connections()
    _worker_client = client


def _worker_read(job: tuple[Path, str, list[StudyListing], int, dt.datetime]) -> BatchResult:
    assert _worker_client is not None
    return read_batch(_worker_client, *job)


@contextlib.contextmanager
def _switch_interval(seconds: float) -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def _read(
    client: DicomWebClient, tx: Transaction, studies: list[StudyListing], concurrency: int, bulk_max_bytes: int,
    lock_fd: int,
) -> Iterator[BatchResult]:
    """Each batch of ``studies`` read and staged under ``tx``: in this process when ``concurrency`` is 1,
    else in ``concurrency`` forked processes (flattening is Python: threads would share one core).

    A failure stops the run: the pool is terminated and the error raised.
    """
    if not studies:
        return
    ingested_at = dt.datetime.now(dt.UTC)
    jobs = []
    for batch in _batches(studies, concurrency):
        part = new_part_id()
        jobs.append((tx.stage_path(part), part, batch, bulk_max_bytes, ingested_at))
    if concurrency == 1:
        with _switch_interval(SWITCH_INTERVAL):
            for job in jobs:
                yield read_batch(client, *job)
        return
    context = multiprocessing.get_context("fork")
    main = threading.current_thread() is threading.main_thread()
    interrupt = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None  # inherited: no window
    try:
        pool = context.Pool(min(concurrency, len(jobs)), initializer=_worker_init,
                            initargs=(client, lock_fd))
    finally:
        if main:
            signal.signal(signal.SIGINT, interrupt)
    with pool:  # (terminated on the way out, whatever happened)
        yield from pool.imap_unordered(_worker_read, jobs)


def _stage(settings: Settings, tx: Transaction, result: BatchResult, summary: DicomWebSummary) -> None:
    """Move a read batch's parts (and its study state) into the lake when ``tx`` commits."""
    staging = tx.stage_path(result.part)
    for table in TABLES:
        tx.add_file(staging / f"{table}.parquet", settings.dicom_lake / table / f"{result.part}.parquet")
    tx.add_file(staging / STATE_PART, studies_dir(settings) / f"{result.part}.parquet")
    summary.n_instances += result.n_instances
    summary.n_errors += result.n_errors
    summary.n_elements += result.n_elements
    summary.n_bulk += result.n_bulk
    summary.n_requests += result.n_requests
    summary.parts.append(result.part)


__all__ = ["DicomWebSummary", "check_since", "ingest_dicomweb"]
