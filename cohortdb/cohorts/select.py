"""Selecting on a built warehouse: guppy records by a filter, and a cohort's rows.

Both compile with the one translation of guppy filters and run through the
warehouse seam, so the CLI, the Python API and the dashboard select alike.
"""

from __future__ import annotations

import pyarrow as pa

from cohortdb.cohorts.compile import Refs, cohort_select
from cohortdb.cohorts.definitions import INDICES, Cohort
from cohortdb.cohorts.filter_sql import filter_to_sql, guppy_columns
from cohortdb.warehouse.base import Relation, WarehouseTarget
from ingest.errors import UserError
from ingest.sources.guppy.flatten import RECORD
from ingest.sources.guppy.ingest import check_index_name

ID_COLUMN = "submitter_id"
"""The guppy records' own id: the sort key of :func:`select_records`."""


def warehouse_refs(warehouse: WarehouseTarget) -> Refs:
    """How a query on ``warehouse`` names raw guppy tables and marts."""
    return Refs(
        guppy=lambda index: warehouse.relation_sql(Relation("raw", f"guppy_{index}", "table")),
        model=lambda name: warehouse.relation_sql(Relation("marts", name, "table")),
    )


def _require(relations: list[Relation], schema: str, name: str, hint: str) -> Relation:
    for relation in relations:
        if relation.schema == schema and relation.name == name:
            return relation
    raise UserError(f"no table {schema}.{name} in the warehouse; {hint}")


def guppy_table(warehouse: WarehouseTarget, index: str,
                relations: list[Relation] | None = None) -> tuple[Relation, pa.Schema]:
    """The loaded table of a guppy index and its schema (``relations``: the warehouse's,
    when the caller has them already).

    Raises:
        UserError: a bad index name, or the index was never loaded.
    """
    relation = _require(relations if relations is not None else warehouse.relations(), "raw",
                        f"guppy_{check_index_name(index)}",
                        f"ingest it with `cohortdb ingest guppy --index {index} ...`, then run `cohortdb load`")
    schema = warehouse.query(f"select * from {warehouse.relation_sql(relation)} limit 0").schema
    return relation, schema


def select_records(warehouse: WarehouseTarget, index: str, filter_: dict[str, object] | None, *,
                   ids_only: bool = False) -> pa.Table:
    """The rows of ``raw.guppy_<index>`` that ``filter_`` selects, sorted by submitter_id.

    ``submitter_id`` first, then every other column but ``_record`` (the
    source JSON); only ``submitter_id`` with ``ids_only``.

    Raises:
        UserError: no such table, no submitter_id for ``ids_only``, or an invalid filter.
    """
    relation, schema = guppy_table(warehouse, index)
    where = filter_to_sql(filter_, guppy_columns(schema), warehouse.dialect, relation_alias="g")
    has_id = ID_COLUMN in schema.names
    if ids_only and not has_id:
        raise UserError(f"raw.{relation.name} has no {ID_COLUMN} column; use --format table, csv or json")
    quote = warehouse.quote
    columns = [ID_COLUMN] if ids_only else (
        ([ID_COLUMN] if has_id else []) + [n for n in schema.names if n not in (ID_COLUMN, RECORD)])
    order = f" order by {quote(ID_COLUMN)}" if has_id else ""
    return warehouse.user_query(f"select {', '.join('g.' + quote(c) for c in columns)} "
                           f"from {warehouse.relation_sql(relation)} as g where {where}{order}")


def select_cohort(warehouse: WarehouseTarget, cohort: Cohort) -> pa.Table:
    """The cohort's rows of its index's mart (what ``cohorts.<name>`` holds once built),
    evaluated now on the warehouse's tables, sorted by the mart's key.

    Raises:
        UserError: the warehouse is not built (no marts), the index is not loaded,
            or the definition does not compile for it.
    """
    shape = INDICES[cohort.index]
    relations = warehouse.relations()
    _require(relations, "marts", shape.mart, "run `cohortdb build` first")
    _, schema = guppy_table(warehouse, cohort.index, relations)
    query = cohort_select(cohort, guppy_columns(schema), warehouse.dialect, warehouse_refs(warehouse))
    # the DICOM conditions are a user's SQL: run in the user's box
    return warehouse.user_query(f"select * from ({query}) as cohort order by {warehouse.quote(shape.mart_key)}")


def built_sizes(warehouse: WarehouseTarget, names: list[str]) -> dict[str, int]:
    """Row counts of the built cohort models among ``names`` (none when nothing is built)."""
    if not names or not warehouse.exists():
        return {}
    built = {r.name: r for r in warehouse.relations() if r.schema == "cohorts" and r.name in names}
    sizes: dict[str, int] = {}
    for name, relation in built.items():
        try:
            counted = warehouse.query(f"select count(*) from {warehouse.relation_sql(relation)}")
            sizes[name] = counted.column(0)[0].as_py()
        except UserError:
            continue
    return sizes
