"""Exports from the built warehouse: FHIR NDJSON, gen3 DRS manifests, tables as files.

All read through the warehouse seam (read-only) and write the output
atomically: a temporary name in the same directory, renamed when complete.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pyarrow as pa

from cohortdb.warehouse.base import TABLE_FORMATS, Relation, WarehouseTarget
from cohortdb.warehouse.duckdb import write_delimited
from ingest.errors import UserError

SCHEMA_ORDER = ("cohorts", "marts", "intermediate", "staging", "reference", "raw")
"""Where an unqualified model name is looked up, first match wins."""


@contextmanager
def _atomic(out: Path) -> Iterator[Path]:
    out = out.expanduser().resolve()
    if out.is_dir():
        raise UserError(f"{out} is a directory: give --out a file name in it")
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    try:
        partial.touch()  # fails here, with a message, where no file can be made (read-only, procfs)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror or exc}") from None
    try:
        yield partial
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def resolve_relation(warehouse: WarehouseTarget, name: str) -> Relation:
    """The relation of a model name (``imaging_studies``) or a qualified name (``raw.dicom_errors``).

    An unqualified name is looked up in :data:`SCHEMA_ORDER`, first match wins.

    Raises:
        UserError: no such table or view; the message lists the marts that exist.
    """
    schema, _, table = name.rpartition(".")
    relations = warehouse.relations()
    found = {r.schema: r for r in relations if r.name == table and (not schema or r.schema == schema)}
    for candidate in ((schema,) if schema else SCHEMA_ORDER):
        if candidate in found:
            return found[candidate]
    marts = [r.name for r in relations if r.schema == "marts"]
    hint = f"; marts: {', '.join(marts)}" if marts else "; run `cohortdb build` first"
    raise UserError(f"no model or table named {name!r} in the warehouse{hint}")


def export_table(warehouse: WarehouseTarget, model: str, out: Path, fmt: str) -> int:
    """Write a model (or any table) as CSV, TSV or Parquet; returns the row count.

    In CSV/TSV lists, structs and maps are JSON and booleans ``true``/``false``, as
    ``cohortdb sql --format csv`` prints them; Parquet keeps them nested.
    """
    if fmt not in TABLE_FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(TABLE_FORMATS)}")
    relation = resolve_relation(warehouse, model)
    with _atomic(out) as partial:
        return warehouse.export_table(relation, partial, fmt)


def export_fhir(warehouse: WarehouseTarget, out: Path) -> int:
    """Write every ImagingStudy of ``marts.fhir_imaging_studies`` as NDJSON; returns the count."""
    relation = resolve_relation(warehouse, "marts.fhir_imaging_studies")
    source = warehouse.relation_sql(relation)
    count = 0
    with _atomic(out) as partial, partial.open("w", encoding="utf-8") as handle:
        for batch in warehouse.query_batches(f"select resource_json from {source} order by study_uid"):
            for document in batch.column(0).to_pylist():
                handle.write(document + "\n")
            count += batch.num_rows
    return count


MANIFEST_COLUMNS = ("object_id", "file_name", "file_size_bytes", "md5sum", "commons")
"""The columns of ``marts.data_files`` (and ``cohorts.*__files``) a manifest entry is made of."""


def manifest_entries(table: pa.Table) -> list[dict[str, object]]:
    """gen3 manifest entries from data file rows with :data:`MANIFEST_COLUMNS`, in their order.

    An entry has ``object_id`` and, where known, ``file_name``, ``file_size``, ``md5sum`` and
    ``commons_url`` (the host of a commons the records came from over HTTP(S)).
    """
    hosts: dict[str | None, str | None] = {}
    entries = []
    for object_id, name, size, md5, commons in zip(
            *(table.column(column).to_pylist() for column in MANIFEST_COLUMNS), strict=True):
        entry: dict[str, object] = {"object_id": object_id}
        if name:
            entry["file_name"] = name
        if size is not None:
            entry["file_size"] = int(size)
        if md5:
            entry["md5sum"] = md5
        if commons not in hosts:
            hosts[commons] = (commons.split("://", 1)[1].split("/", 1)[0]
                              if commons and commons.startswith(("http://", "https://")) else None)
        if hosts[commons]:
            entry["commons_url"] = hosts[commons]
        entries.append(entry)
    return entries


def manifest_json(entries: list[dict[str, object]]) -> bytes:
    """A gen3 manifest file's bytes: the entries as a JSON array (UTF-8, indented), newline-ended."""
    return orjson.dumps(entries, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)


def delimited_text(table: pa.Table, fmt: str = "csv") -> str:
    """A query result as CSV or TSV text, cells as ``cohortdb export csv|tsv`` writes them
    (nested values JSON, booleans ``true``/``false``, NULL an empty cell, '' quoted)."""
    out = io.StringIO()
    write_delimited(table, out, fmt)
    return out.getvalue()


def export_manifest(warehouse: WarehouseTarget, cohort: str, out: Path) -> int:
    """Write the data files of a cohort as a gen3 JSON manifest (``gen3 drs-pull manifest``).

    Entries carry ``object_id``, ``file_name``, ``file_size``, ``md5sum`` and, when the
    records came from a commons over HTTP(S), its ``commons_url``. Returns the entry count.

    Raises:
        UserError: the cohort is not built in the warehouse.
    """
    try:
        relation = resolve_relation(warehouse, f"cohorts.{cohort}__files")
    except UserError:
        raise UserError(f"no cohort named {cohort!r} in the warehouse; `cohortdb cohort list` "
                        "shows the definitions, `cohortdb build` builds them") from None
    source = warehouse.relation_sql(relation)
    entries = manifest_entries(warehouse.query(
        f"select {', '.join(MANIFEST_COLUMNS)} from {source} where object_id is not null order by object_id"))
    with _atomic(out) as partial:
        partial.write_bytes(manifest_json(entries))
    return len(entries)
