"""One batch of sources → the four Parquet parts of a lake transaction (runs in a worker)."""

from __future__ import annotations

import datetime as dt
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.collector import gc_paused
from ingest.dicom.flatten import ElementRows, Nodes, instance_attributes
from ingest.dicom.header import Header, ReadError
from ingest.dicom.read import Source, file_id, read_source
from ingest.dicom.schema import ELEMENTS, ERRORS, INSTANCES, SOURCES
from ingest.lake import PARQUET_OPTIONS, write_parquet

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
ROW_GROUP_ROWS = 32_768
"""Element rows converted and written together (a row group of the elements part)."""


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


def _sparse(n: int, exceptions: list[tuple[int, Any]]) -> list[Any]:
    """``n`` Nones with ``exceptions`` (row index, value) filled in."""
    column: list[Any] = [None] * n
    for index, value in exceptions:
        column[index] = value
    return column


def _elements_table(chunks: list[tuple[str, str | None, ElementRows]], nodes: Nodes) -> pa.Table:
    """One table of every chunk's rows (all at nodes of ``nodes``); the node columns
    are taken from the node table, ``vm`` and ``value_text`` computed by Arrow from
    ``values`` (``vm`` where no exception says otherwise; ``value_text`` null when no values)."""
    columns: dict[str, list[Any]] = {name: [] for name in ElementRows.STORED}
    exceptions: dict[str, list[tuple[int, Any]]] = {name: [] for name in ElementRows.SPARSE}
    run_ends: list[int] = []
    n = 0
    for _, _, rows in chunks:
        for name in ElementRows.STORED:
            columns[name] += getattr(rows, name)
        for name, attribute in ElementRows.SPARSE.items():
            exceptions[name] += [(n + index, value) for index, value in getattr(rows, attribute).items()]
        n = len(columns["node"])
        run_ends.append(n)
    node_ids = pa.array(columns.pop("node"), pa.int32())
    arrays = {name: pa.array(values, ELEMENTS.field(name).type) for name, values in columns.items()}
    for name in Nodes.COLUMNS:
        arrays[name] = pa.array(getattr(nodes, name), ELEMENTS.field(name).type).take(node_ids)
    for name in ("private_creator", "value_length"):
        arrays[name] = pa.array(_sparse(n, exceptions[name]), ELEMENTS.field(name).type)
    values = arrays["values"]
    vm = pc.list_value_length(values).cast(ELEMENTS.field("vm").type)
    if exceptions["vm"]:
        exceptions["vm"].sort()
        mask = pa.array([value is not None for value in _sparse(n, exceptions["vm"])], pa.bool_())
        vm = pc.replace_with_mask(vm, mask, pa.array([v for _, v in exceptions["vm"]], vm.type))
    arrays["vm"] = vm
    # a run cannot be empty: skip instances without rows (their run end repeats the previous one)
    keep = [i for i, end in enumerate(run_ends) if end != (run_ends[i - 1] if i else 0)]
    ends = pa.array([run_ends[i] for i in keep], pa.int32())
    arrays["file_id"] = _repeated([chunks[i][0] for i in keep], ends)
    arrays["sop_instance_uid"] = _repeated([chunks[i][1] for i in keep], ends)
    arrays["value_text"] = pc.if_else(
        pc.equal(pc.list_value_length(values), 0), pa.scalar(None, pa.string()), pc.binary_join(values, "\\")
    )
    return pa.table([arrays[name] for name in ELEMENTS.names], schema=ELEMENTS)


def _table(records: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(records, schema=schema)


class _ElementsPart:
    """The elements part of a batch, written a row group at a time.

    Rows are buffered until about :data:`ROW_GROUP_ROWS` of them (whole instances),
    then converted and written, and a new node table begun: a worker's memory
    is bounded by rows, whatever the files' sizes and the batch's length.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.nodes = Nodes()
        self.n_rows = 0
        self._chunks: list[tuple[str, str | None, ElementRows]] = []
        self._buffered = 0
        self._writer: pq.ParquetWriter | None = None

    def add(self, fid: str, sop_instance_uid: str | None, rows: ElementRows) -> None:
        """Buffer one instance's rows (their nodes in :attr:`nodes`); call :meth:`flush` between sources."""
        self._chunks.append((fid, sop_instance_uid, rows))
        self._buffered += len(rows)

    def flush(self, *, last: bool = False) -> None:
        """Write the buffered rows as a row group once there are enough (always when ``last``)."""
        if self._buffered < ROW_GROUP_ROWS and not (last and (self._chunks or self._writer is None)):
            return
        table = _elements_table(self._chunks, self.nodes)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, ELEMENTS, **PARQUET_OPTIONS, **ELEMENTS_PARQUET)
        self._writer.write_table(table)
        self.n_rows += table.num_rows
        self._chunks, self._buffered, self.nodes = [], 0, Nodes()

    def close(self) -> None:
        """Write what is left (an empty part when there were no rows) and close the file."""
        self.flush(last=True)
        if self._writer is not None:
            self._writer.close()


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
    elements = _ElementsPart(staging / "elements.parquet")
    n_fast = 0
    for source in sources:
        mtime = dt.datetime.fromtimestamp(source.mtime_ns / 1e9, dt.UTC)
        for member, outcome in read_source(source, elements.nodes):
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
            elements.add(fid, record["sop_instance_uid"], header.rows)
            n_fast += header.reader == "fast"
        elements.flush()
    elements.close()
    tables = {
        "errors": _table(errors, ERRORS),
        "sources": _table(
            [{"source_path": s.path, "file_size": s.size, "file_mtime_ns": s.mtime_ns, "part": part} for s in sources],
            SOURCES,
        ),
        "instances": _table(instances, INSTANCES),
    }
    for name, table in tables.items():
        write_parquet(table, staging / f"{name}.parquet")
    del tables
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed pages: worker memory crept up per batch
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return BatchResult(part, len(sources), len(instances), len(errors), elements.n_rows, n_fast, peak_kib / 1024)
