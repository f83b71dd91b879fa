"""Every query the dashboard runs, and nothing else: plain functions of a warehouse reader
and parameters that return polars frames.

The warehouse is read through the seam (:meth:`WarehouseTarget.reader`): one read-only
reader per published version, kept while that version is live. A rebuild publishes a new
file; the next call sees a new :func:`~cohortdb.warehouse.base.WarehouseTarget.version`,
opens a reader of it, and every cached result of the old version is left behind. Nothing
here ever writes the warehouse or waits for a build.

SQL text is written here only from fixed strings and the allow-listed column names of
:mod:`dashboards.selection`; every value a user gives travels as a ``?`` parameter.
"""

from __future__ import annotations

import json
import os
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import polars as pl
import pyarrow as pa

from cohortdb import UserError
from cohortdb.cohorts.definitions import INDICES
from cohortdb.cohorts.definitions import NAME as COHORT_NAME
from cohortdb.cohorts.filter_sql import filter_to_sql, guppy_columns
from cohortdb.export import MANIFEST_COLUMNS, manifest_entries
from cohortdb.warehouse import Dialect, Target, WarehouseReader, WarehouseTarget, open_directory
from dashboards.dialects import DialectSql, sql_of
from dashboards.selection import (
    ENTITIES,
    NO_DATA,
    PATTERN_PARAM,
    Entity,
    Facet,
    HeaderSelection,
    Selection,
    header_condition,
    header_links_sql,
    to_params,
    where_sql,
)

SQL_TIMEOUT_S = 30.0
"""How long a query of the SQL page may run before it is stopped."""
SQL_MAX_ROWS = 10_000
"""How many rows of a query the SQL page keeps (it says when there were more)."""
PAGE_SIZE = 50
HISTOGRAM_BIN = 5
"""Width of the age histogram's bins, in years."""

P = ParamSpec("P")
R = TypeVar("R")


# --------------------------------------------------------------------------- readers and the cache

_lock = threading.Lock()
_readers: dict[Path, WarehouseReader] = {}
_cache: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
CACHE_ENTRIES = 512
_static: dict[tuple[Any, ...], Any] = {}


TARGET_ENV = "COHORTDB_TARGET"


def target(warehouse_dir: Path | str | None = None) -> WarehouseTarget:
    """The warehouse of a directory (default ``$COHORTDB_WAREHOUSE``, else ``./warehouse``) on
    the engine ``$COHORTDB_TARGET`` names (default DuckDB; BigQuery's datasets from the environment).

    Raises:
        UserError: an unknown engine, or BigQuery without a project or dataset prefix.
    """
    name = os.environ.get(TARGET_ENV) or Target.DUCKDB.value
    if name not in {t.value for t in Target}:
        raise UserError(f"${TARGET_ENV} is {name!r}: choose one of {', '.join(t.value for t in Target)}")
    return open_directory(warehouse_dir, name)


def reader(warehouse: WarehouseTarget) -> WarehouseReader | None:
    """The reader of the version published now (None when nothing is loaded); the same
    reader while that version stays live, a new one after a rebuild.

    Raises:
        UserError: the warehouse file cannot be opened.
    """
    version = warehouse.version()
    key = Path(warehouse.location)
    with _lock:
        current = _readers.get(key)
        if version is None:
            _readers.pop(key, None)
            return None
        if current is not None and current.version == version:
            return current
    opened = warehouse.reader()  # outside the lock: attaching a large file takes a moment
    with _lock:
        # the old reader is only dropped, not closed: another session may be mid-query on it
        _readers[key] = opened
        for stale in [k for k in _static if k[1] != opened.version and k[2] == id(current)]:
            del _static[stale]
    threading.Thread(target=_warm, args=(opened,), daemon=True, name="cohortdb-warm").start()
    return opened


def _warm(source: WarehouseReader) -> None:
    """Compute what is static for a new version (every tab's landing view), so the first
    visitor after a build does not wait for it; a failure is left to the page that asks."""
    try:
        for entity in ENTITIES:
            explore(source, Selection(entity=entity))
    except Exception:  # noqa: BLE001 - a page asking again shows the error
        return


