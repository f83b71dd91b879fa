"""One batch of sources → the four Parquet parts of a lake transaction (runs in a worker)."""

from __future__ import annotations

import datetime as dt
import resource
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from ingest.collector import gc_paused
from ingest.dicom.flatten import ElementRows, Nodes, instance_attributes
from ingest.dicom.header import Header, ReadError
from ingest.dicom.read import Source, file_id, read_source
from ingest.dicom.schema import ELEMENTS, ERRORS, INSTANCES, SOURCES
from ingest.lake import write_parquet

TABLES = ("elements", "errors", "sources", "instances")
"""Part files of a batch, in commit order."""
ELEMENTS_PARQUET = {
    "use_dictionary": [
        "file_id", "sop_instance_uid", "tag_path", "keyword_path", "tag", "keyword", "vr", "private_creator",
    ],
    "write_statistics": ["file_id", "sop_instance_uid"],
}
"""Element parts: dictionaries only for the repetitive columns (values are mostly
unique), min/max only where they can skip a part (every part holds every tag)."""


class _NoPandas:
    """An import finder refusing pandas (see :func:`worker_init`)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("not imported in ingest workers", name=name)


def worker_init() -> None:
    """In a forked worker: keep pyarrow from importing pandas (~0.3 s per process).

    The first array pyarrow builds from a Python list checks whether pandas
    is installed, by importing it. Workers never touch pandas, so that check
    is answered "no" here; an explicit pandas conversion would still import it.
    """
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _NoPandas)  # type: ignore[arg-type]
    try:
        pa.array([0])
    except Exception:  # noqa: BLE001, S110 - only a speed-up: never stop a worker from starting
        pass
    finally:
        sys.meta_path.remove(_NoPandas)  # type: ignore[arg-type]


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


def _repeated(values: list[str | None], run_ends: pa.Array) -> pa.Array:
    """``values[i]`` repeated up to ``run_ends[i]`` (cumulative row counts), as a plain string array."""
    encoded = pa.RunEndEncodedArray.from_arrays(run_ends, pa.array(values, pa.string()))
    return pc.run_end_decode(encoded)


def _elements_table(chunks: list[tuple[str, str | None, ElementRows]], nodes: Nodes) -> pa.Table:
    """One table of every chunk's rows (all at nodes of ``nodes``); the node columns
    are taken from the node table, ``value_text`` is joined by Arrow (null when no values)."""
    columns: dict[str, list[Any]] = {name: [] for name in ElementRows.STORED}
    run_ends: list[int] = []
    for _, _, rows in chunks:
        for name in ElementRows.STORED:
            columns[name] += getattr(rows, name)
        run_ends.append(len(columns["node"]))
    node_ids = pa.array(columns.pop("node"), pa.int32())
    arrays = {name: pa.array(values, ELEMENTS.field(name).type) for name, values in columns.items()}
    for name in Nodes.COLUMNS:
        arrays[name] = pa.array(getattr(nodes, name), ELEMENTS.field(name).type).take(node_ids)
    # a run cannot be empty: skip instances without rows (their run end repeats the previous one)
    keep = [i for i, end in enumerate(run_ends) if end != (run_ends[i - 1] if i else 0)]
    ends = pa.array([run_ends[i] for i in keep], pa.int32())
    arrays["file_id"] = _repeated([chunks[i][0] for i in keep], ends)
    arrays["sop_instance_uid"] = _repeated([chunks[i][1] for i in keep], ends)
    values = arrays["values"]
    arrays["value_text"] = pc.if_else(
        pc.equal(pc.list_value_length(values), 0), pa.scalar(None, pa.string()), pc.binary_join(values, "\\")
    )
    return pa.table([arrays[name] for name in ELEMENTS.names], schema=ELEMENTS)


def _table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(records, schema=schema)


def process_batch(staging: Path, part: str, sources: list[Source], ingested_at: dt.datetime) -> BatchResult:
    """Read every source of the batch and write its parts under ``staging``.

    Never raises for a bad source: it becomes an error row. The cyclic garbage
    collector is paused meanwhile: a batch's rows are ~10^5 small lists without
    cycles, and its collections cost about a third of the batch.
    """
    with gc_paused():
        return _process_batch(staging, part, sources, ingested_at)


def _process_batch(staging: Path, part: str, sources: list[Source], ingested_at: dt.datetime) -> BatchResult:
    instances: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    chunks: list[tuple[str, str | None, ElementRows]] = []
    nodes = Nodes()
    n_fast = 0
    for source in sources:
        mtime = dt.datetime.fromtimestamp(source.mtime_ns / 1e9, dt.UTC)
        for member, outcome in read_source(source, nodes):
            if isinstance(outcome, ReadError):
                errors.append({
                    "source_path": source.path, "source_member": member,
                    "error_type": outcome.error_type, "message": outcome.message,
                    "ingested_at": ingested_at,
                })
                continue
            header: Header = outcome
            fid = file_id(source.path, member)
            record = instance_attributes(header.rows)
            record.update(
                file_id=fid, source_path=source.path, source_member=member,
                file_size=header.size, file_mtime=mtime,
                has_pixel_data=header.has_pixel_data, pixel_data_length=header.pixel_data_length,
                ingested_at=ingested_at,
            )
            instances.append(record)
            chunks.append((fid, record["sop_instance_uid"], header.rows))
            n_fast += header.reader == "fast"
    tables = {
        "elements": _elements_table(chunks, nodes),
        "errors": _table(errors, ERRORS),
        "sources": _table(
            [{"source_path": s.path, "file_size": s.size, "file_mtime_ns": s.mtime_ns, "part": part} for s in sources],
            SOURCES,
        ),
        "instances": _table(instances, INSTANCES),
    }
    for name in TABLES:
        write_parquet(tables[name], staging / f"{name}.parquet", **(ELEMENTS_PARQUET if name == "elements" else {}))
    n_elements = tables["elements"].num_rows
    del tables
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages: worker memory crept up per batch
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return BatchResult(part, len(sources), len(instances), len(errors), n_elements, n_fast, peak_kib / 1024)
