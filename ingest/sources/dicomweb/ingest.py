"""``cohortdb ingest dicomweb``: a DICOMweb server's headers → the DICOM lake tables.

A run (1) lists the server's studies with QIDO-RS (paged; ``--since`` as a
StudyDate range, ``--study`` as UID lists, ``--modality`` checked here on each
study's ModalitiesInStudy, which also avoids Orthanc 1.10's empty pages for
``ModalitiesInStudy`` with ``offset``), (2) compares each study's numbers of
series and instances with the study state (:mod:`~ingest.sources.dicomweb.state`)
and skips the unchanged, (3) fetches the others' WADO-RS metadata (per study,
per series for big ones) on ``concurrency`` threads, with their small bulk values,
and flattens the DICOM JSON straight to rows on this thread
(:mod:`~ingest.sources.dicomweb.flatten`), written through
:class:`~ingest.dicom.parts.BatchParts` as the file ingestor's are, and (4)
commits everything in **one** transaction: the new rows, and the old rows of the
studies read again and of those no longer on the server removed. A run that
fails (server gone, credentials refused, Ctrl-C) leaves the lake as it was.

DICOMweb has no change feed: deletions are found by diffing the study list with
the state, on runs that list every study of the server (no ``--since`` and no
``--modality``; with ``--study``, the given studies missing from the server).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.arrow_setup import skip_pandas_check
from ingest.collector import gc_paused
from ingest.dicom.header import ReadError, describe_failure
from ingest.dicom.parts import BatchParts
from ingest.dicom.schema import TABLES
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, new_part_id
from ingest.settings import Settings
from ingest.sources.dicomweb.client import PAGE_SIZE, DicomWebClient, NotFound, StudyListing
from ingest.sources.dicomweb.flatten import BulkValue, bulk_uris, flatten_instance
from ingest.sources.dicomweb.state import STUDIES, read_studies, studies_dir

SERIES_SPLIT = 2000
"""Studies with more instances than this are fetched series by series (bounded responses)."""
BATCH_INSTANCES = 5000
"""Instances per set of part files (one set per batch, all committed together)."""
UID_CHUNK = 50
"""StudyInstanceUIDs per QIDO-RS query for ``--study`` (a list match, comma-separated)."""
IN_FLIGHT_PER_THREAD = 2
"""Studies fetched ahead per thread: bounds the JSON held in memory."""


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


@dataclass
class _Fetched:
    """A study's instances as DICOM JSON with their fetched bulk values, or why it could not be read."""

    listing: StudyListing
    instances: list[Any]
    bulk: dict[str, BulkValue]
    error: ReadError | None = None


def _fetch_study(client: DicomWebClient, listing: StudyListing, bulk_max_bytes: int) -> _Fetched:
    """WADO-RS metadata of one study (per series when big), and its small bulk values (runs on a thread)."""
    uid = listing.study_uid
    try:
        if listing.n_instances is not None and listing.n_instances > SERIES_SPLIT:
            instances = [instance for series in client.series_uids(uid)
                         for instance in client.series_metadata(uid, series)]
        else:
            instances = client.study_metadata(uid)
    except NotFound:
        error = ReadError("not_found", "the server lists this study but its metadata answers 404 "
                          "(deleted meanwhile, or an inconsistent server)")
        return _Fetched(listing, [], {}, error)
    bulk: dict[str, BulkValue] = {}
    if bulk_max_bytes > 0:
        for instance in instances:
            for uri in bulk_uris(instance) if isinstance(instance, dict) else []:
                if uri not in bulk:
                    try:
                        bulk[uri] = client.bulk(uri, bulk_max_bytes)
                    except NotFound:
                        bulk[uri] = BulkValue(None, None)
    return _Fetched(listing, instances, bulk)


def _uid(instance: Any, tag: str) -> str | None:
    if not isinstance(instance, dict):
        return None
    values = (instance.get(tag) or {}).get("Value") or []
    return str(values[0]) if values and values[0] else None


def instance_member(study_uid: str, instance: Any) -> str:
    """The instance's WADO-RS path under the base URL (``source_member``)."""
    series, sop = _uid(instance, "0020000E") or "?", _uid(instance, "00080018") or "?"
    return f"studies/{study_uid}/series/{series}/instances/{sop}"


def _study_of(member: str | None) -> str | None:
    """The study UID of a ``source_member`` written by this source."""
    if not member or not member.startswith("studies/"):
        return None
    return member.split("/", 2)[1]


