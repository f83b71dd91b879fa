"""Exports from the built warehouse: FHIR NDJSON, gen3 DRS manifests, tables as files.

All read the DuckDB warehouse read-only and write the output atomically
(a temporary name in the same directory, renamed when complete).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from ingest.errors import UserError
from cohortdb.warehouse.duckdb import connect
from ingest.settings import Settings

SCHEMA_ORDER = ("cohorts", "marts", "intermediate", "staging", "reference", "raw")
"""Where an unqualified model name is looked up, first match wins."""

TABLE_FORMATS = {
    "csv": "(format csv, header true)",
    "tsv": "(format csv, header true, delimiter '\t')",
    "parquet": "(format parquet, compression zstd)",
}


@contextmanager
def _atomic(out: Path) -> Iterator[Path]:
    out = out.expanduser().resolve()
    if not out.parent.is_dir():
        raise UserError(f"output directory does not exist: {out.parent}")
    partial = out.with_name(f".{out.name}.partial")
    try:
        yield partial
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def resolve_relation(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """``schema.table`` for a model name (``imaging_studies``) or a qualified name.

    Raises:
        UserError: no such table or view; the message lists a few that exist.
    """
    schema, _, table = name.rpartition(".")
    rows = con.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_name = ? and (? = '' or table_schema = ?)",
        [table, schema, schema],
    ).fetchall()
    found = {s: t for s, t in rows}
    for candidate in ((schema,) if schema else SCHEMA_ORDER):
        if candidate in found:
            return f"{_quote(candidate)}.{_quote(found[candidate])}"
    marts = [r[0] for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'marts' "
        "order by table_name").fetchall()]
    hint = f"; marts: {', '.join(marts)}" if marts else "; run `cohortdb build` first"
    raise UserError(f"no model or table named {name!r} in the warehouse{hint}")


def export_table(settings: Settings, model: str, out: Path, fmt: str) -> int:
    """Write a model (or any table) as CSV, TSV or Parquet; returns the row count.

    Lists and structs become their DuckDB text form in CSV/TSV and stay nested in Parquet.
    """
    if fmt not in TABLE_FORMATS:
        raise UserError(f"unknown format {fmt!r}; choose one of {', '.join(TABLE_FORMATS)}")
    with connect(settings, read_only=True) as con:
        relation = resolve_relation(con, model)
        with _atomic(out) as partial:
            target = "'" + str(partial).replace("'", "''") + "'"
            con.execute(f"copy (select * from {relation}) to {target} {TABLE_FORMATS[fmt]}")
        return con.execute(f"select count(*) from {relation}").fetchall()[0][0]


def export_fhir(settings: Settings, out: Path) -> int:
    """Write every ImagingStudy of ``marts.fhir_imaging_studies`` as NDJSON; returns the count."""
    with connect(settings, read_only=True) as con:
        relation = resolve_relation(con, "marts.fhir_imaging_studies")
        result = con.execute(f"select resource_json from {relation} order by study_uid")
        count = 0
        with _atomic(out) as partial, partial.open("w", encoding="utf-8") as handle:
            while batch := result.fetchmany(10_000):
                for (document,) in batch:
                    handle.write(document + "\n")
                    count += 1
        return count


def export_manifest(settings: Settings, cohort: str, out: Path) -> int:
    """Write the data files of a cohort as a gen3 JSON manifest (``gen3 drs-pull manifest``).

    Entries carry ``object_id``, ``file_name``, ``file_size``, ``md5sum`` and, when the
    records came from a commons over HTTP(S), its ``commons_url``. Returns the entry count.
    """
    with connect(settings, read_only=True) as con:
        try:
            relation = resolve_relation(con, f"cohorts.{cohort}__files")
        except UserError:
            raise UserError(f"no cohort named {cohort!r} in the warehouse; `cohortdb cohort list` "
                            "shows the definitions, `cohortdb build` builds them") from None
        rows = con.execute(
            f"select object_id, file_name, file_size_bytes, md5sum, commons from {relation} "
            "where object_id is not null order by object_id"
        ).fetchall()
    entries = []
    for object_id, file_name, size, md5sum, commons in rows:
        entry: dict[str, object] = {"object_id": object_id}
        if file_name:
            entry["file_name"] = file_name
        if size is not None:
            entry["file_size"] = int(size)
        if md5sum:
            entry["md5sum"] = md5sum
        if commons and commons.startswith(("http://", "https://")):
            entry["commons_url"] = commons.split("://", 1)[1].split("/", 1)[0]
        entries.append(entry)
    with _atomic(out) as partial:
        partial.write_text(json.dumps(entries, indent=1) + "\n", encoding="utf-8")
    return len(entries)