def close_readers() -> None:
    """Close every reader and forget every cached result (tests; a process about to exit)."""
    with _lock:
        for opened in _readers.values():
            opened.close()
        _readers.clear()
        _cache.clear()
        _static.clear()


def forget_results() -> None:
    """Forget every cached result of a selection (the bench times queries cold); what is
    :func:`static` to a version stays."""
    with _lock:
        _cache.clear()


def static(function: Callable[P, R]) -> Callable[P, R]:
    """Keep ``function``'s results for as long as its reader's version is the live one (what
    does not depend on a selection: slider bounds, the tag list, each tab's landing view)."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        source = args[0]
        assert hasattr(source, "version")
        key = (function.__qualname__, source.version, id(source), tuple(_hashable(a) for a in args[1:]),
               tuple(sorted(kwargs.items())))
        with _lock:
            if key in _static:
                return _static[key]  # type: ignore[no-any-return]
        result = function(*args, **kwargs)
        with _lock:
            _static[key] = result
        return result

    return wrapper


def cached(function: Callable[P, R]) -> Callable[P, R]:
    """Keep ``function``'s results per warehouse version and arguments (its first argument
    is the reader; the others must be hashable). Results are shared: never mutate them."""

    @wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        source = args[0]
        assert hasattr(source, "version")
        key = (function.__qualname__, source.version, id(source), tuple(_hashable(a) for a in args[1:]),
               tuple(sorted(kwargs.items())))
        with _lock:
            if key in _cache:
                _cache.move_to_end(key)
                return _cache[key]  # type: ignore[no-any-return]
        result = function(*args, **kwargs)
        with _lock:
            _cache[key] = result
            while len(_cache) > CACHE_ENTRIES:
                _cache.popitem(last=False)
        return result

    return wrapper


def _hashable(argument: Any) -> Any:
    if isinstance(argument, Selection):
        return json.dumps(to_params(argument), sort_keys=True)
    return argument


def frame(table: pa.Table) -> pl.DataFrame:
    result = pl.from_arrow(table)
    assert isinstance(result, pl.DataFrame)
    return result


def run(source: WarehouseReader, sql: str, params: Sequence[Any] = ()) -> pl.DataFrame:
    """A query the dashboard wrote, as a polars frame."""
    return frame(source.query(sql, list(params)))


@cached
def relations(source: WarehouseReader) -> frozenset[str]:
    """``schema.name`` of every table and view of the version."""
    return frozenset(f"{r.schema}.{r.name}" for r in source.relations())


def missing(source: WarehouseReader, *names: str) -> list[str]:
    """Which of the relations ``names`` (``marts.imaging_studies`` …) the version lacks."""
    have = relations(source)
    return [name for name in names if name not in have]


# --------------------------------------------------------------------------- explore

@dataclass(frozen=True)
class FacetCounts:
    """What a facet shows: counts by value (categorical, ``no data`` included) or the
    range of values and how many rows have none (ranges)."""

    counts: pl.DataFrame
    """``value`` (text), ``n``: rows of the selection per value, biggest first."""
    lo: float | None = None
    hi: float | None = None
    no_data: int = 0


@dataclass(frozen=True)
class Explored:
    """One tab's numbers for a selection."""

    metrics: list[tuple[str, int]]
    facets: dict[str, FacetCounts]
    """Per facet: counts under every other facet's selection (its own ignored)."""
    charts: dict[str, pl.DataFrame]
    """Per facet (and ``__histogram``): counts under the whole selection."""