class _Batches:
    """The part files of a run, a batch of up to :data:`BATCH_INSTANCES` instances at a time,
    staged in one transaction with the study state of each batch."""

    def __init__(self, settings: Settings, tx: Transaction, server: str, summary: DicomWebSummary) -> None:
        self.settings = settings
        self.tx = tx
        self.server = server
        self.summary = summary
        self.ingested_at = dt.datetime.now(dt.UTC)
        self.parts: BatchParts | None = None
        self.part = ""
        self.studies: list[dict[str, Any]] = []
        self.n_instances = 0

    def _open(self) -> BatchParts:
        if self.parts is None:
            self.part = new_part_id()
            staging = self.tx.stage_path(self.part)
            staging.mkdir(parents=True, exist_ok=True)
            self.parts = BatchParts(staging, self.ingested_at)
            self.studies, self.n_instances = [], 0
        return self.parts

    def add(self, fetched: _Fetched) -> None:
        """One study's rows (an error row for a study, or per instance that cannot be read)."""
        parts = self._open()
        listing = fetched.listing
        if fetched.error is not None:
            parts.add_error(fetched.error, source_path=self.server, member=f"studies/{listing.study_uid}")
        for instance in fetched.instances:
            member = instance_member(listing.study_uid, instance)
            parts.begin_source()
            try:
                header = flatten_instance(instance, parts.nodes, fetched.bulk)
                parts.add_instance(header, source_path=self.server, member=member, mtime=None)
            except ReadError as error:
                parts.drop_source()
                parts.add_error(error, source_path=self.server, member=member)
            except Exception as exc:  # noqa: BLE001 - one instance's failure is its error row
                parts.drop_source()
                parts.add_error(ReadError("reader_failed", describe_failure(exc)), source_path=self.server,
                                member=member)
            parts.end_source()
        self.summary.n_bulk += sum(value.data is not None for value in fetched.bulk.values())
        self.studies.append({"server": self.server, "study_instance_uid": listing.study_uid,
                             "n_series": listing.n_series, "n_instances": listing.n_instances, "part": self.part})
        self.n_instances += len(fetched.instances)
        if self.n_instances >= BATCH_INSTANCES:
            self.close()

    def close(self) -> None:
        """Write the current batch's parts and stage them (nothing when there is no batch)."""
        if self.parts is None:
            return
        counts = self.parts.close()
        self.summary.n_instances += counts.n_instances
        self.summary.n_errors += counts.n_errors
        self.summary.n_elements += counts.n_elements
        staging = self.parts.staging
        for table in TABLES:
            self.tx.add_file(staging / f"{table}.parquet", self.settings.dicom_lake / table / f"{self.part}.parquet")
        state = staging / "studies.parquet"
        pq.write_table(pa.Table.from_pylist(self.studies, schema=STUDIES), state)
        self.tx.add_file(state, studies_dir(self.settings) / f"{self.part}.parquet")
        self.summary.parts.append(self.part)
        self.parts = None


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
    concurrency: int = 4,
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
        concurrency: studies fetched at once (threads, each with its own connection).
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
    if concurrency < 1:
        raise UserError("--concurrency must be at least 1")
    wanted = {m.strip().upper() for m in modalities or [] if m.strip()}
    summary = DicomWebSummary()
    skip_pandas_check()
    server = client.url
    with LakeLock(settings.lake_dir):
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
            batches = _Batches(settings, tx, server, summary)
            for fetched in _fetch_all(client, to_read, concurrency, bulk_max_bytes):
                with gc_paused():
                    batches.add(fetched)
                summary.n_read += 1
                if on_progress:
                    on_progress(summary.n_read, len(to_read))
            batches.close()
            tx.commit()
        except BaseException:
            tx.abort()
            raise
    summary.n_requests = client.n_requests
    summary.seconds = time.perf_counter() - started
    return summary


def _fetch_all(
    client: DicomWebClient, studies: list[StudyListing], concurrency: int, bulk_max_bytes: int
) -> Iterator[_Fetched]:
    """Each study fetched on one of ``concurrency`` threads, a bounded number ahead, in order.

    A failure stops the run: the studies not yet fetched are cancelled, and the error is raised.
    """
    if not studies:
        return
    ahead = concurrency * IN_FLIGHT_PER_THREAD
    with ThreadPoolExecutor(concurrency, thread_name_prefix="dicomweb") as pool:
        pending: deque[Future[_Fetched]] = deque()
        queue = iter(studies)
        try:
            for study in queue:
                pending.append(pool.submit(_fetch_study, client, study, bulk_max_bytes))
                if len(pending) >= ahead:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:
                future.cancel()
            pool.shutdown(wait=True, cancel_futures=True)


__all__ = ["DicomWebSummary", "check_since", "ingest_dicomweb", "instance_member"]
