"""Flattened DICOM headers → the lake's Parquet parts (elements, errors, instances).

Shared by every DICOM source: a source reads headers (files, zip members,
DICOM JSON) and hands each one, or the error that stopped it, to a
:class:`BatchParts`; the sources' own bookkeeping (which sources a batch
covered) stays with the source.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.dicom.flatten import ElementRows, Nodes, instance_attributes
from ingest.dicom.header import Header, ReadError
from ingest.dicom.schema import ELEMENTS, ERRORS, INSTANCES
from ingest.lake import PARQUET_OPTIONS, write_parquet

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
    for name in ElementRows.SPARSE.keys() - {"vm"}:  # (vm's exceptions replace a computed column, below)
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


class ElementsPart:
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

    def mark(self) -> tuple[int, int]:
        """Where the buffer is now (see :meth:`drop_since`)."""
        return len(self._chunks), self._buffered

    def drop_since(self, mark: tuple[int, int]) -> None:
        """Forget the rows buffered since :meth:`mark` (a source that failed half-way)."""
        del self._chunks[mark[0]:]
        self._buffered = mark[1]

    def flush(self, *, last: bool = False) -> list[str]:
        """Write the buffered rows as a row group once there are enough (always when ``last``).

        Returns the file ids of instances whose rows Arrow could not convert (dropped;
        normally none): a reader bug must cost those instances, never the batch.
        """
        if self._buffered < ROW_GROUP_ROWS and not (last and (self._chunks or self._writer is None)):
            return []
        bad: list[str] = []
        try:
            table = _elements_table(self._chunks, self.nodes)
        except (pa.ArrowException, ValueError, TypeError, OverflowError):
            bad = [chunk[0] for chunk in self._chunks if not _converts(chunk, self.nodes)]
            table = _elements_table([chunk for chunk in self._chunks if chunk[0] not in bad], self.nodes)
        if self._writer is None:
            self._writer = pq.ParquetWriter(self.path, ELEMENTS, **PARQUET_OPTIONS, **ELEMENTS_PARQUET)
        self._writer.write_table(table)
        self.n_rows += table.num_rows
        self._chunks, self._buffered, self.nodes = [], 0, Nodes()
        return bad

    def close(self) -> list[str]:
        """Write what is left (an empty part when there were no rows) and close the file;
        the file ids dropped as in :meth:`flush`."""
        bad = self.flush(last=True)
        if self._writer is not None:
            self._writer.close()
        return bad


def _converts(chunk: tuple[str, str | None, ElementRows], nodes: Nodes) -> bool:
    """Whether one instance's rows convert to an elements table."""
    try:
        _elements_table([chunk], nodes)
    except (pa.ArrowException, ValueError, TypeError, OverflowError):
        return False
    return True


def file_id(source_path: str, member: str | None) -> str:
    """Stable key of an instance's location: a hash of path and zip member (hex, 20 chars)."""
    return hashlib.sha1(f"{source_path}\0{member or ''}".encode()).hexdigest()[:20]


@dataclass
class PartCounts:
    """What a batch's parts hold: instances, error rows of severity ``error`` and of ``warning``
    (``n_warnings``: instances kept in part), element rows; ``n_fast`` instances were read by the
    fast reader."""

    n_instances: int
    n_errors: int
    n_elements: int
    n_fast: int
    n_warnings: int = 0


class BatchParts:
    """The ``elements``, ``errors`` and ``instances`` parts of one batch, under ``staging``.

    Element rows go to disk a row group at a time; instance and error rows are
    written by :meth:`close`. Call :meth:`end_source` after each source.
    """

    def __init__(self, staging: Path, ingested_at: dt.datetime) -> None:
        self.staging = staging
        self.ingested_at = ingested_at
        self.elements = ElementsPart(staging / "elements.parquet")
        self.instances: list[dict[str, Any]] = []
        self.errors: list[dict[str, Any]] = []
        self.n_fast = 0
        self._mark: tuple[int, int, int, tuple[int, int]] = (0, 0, 0, (0, 0))

    @property
    def nodes(self) -> Nodes:
        """The node table the next header's rows must be read into."""
        return self.elements.nodes

    def add_instance(self, header: Header, *, source_path: str, member: str | None,
                     mtime: dt.datetime | None) -> None:
        """One instance: its ``dicom_instances`` row and its element rows."""
        fid = file_id(source_path, member)
        record = instance_attributes(header.rows)
        record.update(
            file_id=fid, source_path=source_path, source_member=member,
            file_size=header.size, file_mtime=mtime,
            has_pixel_data=header.has_pixel_data, pixel_data_length=header.pixel_data_length,
            truncated=header.truncated_at is not None, truncated_at=header.truncated_at,
            ingested_at=self.ingested_at,
        )
        self.instances.append(record)
        self.elements.add(fid, record["sop_instance_uid"], header.rows)
        self.n_fast += header.reader == "fast"

    def add_error(self, error: ReadError, *, source_path: str, member: str | None) -> None:
        """One ``dicom_errors`` row: a source (or zip member) that could not be read."""
        self.errors.append({
            "source_path": source_path, "source_member": member,
            "error_type": error.error_type, "severity": error.severity, "message": error.message,
            "ingested_at": self.ingested_at,
        })

    def begin_source(self) -> None:
        """Before each source: remember where its rows will start (see :meth:`drop_source`)."""
        self._mark = (len(self.instances), len(self.errors), self.n_fast, self.elements.mark())

    def drop_source(self) -> None:
        """Forget every row added since :meth:`begin_source` (a source that failed half-way)."""
        n_instances, n_errors, self.n_fast, elements = self._mark
        del self.instances[n_instances:]
        del self.errors[n_errors:]
        self.elements.drop_since(elements)

    def end_source(self) -> None:
        """Between sources: write the buffered element rows once there are enough."""
        self._unconvertible(self.elements.flush())

    def _unconvertible(self, file_ids: list[str]) -> None:
        """The instances whose element rows could not be stored become error rows."""
        if not file_ids:
            return
        dropped = set(file_ids)
        for record in [r for r in self.instances if r["file_id"] in dropped]:
            self.instances.remove(record)
            self.add_error(ReadError("reader_failed", "element values could not be stored (a reader bug)"),
                           source_path=record["source_path"], member=record["source_member"])

    def close(self) -> PartCounts:
        """Write every part (empty ones too) and say what they hold."""
        self._unconvertible(self.elements.close())
        write_parquet(_table(self.errors, ERRORS), self.staging / "errors.parquet")
        write_parquet(_table(self.instances, INSTANCES), self.staging / "instances.parquet")
        n_warnings = sum(error["severity"] == "warning" for error in self.errors)
        counts = PartCounts(len(self.instances), len(self.errors) - n_warnings, self.elements.n_rows, self.n_fast,
                            n_warnings)
        self.instances, self.errors = [], []
        return counts