def guppy_filter_sql(source: WarehouseReader, selection: Selection) -> str | None:
    """The pasted guppy filter of ``selection`` as a query of the tab's mart keys (through
    the one translation of guppy filters); None without one.

    Raises:
        UserError: the tab has no guppy index, the index is not loaded, or the filter is invalid.
    """
    if not selection.guppy_filter:
        return None
    entity = ENTITIES[selection.entity]
    if entity.guppy_index is None:
        raise UserError(f"a guppy filter selects from a guppy index; the {entity.label.lower()} tab has none")
    try:
        parsed = json.loads(selection.guppy_filter)
    except json.JSONDecodeError as error:
        raise UserError(f"the guppy filter is not JSON: {error.msg} (line {error.lineno}, column {error.colno})") \
            from None
    table = f"raw.guppy_{entity.guppy_index}"
    if missing(source, table):
        raise UserError(f"no {table} in the warehouse: ingest the {entity.guppy_index} index to use guppy filters")
    columns = guppy_columns(_schema(source, table))
    condition = filter_to_sql(parsed, columns, source.dialect, relation_alias="g")
    return f"select {INDICES[entity.guppy_index].record_key} from {table} as g where {condition}"


def _where(source: WarehouseReader, selection: Selection, exclude: str | None = None) -> tuple[str, list[Any]]:
    """:func:`~dashboards.selection.where_sql` with the pasted guppy filter compiled and the
    header facet's matches looked up once per selection (not joined again in every query)."""
    links = None
    if selection.header is not None and selection.header.active and exclude != PATTERN_PARAM:
        links = header_links(source, selection.entity, selection.header)
    return where_sql(selection, exclude=exclude, guppy_filter_sql=guppy_filter_sql(source, selection),
                     header_links=links, dialect=source.dialect)


HEADER_LINKS_MAX = 100_000
"""Above this many matches the header facet stays a subquery (a parameter that long costs more)."""


@cached
def header_links(source: WarehouseReader, entity_name: str, header: HeaderSelection) -> tuple[str, ...] | None:
    """The tab's link values of the instances the header facet matches (None: too many)."""
    sql, params = header_links_sql(Selection(entity=entity_name, header=header), source.dialect)
    found = source.query(f"select distinct link from ({sql}) as h limit {HEADER_LINKS_MAX + 1}",
                         params).column(0).to_pylist()
    return tuple(found) if len(found) <= HEADER_LINKS_MAX else None


@cached
def _schema(source: WarehouseReader, table: str) -> pa.Schema:
    assert table in relations(source)  # a name from the allow-list, checked against the catalog
    return source.query(f"select * from {table} limit 0").schema


def _counts_sql(sql: DialectSql, facets: Sequence[Facet], histogram: Facet | None) -> str:
    """Counts by value of the categorical ``facets`` over the ``selected`` rows, as rows of
    ``facet, value, n``: the scalar ones (and the histogram's bins) in one pass with
    grouping sets, each list column in a pass of its own."""
    scalars = [f.column for f in facets if f.kind == "value"] + (["__bin"] if histogram is not None else [])
    parts = []
    if scalars:
        names = " ".join(f"when grouping({c}) = 0 then '{'__histogram' if c == '__bin' else c}'" for c in scalars)
        values = " ".join(f"when grouping({c}) = 0 then {sql.text(c)}" for c in scalars)
        sets = ", ".join(f"({c})" for c in scalars)
        parts.append(f"select case {names} end as facet, coalesce(case {values} end, '{NO_DATA}') as value, "
                     f"count(*) as n from selected group by grouping sets ({sets})")
    for facet in facets:
        if facet.kind == "list":
            column = facet.column
            parts.append(f"select '{column}' as facet, coalesce(v, '{NO_DATA}') as value, count(*) as n "
                         f"from {sql.items('selected', column)} group by v")
    return " union all ".join(parts)


def _selected_cte(sql: DialectSql, entity: Entity, where: str, facets: Sequence[Facet],
                  histogram: Facet | None) -> str:
    """The ``selected`` rows, with only the columns the counts read."""
    columns = [f"m.{f.column}" for f in facets if f.categorical]
    if histogram is not None:
        columns.append(f"{sql.as_integer(f'floor(m.{histogram.column} / {HISTOGRAM_BIN}) * {HISTOGRAM_BIN}')} "
                       "as __bin")
    materialized = sql.MATERIALIZED if where != "true" else ""
    return f"with selected as {materialized}(select {', '.join(columns)} from marts.{entity.mart} as m where {where}) "


