"""One batch of sources → the four Parquet parts of a lake transaction (runs in a worker).

The DICOM parts (elements, errors, instances) are :class:`~ingest.dicom.parts.BatchParts`';
the ``sources`` part, the incremental state, is this source's own.
"""

from __future__ import annotations

import datetime as dt
import resource
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.collector import gc_paused
from ingest.dicom.header import ReadError, describe_failure
from ingest.dicom.parts import BatchParts
from ingest.dicom.schema import SOURCES
from ingest.lake import write_parquet
from ingest.sources.files.read import Source, read_source

TABLES = ("elements", "errors", "sources", "instances")
"""Part files of a batch, in commit order."""

@dataclass
class BatchResult:
    """What a worker reports for one batch (counts, and its peak RSS in MiB)."""

    part: str
    n_sources: int
    n_instances: int
    n_errors: int
    n_elements: int
    n_fast: int
    peak_rss_mib: float
    n_warnings: int = 0
    """Warning rows: instances kept in part (truncated); ``n_errors`` counts the sources not read."""


def process_batch(staging: Path, part: str, sources: list[Source], ingested_at: dt.datetime) -> BatchResult:
    """Read every source of the batch and write its parts under ``staging``.

    Never raises for a bad source: it becomes an error row (any exception while reading
    it, its rows added so far dropped). The cyclic garbage
    collector is paused meanwhile: a batch's rows are many small lists without
    cycles, which it would traverse again and again for nothing.
    """
    with gc_paused():
        return _process_batch(staging, part, sources, ingested_at)


def _process_batch(staging: Path, part: str, sources: list[Source], ingested_at: dt.datetime) -> BatchResult:
    parts = BatchParts(staging, ingested_at)
    for source in sources:
        mtime = dt.datetime.fromtimestamp(source.mtime_ns / 1e9, dt.UTC)
        parts.begin_source()
        try:
            for member, outcome in read_source(source, parts.nodes):
                if isinstance(outcome, ReadError):
                    parts.add_error(outcome, source_path=source.path, member=member)
                else:
                    parts.add_instance(outcome, source_path=source.path, member=member, mtime=mtime)
        except Exception as exc:  # noqa: BLE001 - one source's failure, whatever it is, is its error row
            parts.drop_source()
            kind = "too_deep" if isinstance(exc, RecursionError) else "reader_failed"
            parts.add_error(ReadError(kind, describe_failure(exc)), source_path=source.path, member=None)
        parts.end_source()
    counts = parts.close()
    state = [{"source_path": s.path, "file_size": s.size, "file_mtime_ns": s.mtime_ns, "part": part} for s in sources]
    write_parquet(pa.Table.from_pylist(state, schema=SOURCES), staging / "sources.parquet")
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages: worker memory crept up per batch
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return BatchResult(part, len(sources), counts.n_instances, counts.n_errors, counts.n_elements, counts.n_fast,
                       peak_kib / 1024, counts.n_warnings)
