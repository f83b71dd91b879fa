"""One batch of studies → the DICOM parts and the study state of a lake transaction (runs in a worker).

A batch fetches its studies one after another, the next one's metadata (and small bulk
values) on a thread while this one's DICOM JSON is flattened to rows, and writes them
through :class:`~ingest.dicom.parts.BatchParts`, as the file source's batches do.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from ingest.collector import gc_paused
from ingest.dicom.header import ReadError, describe_failure
from ingest.dicom.parts import BatchParts
from ingest.sources.dicomweb.client import DicomWebClient, NotFound, StudyListing
from ingest.sources.dicomweb.flatten import BulkValue, bulk_uris, flatten_instance
from ingest.sources.dicomweb.state import STUDIES

SERIES_SPLIT = 2000
"""Studies with more instances than this are fetched series by series (bounded responses)."""
PREFETCH = 2
"""Studies fetched ahead of the one being flattened."""
STATE_PART = "studies.parquet"
"""The batch's study state, beside its ``elements``/``errors``/``instances`` parts."""


@dataclass
class Fetched:
    """A study's instances as DICOM JSON with their fetched bulk values, or why it could not be read."""

    listing: StudyListing
    instances: list[Any]
    bulk: dict[str, BulkValue]
    error: ReadError | None = None


@dataclass
class BatchResult:
    """What a batch wrote (counts) and the study state rows it staged."""

    part: str
    n_studies: int
    n_instances: int = 0
    n_errors: int = 0
    n_elements: int = 0
    n_bulk: int = 0
    n_requests: int = 0
    studies: list[dict[str, Any]] = field(default_factory=list)


def fetch_study(client: DicomWebClient, listing: StudyListing, bulk_max_bytes: int) -> Fetched:
    """WADO-RS metadata of one study (per series when big), and its bulk values up to ``bulk_max_bytes``."""
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
        return Fetched(listing, [], {}, error)
    bulk: dict[str, BulkValue] = {}
    if bulk_max_bytes > 0:
        for instance in instances:
            for uri in bulk_uris(instance) if isinstance(instance, dict) else []:
                if uri not in bulk:
                    try:
                        bulk[uri] = client.bulk(uri, bulk_max_bytes)
                    except NotFound:
                        bulk[uri] = BulkValue(None, None)
    return Fetched(listing, instances, bulk)


def _uid(instance: Any, tag: str) -> str | None:
    if not isinstance(instance, dict):
        return None
    values = (instance.get(tag) or {}).get("Value") or []
    return str(values[0]) if values and values[0] else None


def instance_member(study_uid: str, instance: Any) -> str:
    """The instance's WADO-RS path under the base URL (``source_member``)."""
    series, sop = _uid(instance, "0020000E") or "?", _uid(instance, "00080018") or "?"
    return f"studies/{study_uid}/series/{series}/instances/{sop}"


def add_study(parts: BatchParts, fetched: Fetched, server: str) -> None:
    """One study's rows: an error row for a study that could not be read, an instance or error row
    per instance (an instance's failure, whatever it is, is its error row)."""
    listing = fetched.listing
    if fetched.error is not None:
        parts.add_error(fetched.error, source_path=server, member=f"studies/{listing.study_uid}")
    for instance in fetched.instances:
        member = instance_member(listing.study_uid, instance)
        parts.begin_source()
        try:
            header = flatten_instance(instance, parts.nodes, fetched.bulk)
            parts.add_instance(header, source_path=server, member=member, mtime=None)
        except ReadError as error:
            parts.drop_source()
            parts.add_error(error, source_path=server, member=member)
        except Exception as exc:  # noqa: BLE001 - one instance's failure is its error row
            parts.drop_source()
            parts.add_error(ReadError("reader_failed", describe_failure(exc)), source_path=server, member=member)
        parts.end_source()


def read_batch(
    client: DicomWebClient, staging: Path, part: str, studies: list[StudyListing], bulk_max_bytes: int,
    ingested_at: dt.datetime,
) -> BatchResult:
    """Fetch and flatten ``studies`` into the parts under ``staging`` (and ``STATE_PART``).

    Raises:
        UserError: the server refused the credentials, or stopped answering (the batch is then useless).
    """
    staging.mkdir(parents=True, exist_ok=True)
    parts = BatchParts(staging, ingested_at)
    result = BatchResult(part, len(studies))
    requests_before = client.n_requests
    with ThreadPoolExecutor(1, thread_name_prefix="dicomweb-fetch") as fetcher:
        ahead: deque[Future[Fetched]] = deque()
        waiting = iter(studies)
        try:
            for listing in waiting:
                ahead.append(fetcher.submit(fetch_study, client, listing, bulk_max_bytes))
                if len(ahead) > PREFETCH:
                    _add(parts, ahead.popleft().result(), client.url, result)
            while ahead:
                _add(parts, ahead.popleft().result(), client.url, result)
        finally:
            for future in ahead:
                future.cancel()
    counts = parts.close()
    result.n_instances, result.n_errors, result.n_elements = counts.n_instances, counts.n_errors, counts.n_elements
    pq.write_table(pa.Table.from_pylist(result.studies, schema=STUDIES), staging / STATE_PART)
    result.n_requests = client.n_requests - requests_before
    return result


def _add(parts: BatchParts, fetched: Fetched, server: str, result: BatchResult) -> None:
    with gc_paused():
        add_study(parts, fetched, server)
    result.n_bulk += sum(value.data is not None for value in fetched.bulk.values())
    listing = fetched.listing
    result.studies.append({"server": server, "study_instance_uid": listing.study_uid, "n_series": listing.n_series,
                           "n_instances": listing.n_instances, "part": result.part})


__all__ = ["SERIES_SPLIT", "STATE_PART", "BatchResult", "Fetched", "add_study", "fetch_study", "instance_member",
           "read_batch"]