def _ranges_sql(sql: DialectSql, facets: Sequence[Facet]) -> list[str]:
    """Per range facet: rows without a value, min and max (three aggregates each)."""
    parts = []
    for facet in facets:
        column = f"m.{facet.column}"
        if facet.kind == "range":
            parts += [sql.count_if(f"{column} is null"), sql.as_double(f"min({column})"),
                      sql.as_double(f"max({column})")]
        elif facet.kind == "list_range":
            parts += [sql.count_if(f"{column} is null or {sql.length(column)} = 0"),
                      sql.as_double(f"min({sql.list_min(column)})"), sql.as_double(f"max({sql.list_max(column)})")]
    return parts


def _range_counts(facets: Sequence[Facet], values: Sequence[Any]) -> dict[str, FacetCounts]:
    empty = pl.DataFrame(schema={"value": pl.String, "n": pl.Int64})
    return {facet.column: FacetCounts(counts=empty, no_data=int(values[3 * i] or 0), lo=values[3 * i + 1],
                                      hi=values[3 * i + 2]) for i, facet in enumerate(facets)}


def _histogram_facet(entity: Entity) -> Facet | None:
    return next((f for f in entity.facets if f.kind == "range" and f.column.startswith("age")), None)


def _split(rows: pl.DataFrame) -> tuple[dict[str, FacetCounts], dict[str, pl.DataFrame]]:
    facets: dict[str, FacetCounts] = {}
    charts: dict[str, pl.DataFrame] = {}
    for (name,), group in rows.group_by("facet", maintain_order=True):
        counts = group.select("value", pl.col("n").cast(pl.Int64)).sort(["n", "value"], descending=[True, False])
        if name == "__histogram":
            charts["__histogram"] = counts.filter(pl.col("value") != NO_DATA).with_columns(
                pl.col("value").cast(pl.Int64).alias("bin")).sort("bin")
        else:
            facets[str(name)] = FacetCounts(counts=counts)
            charts[str(name)] = counts
    return facets, charts


def explore(source: WarehouseReader, selection: Selection) -> Explored:
    """Metrics, facet counts (each ignoring its own selection) and chart data of a selection."""
    if not selection.active_facets() and selection.header is None and selection.guppy_filter is None:
        return _landing(source, selection.entity)
    return _explore(source, selection)


@static
def _landing(source: WarehouseReader, entity_name: str) -> Explored:
    """A tab with nothing selected: the same for every visitor of a version."""
    return _explore(source, Selection(entity=entity_name))


@cached
def _explore(source: WarehouseReader, selection: Selection) -> Explored:
    entity = ENTITIES[selection.entity]
    sql = sql_of(source.dialect)
    where, params = _where(source, selection)
    ranges = [f for f in entity.facets if not f.categorical]
    aggregates = [sql.as_integer(metric) for _, metric in entity.metrics] + _ranges_sql(sql, ranges)
    row = list(source.query(f"select {', '.join(aggregates)} from marts.{entity.mart} as m where {where}",
                            params).to_pylist()[0].values())
    metrics = [(label, int(row[i] or 0)) for i, (label, _) in enumerate(entity.metrics)]
    facets = _range_counts(ranges, row[len(entity.metrics):])
    histogram = _histogram_facet(entity)
    categorical = [f for f in entity.facets if f.categorical]
    counted, charts = _split(run(source, _selected_cte(sql, entity, where, categorical, histogram)
                                 + _counts_sql(sql, categorical, histogram), params))
    facets.update(counted)
    for column in selection.active_facets():  # each active facet again, without its own selection
        facet = entity.facet(column)
        if facet is None:
            continue
        own_where, own_params = _where(source, selection, exclude=column)
        if facet.categorical:
            own = run(source, _selected_cte(sql, entity, own_where, [facet], None) + _counts_sql(sql, [facet], None),
                      own_params)
            facets.update(_split(own)[0])
        else:
            values = list(source.query(f"select {', '.join(_ranges_sql(sql, [facet]))} from marts.{entity.mart} as m "
                                       f"where {own_where}", own_params).to_pylist()[0].values())
            facets.update(_range_counts([facet], values))
    return Explored(metrics=metrics, facets=facets, charts=charts)


@static
def range_bounds(source: WarehouseReader, entity_name: str) -> dict[str, tuple[float, float]]:
    """The whole mart's (min, max) of each range facet of a tab: the sliders' ends."""
    entity = ENTITIES[entity_name]
    ranges = [f for f in entity.facets if not f.categorical]
    if not ranges:
        return {}
    sql = sql_of(source.dialect)
    parts = []
    for facet in ranges:
        column = facet.column
        if facet.kind == "range":
            parts += [sql.as_double(f"min({column})"), sql.as_double(f"max({column})")]
        else:
            parts += [sql.as_double(f"min({sql.list_min(column)})"), sql.as_double(f"max({sql.list_max(column)})")]
    row = source.query(f"select {', '.join(parts)} from marts.{entity.mart}").to_pylist()[0]
    values = list(row.values())
    bounds = {}
    for index, facet in enumerate(ranges):
        lo, hi = values[2 * index], values[2 * index + 1]
        if lo is not None and hi is not None:
            bounds[facet.column] = (float(lo), float(hi))
    return bounds


@cached
def table_page(source: WarehouseReader, selection: Selection, page: int, page_size: int = PAGE_SIZE
               ) -> pl.DataFrame:
    """Rows ``(page-1)*page_size`` … of the selection (1-based pages), sorted by the mart's key."""
    entity = ENTITIES[selection.entity]
    where, params = _where(source, selection)
    columns = ", ".join(entity.table_columns)
    return run(source, f"select {columns} from marts.{entity.mart} as m where {where} "
                       f"order by m.{entity.key} limit ? offset ?",
               [*params, page_size, max(0, page - 1) * page_size])


def selection_rows(source: WarehouseReader, selection: Selection, columns: Sequence[str] | None = None
                   ) -> pl.DataFrame:
    """Every row of the selection (all the mart's columns unless ``columns``), sorted by key."""
    entity = ENTITIES[selection.entity]
    where, params = _where(source, selection)
    chosen = "*" if columns is None else ", ".join(c for c in columns if c in _mart_columns(source, entity.mart))
    return run(source, f"select {chosen} from marts.{entity.mart} as m where {where} order by m.{entity.key}",
               params)


@cached
def _mart_columns(source: WarehouseReader, mart: str) -> tuple[str, ...]:
    return tuple(_schema(source, f"marts.{mart}").names)


# --------------------------------------------------------------------------- the header facet

@static
def tag_choices(source: WarehouseReader) -> pl.DataFrame:
    """The tag path patterns of ``marts.tag_catalog``, most common first: ``tag_path_pattern``,
    ``keyword_path_pattern``, ``vr``, ``n_instances``, ``numeric`` (a range fits), ``label``."""
    return run(source, """
        select tag_path_pattern, keyword_path_pattern, vr, n_instances,
               min_value_number is not null and vr not in ('SQ') as numeric,
               coalesce(nullif(keyword_path_pattern, ''), tag_path_pattern) || '  ' || tag_path_pattern
                   || ' ' || vr as label
        from marts.tag_catalog
        where vr not in ('SQ', 'OB', 'OW', 'OD', 'OF', 'OL', 'OV', 'UN')
        order by n_instances desc, tag_path_pattern""")


@cached
def header_values(source: WarehouseReader, selection: Selection, limit: int = 200) -> FacetCounts:
    """Values of the header facet's element among the selection (ignoring the header facet's
    own values): ``value`` and ``n`` (rows of the tab having an instance with it), and the
    range of its numbers."""
    assert selection.header is not None
    entity = ENTITIES[selection.entity]
    where, params = _where(source, selection, exclude=PATTERN_PARAM)
    condition, condition_params = header_condition(HeaderSelection(pattern=selection.header.pattern),
                                                   dialect=source.dialect)
    link = entity.dicom_link
    sql = (f"with selected as {sql_of(source.dialect).MATERIALIZED}"
           f"(select m.{entity.link_column} as link from marts.{entity.mart} as m "
           f"where {where}), "
           f"found as (select e.value_text, e.value_number, i.{link} as link from raw.dicom_elements as e "
           f"join raw.dicom_instances as i on i.file_id = e.file_id "
           f"where {condition} and i.{link} in (select link from selected)) "
           "select coalesce(value_text, ?) as value, count(distinct link) as n, "
           "min(min(value_number)) over () as lo, max(max(value_number)) over () as hi "
           "from found group by 1 order by n desc, value limit ?")
    rows = run(source, sql, [*params, *condition_params, NO_DATA, limit])
    lo = rows["lo"][0] if rows.height else None
    hi = rows["hi"][0] if rows.height else None
    return FacetCounts(counts=rows.select("value", pl.col("n").cast(pl.Int64)), lo=lo, hi=hi)


# --------------------------------------------------------------------------- a study

def study(source: WarehouseReader, study_uid: str) -> dict[str, Any] | None:
    """The study's row of ``marts.imaging_studies`` (None when there is none)."""
    rows = source.query("select * from marts.imaging_studies where study_uid = ?", [study_uid]).to_pylist()
    return rows[0] if rows else None


def study_series(source: WarehouseReader, study_uid: str) -> pl.DataFrame:
    """The study's series held (``marts.imaging_series``), by series number."""
    return run(source, """
        select series_instance_uid, series_number, modality, body_part_examined, series_description,
               manufacturer, manufacturer_model_name, n_instances, slice_thickness, object_id
        from marts.imaging_series where study_instance_uid = ?
        order by series_number nulls last, series_instance_uid""", [study_uid])


def study_instances(source: WarehouseReader, study_uid: str) -> pl.DataFrame:
    """The study's instances as read (every file, copies included), by series and instance number."""
    return run(source, f"""
        select series_instance_uid, instance_number, sop_instance_uid, file_id, sop_class_uid,
               {sql_of(source.dialect).identifier("rows")}, columns, number_of_frames, n_elements, truncated,
               source_path, source_member
        from raw.dicom_instances where study_instance_uid = ?
        order by series_number nulls last, series_instance_uid, instance_number nulls last, file_id""",
               [study_uid])


def instance_elements(source: WarehouseReader, file_id: str) -> pl.DataFrame:
    """Every element of one instance (``raw.dicom_elements``), by tag path."""
    return run(source, """
        select tag_path, keyword_path, tag, keyword, vr, vm, depth, private_creator, value_text,
               value_number, value_length
        from raw.dicom_elements where file_id = ? order by tag_path""", [file_id])


def instance_source(source: WarehouseReader, file_id: str) -> dict[str, Any] | None:
    """Where an instance was read from (``source_path``, ``source_member``) and its pixel facts."""
    rows = source.query(f"""
        select source_path, source_member, transfer_syntax_uid, has_pixel_data, truncated,
               {sql_of(source.dialect).identifier("rows")}, columns, photometric_interpretation
        from raw.dicom_instances where file_id = ?""", [file_id]).to_pylist()
    return rows[0] if rows else None


# --------------------------------------------------------------------------- quality

@cached
def reconciliation_summary(source: WarehouseReader) -> pl.DataFrame:
    """``check_name``, ``studies``: disagreements between the commons and the headers."""
    return run(source, "select check_name, count(*) as studies from marts.reconciliation "
                       "group by 1 order by studies desc, check_name")


def reconciliation_rows(source: WarehouseReader, check_name: str, limit: int = 1000) -> pl.DataFrame:
    return run(source, "select study_uid, case_id, guppy_value, dicom_value from marts.reconciliation "
                       "where check_name = ? order by study_uid limit ?", [check_name, limit])


@cached
def phi_audit(source: WarehouseReader) -> pl.DataFrame:
    """The PS3.15 Basic Profile attributes present in the corpus, most widespread first."""
    return run(source, """
        select keyword, tag_path, attribute_name, basic_profile_action, n_instances_present,
               n_instances_non_empty, pct_instances_non_empty, modalities, tag_path_patterns
        from marts.phi_audit where is_present
        order by n_instances_non_empty desc, keyword""")


@cached
def error_summary(source: WarehouseReader) -> pl.DataFrame:
    """``severity``, ``error_type``, ``sources``: what ingest could not read, or read in part."""
    return run(source, "select severity, error_type, count(*) as sources from raw.dicom_errors "
                       "group by 1, 2 order by severity, sources desc, error_type")


def error_rows(source: WarehouseReader, error_type: str, severity: str, limit: int = 1000) -> pl.DataFrame:
    return run(source, "select source_path, source_member, message, ingested_at from raw.dicom_errors "
                       "where error_type = ? and severity = ? order by source_path, source_member limit ?",
               [error_type, severity, limit])


@cached
def truncated_instances(source: WarehouseReader, limit: int = 1000) -> pl.DataFrame:
    """Instances read in part: where the file ends, and which study they belong to."""
    return run(source, """
        select study_instance_uid, series_instance_uid, sop_instance_uid, truncated_at, file_size, n_elements,
               source_path, source_member
        from raw.dicom_instances where truncated
        order by study_instance_uid, source_path limit ?""", [limit])


@cached
def counts(source: WarehouseReader) -> dict[str, int]:
    """Rows of the main tables: what the header says about the warehouse."""
    row = source.query("""
        select (select count(*) from marts.imaging_studies) as studies,
               (select count(*) from marts.imaging_series) as series,
               (select count(*) from marts.patients) as cases,
               (select count(*) from raw.dicom_instances) as instances""").to_pylist()[0]
    return {k: int(v) for k, v in row.items()}


# --------------------------------------------------------------------------- SQL and exports

def user_sql(source: WarehouseReader, sql: str) -> tuple[pl.DataFrame, bool]:
    """A user's one SELECT: its first :data:`SQL_MAX_ROWS` rows and whether there were more.

    Raises:
        UserError: not one SELECT, forbidden (files, settings, writes), an error, or too slow.
    """
    table, more = source.user_query(sql, timeout_s=SQL_TIMEOUT_S, max_rows=SQL_MAX_ROWS)
    return frame(table), more


STUDIES_BY_MODALITY: dict[Dialect, str] = {
    "duckdb": "select modality, count(*) as studies\n"
              "from marts.imaging_studies, unnest(modalities) as t(modality)\n"
              "group by modality order by studies desc",
    "bigquery": "select modality, count(*) as studies\n"
                "from marts.imaging_studies, unnest(modalities) as modality\n"
                "group by modality order by studies desc",
}
"""The one example whose SQL differs by engine (how a list column is unnested)."""
SQL_LANGUAGE: dict[Dialect, str] = {"duckdb": "DuckDB SQL", "bigquery": "GoogleSQL (BigQuery)"}
SQL_EXAMPLES = {
    "Series by manufacturer and model": "select manufacturer, manufacturer_model_name, count(*) as series\n"
                                        "from marts.imaging_series group by manufacturer, manufacturer_model_name\n"
                                        "order by series desc",
    "kVp of chest radiographs": "select kvp, count(*) as instances from marts.dicom_instances\n"
                                "where modality in ('CR', 'DX') and body_part_examined = 'CHEST'\n"
                                "group by kvp order by kvp",
    "The tag catalog": "select tag_path_pattern, keyword_path_pattern, vr, n_instances, example_values\n"
                       "from marts.tag_catalog order by n_instances desc",
}


def sql_examples(dialect: Dialect) -> dict[str, str]:
    """The SQL page's example queries, by title, in ``dialect``."""
    return {"Studies by modality": STUDIES_BY_MODALITY[dialect], **SQL_EXAMPLES}


@dataclass(frozen=True)
class CohortDiff:
    """Two built cohorts compared on their key: how many keys are only in A, only in B and in
    both, and the first ``limit`` of each, sorted."""

    counts: dict[str, int]
    keys: dict[str, list[str]]


DIFF_SIDES = ("Only in A", "Only in B", "In both")


@cached
def cohort_diff(source: WarehouseReader, first: str, second: str, key: str, limit: int = 1000) -> CohortDiff:
    """Compare ``cohorts.<first>`` and ``cohorts.<second>`` (built) on ``key``, in one query.

    Raises:
        UserError: a name that is not a cohort's, or a cohort not built in this version.
    """
    for name in (first, second, key):
        if not COHORT_NAME.fullmatch(name):
            raise UserError(f"not a cohort or column name: {name!r}")
    for name in (first, second):
        if f"cohorts.{name}" not in relations(source):
            raise UserError(f"cohort {name!r} is not built in this warehouse: run `cohortdb build`")
    quoted = sql_of(source.dialect).identifier
    column, first_sql, second_sql = quoted(key), quoted(first), quoted(second)
    rows = source.query(f"""
        with a as (select distinct {column} as k from cohorts.{first_sql} where {column} is not null),
        b as (select distinct {column} as k from cohorts.{second_sql} where {column} is not null),
        sided as (
            select case when b.k is null then 0 when a.k is null then 1 else 2 end as side,
                   coalesce(a.k, b.k) as k
            from a full outer join b on a.k = b.k
        ),
        ranked as (
            select side, k, row_number() over (partition by side order by k) as n,
                   count(*) over (partition by side) as total
            from sided
        )
        select side, k, total from ranked where n <= ? order by side, n""", [limit]).to_pylist()
    counts = dict.fromkeys(DIFF_SIDES, 0)
    keys: dict[str, list[str]] = {side: [] for side in DIFF_SIDES}
    for row in rows:
        side = DIFF_SIDES[row["side"]]
        counts[side] = row["total"]
        keys[side].append(str(row["k"]))
    return CohortDiff(counts, keys)


def selection_manifest(source: WarehouseReader, selection: Selection) -> list[dict[str, object]]:
    """The data files of the selection as gen3 manifest entries (``gen3 drs-pull manifest``)."""
    entity = ENTITIES[selection.entity]
    where, params = _where(source, selection)
    link, column = {"studies": ("study_uid", "study_uid"), "series": ("series_instance_uid", "series_uid"),
                    "cases": ("case_id", "case_id"), "files": ("object_id", "object_id")}[entity.name]
    rows = source.query(f"""
        with chosen as (select distinct m.{link} as k from marts.{entity.mart} as m where {where})
        select {", ".join(f"f.{c}" for c in MANIFEST_COLUMNS)}
        from chosen join marts.data_files as f on f.{column} = chosen.k
        where f.object_id is not null
        order by f.object_id""", params)
    return manifest_entries(rows)


def selection_fhir(source: WarehouseReader, selection: Selection) -> bytes:
    """The FHIR R4 ImagingStudy resources of the selection's studies as NDJSON (UTF-8, one
    resource per line, by Study UID)."""
    entity = ENTITIES[selection.entity]
    where, params = _where(source, selection)
    link, column = {"studies": ("study_uid", "study_uid"), "series": ("study_instance_uid", "study_uid"),
                    "cases": ("case_id", "case_id"), "files": ("study_uid", "study_uid")}[entity.name]
    lines = source.query(f"""
        with chosen as (select distinct m.{link} as k from marts.{entity.mart} as m where {where})
        select r.resource_json || chr(10) as line
        from chosen join marts.fhir_imaging_studies as r on r.{column} = chosen.k
        order by r.study_uid""", params).column(0)
    return ndjson_bytes(lines)


def ndjson_bytes(lines: pa.ChunkedArray) -> bytes:
    """The text of a string column whose values end with a newline, as one UTF-8 bytes object
    (nulls skipped): a chunk's values are contiguous bytes, so none becomes a Python string."""
    parts = []
    for chunk in lines.chunks:
        chunk = chunk.drop_null().cast(pa.large_string())
        if len(chunk) == 0:
            continue
        _, offsets, data = chunk.buffers()
        first, last = (struct.unpack_from("<q", offsets, 8 * i)[0] for i in (chunk.offset, chunk.offset + len(chunk)))
        parts.append(memoryview(data)[first:last])
    return b"".join(parts)
