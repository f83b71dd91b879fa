"""The explorer's selection, pure: which facets each tab has, the URL query parameters
that hold a selection, and the SQL ``where`` clause (with its parameters) it means.

Nothing here touches Streamlit or a database. Column names and SQL expressions
come only from the fixed tables below (:data:`ENTITIES`); values from a user (the
URL, a widget) only ever travel as query parameters.

A selection lives in the URL as parameters named after the columns of the tab's
mart: ``?sex=Male&modalities=CR&modalities=DX&age_at_imaging=40..60``. A
categorical facet matches a row whose value is one of those given (a list column
when any of its elements is); ``no data`` matches a missing value (null or an
empty list). A range is ``lo..hi`` (inclusive) and may come with ``no data``.
The header-attribute facet is ``tag_path_pattern`` (from ``marts.tag_catalog``)
with ``value_text`` values or a ``value_number`` range.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from cohortdb.warehouse.base import Dialect
from dashboards.dialects import sql_of

NO_DATA = "no data"
"""The bucket of rows without a value (guppy's and MIDRC's name for it)."""
RANGE_SEPARATOR = ".."
TAB_PARAM = "tab"
PATTERN_PARAM = "tag_path_pattern"
VALUE_TEXT_PARAM = "value_text"
VALUE_NUMBER_PARAM = "value_number"
FILTER_PARAM = "filter"
"""A guppy filter (JSON) that the explorer applies as well: one pasted on the cohorts page."""

FacetKind = Literal["value", "list", "range", "list_range"]


@dataclass(frozen=True)
class Facet:
    """A filterable column of a mart.

    ``kind``: ``value`` (a scalar, categorical), ``list`` (a list column, categorical:
    any element), ``range`` (a number), ``list_range`` (a list of numbers: any element
    in the range).
    """

    column: str
    label: str
    kind: FacetKind
    group: str = ""
    guppy_field: str | None = None
    """The guppy field of the tab's index that holds the same values (for guppy filters)."""
    guppy_nested: str | None = None
    """The nested path of ``guppy_field`` when it lives in a list of structs."""
    dicom_column: str | None = None
    """The ``marts.dicom_instances`` column it comes from, when the headers are its source."""

    @property
    def categorical(self) -> bool:
        return self.kind in ("value", "list")


@dataclass(frozen=True)
class Entity:
    """One tab of the explorer: a mart, its key and facets, and what its table shows."""

    name: str
    label: str
    mart: str
    key: str
    facets: tuple[Facet, ...]
    table_columns: tuple[str, ...]
    metrics: tuple[tuple[str, str], ...]
    """(label, SQL aggregate over the selected rows); the first is the tab's own count."""
    dicom_link: str
    """The ``raw.dicom_instances`` column matching the mart's ``link_column``."""
    link_column: str
    study_column: str | None
    """The column holding a study's UID (a row opens that study), None if there is none."""
    guppy_index: str | None

    def facet(self, column: str) -> Facet | None:
        for facet in self.facets:
            if facet.column == column:
                return facet
        return None


_METRIC_INSTANCES = ("Instances", "coalesce(sum(n_instances), 0)")

ENTITIES: dict[str, Entity] = {
    "studies": Entity(
        name="studies", label="Studies", mart="imaging_studies", key="study_uid",
        facets=(
            Facet("sex", "Sex", "value", "Demographics", guppy_field="sex"),
            Facet("race", "Race", "value", "Demographics", guppy_field="race"),
            Facet("ethnicity", "Ethnicity", "value", "Demographics", guppy_field="ethnicity"),
            Facet("age_at_imaging", "Age at imaging", "range", "Demographics", guppy_field="age_at_imaging",
                  dicom_column="patient_age_years"),
            Facet("covid19_positive", "COVID-19 positive", "value", "Demographics", guppy_field="covid19_positive"),
            Facet("modalities", "Modality", "list", "Study", guppy_field="study_modality", dicom_column="modality"),
            Facet("body_parts_examined", "Body part", "list", "Study", guppy_field="body_part_examined",
                  dicom_column="body_part_examined"),
            Facet("study_year", "Study year", "value", "Study", guppy_field="study_year"),
            Facet("days_from_study_to_pos_covid_test", "Days to positive COVID test", "list_range", "Study",
                  guppy_field="days_from_study_to_pos_covid_test"),
            Facet("loinc_system", "LOINC system", "value", "LOINC", guppy_field="loinc_system"),
            Facet("loinc_long_common_name", "LOINC name", "value", "LOINC", guppy_field="loinc_long_common_name"),
            Facet("midrc_mrale_score", "mRALE score", "range", "Annotations", guppy_field="midrc_mRALE_score",
                  guppy_nested="imaging_study_annotations"),
            Facet("annotation_methods", "Annotation method", "list", "Annotations",
                  guppy_field="annotation_method", guppy_nested="imaging_study_annotations"),
            Facet("manufacturers", "Manufacturer", "list", "Equipment", dicom_column="manufacturer"),
            Facet("project_id", "Project", "value", "Provenance", guppy_field="project_id"),
            Facet("in_dicom", "Headers held", "value", "Provenance"),
            Facet("in_guppy", "In the commons", "value", "Provenance"),
        ),
        table_columns=("study_uid", "case_id", "sex", "age_at_imaging", "modalities", "body_parts_examined",
                       "study_date", "study_description", "n_series", "n_instances", "midrc_mrale_score",
                       "in_guppy", "in_dicom"),
        metrics=(("Studies", "count(*)"), ("Cases", "count(distinct case_id)"),
                 ("Series", "coalesce(sum(n_series), 0)"), _METRIC_INSTANCES),
        dicom_link="study_instance_uid", link_column="study_uid", study_column="study_uid",
        guppy_index="imaging_study",
    ),
    "series": Entity(
        name="series", label="Series", mart="imaging_series", key="series_instance_uid",
        facets=(
            Facet("modality", "Modality", "value", "Series", dicom_column="modality"),
            Facet("body_part_examined", "Body part", "value", "Series", dicom_column="body_part_examined"),
            Facet("view_position", "View position", "value", "Series", dicom_column="view_position"),
            Facet("manufacturer", "Manufacturer", "value", "Equipment", dicom_column="manufacturer"),
            Facet("manufacturer_model_name", "Model", "value", "Equipment",
                  dicom_column="manufacturer_model_name"),
            Facet("slice_thickness", "Slice thickness (mm)", "range", "Acquisition",
                  dicom_column="slice_thickness"),
            Facet("kvp_max", "kVp", "range", "Acquisition", dicom_column="kvp"),
            Facet("magnetic_field_strength", "Field strength (T)", "range", "Acquisition",
                  dicom_column="magnetic_field_strength"),
            Facet("pixel_rows", "Rows", "range", "Image", dicom_column="pixel_rows"),
            Facet("n_instances", "Instances in series", "range", "Image"),
            Facet("transfer_syntax_uids", "Transfer syntax", "list", "Image", dicom_column="transfer_syntax_uid"),
            Facet("in_guppy", "In the commons", "value", "Provenance"),
        ),
        table_columns=("series_instance_uid", "study_instance_uid", "patient_id", "modality", "body_part_examined",
                       "series_description", "manufacturer", "manufacturer_model_name", "n_instances",
                       "slice_thickness", "object_id"),
        metrics=(("Series", "count(*)"), ("Studies", "count(distinct study_instance_uid)"),
                 ("Cases", "count(distinct patient_id)"), _METRIC_INSTANCES),
        dicom_link="series_instance_uid", link_column="series_instance_uid", study_column="study_instance_uid",
        guppy_index=None,
    ),
    "cases": Entity(
        name="cases", label="Cases", mart="patients", key="case_id",
        facets=(
            Facet("sex", "Sex", "value", "Demographics", guppy_field="sex"),
            Facet("race", "Race", "value", "Demographics", guppy_field="race"),
            Facet("ethnicity", "Ethnicity", "value", "Demographics", guppy_field="ethnicity"),
            Facet("age_at_index", "Age at index", "range", "Demographics", guppy_field="age_at_index"),
            Facet("covid19_positive", "COVID-19 positive", "value", "Demographics", guppy_field="covid19_positive"),
            Facet("index_event", "Index event", "value", "Demographics", guppy_field="index_event"),
            Facet("n_studies", "Studies per case", "range", "Imaging"),
            Facet("project_id", "Project", "value", "Provenance", guppy_field="project_id"),
            Facet("in_dicom", "Headers held", "value", "Provenance"),
        ),
        table_columns=("case_id", "sex", "race", "ethnicity", "age_at_index", "covid19_positive", "index_event",
                       "n_studies", "n_series", "n_instances", "first_study_date", "last_study_date"),
        metrics=(("Cases", "count(*)"), ("Studies", "coalesce(sum(n_studies), 0)"),
                 ("Series", "coalesce(sum(n_series), 0)"), _METRIC_INSTANCES),
        dicom_link="patient_id", link_column="case_id", study_column=None, guppy_index="case",
    ),
    "files": Entity(
        name="files", label="Files", mart="data_files", key="object_id",
        facets=(
            Facet("data_format", "Data format", "value", "File", guppy_field="data_format"),
            Facet("data_type", "Data type", "value", "File", guppy_field="data_type"),
            Facet("data_category", "Data category", "value", "File", guppy_field="data_category"),
            Facet("source_node", "Source node", "value", "File", guppy_field="source_node"),
            Facet("modality", "Modality", "value", "Series", guppy_field="modality"),
            Facet("manufacturer", "Manufacturer", "value", "Series", guppy_field="manufacturer"),
            Facet("number_of_instances", "Instances", "range", "Series", guppy_field="number_of_instances"),
            Facet("file_size_bytes", "File size (bytes)", "range", "File", guppy_field="file_size"),
            Facet("project_id", "Project", "value", "Provenance", guppy_field="project_id"),
            Facet("in_dicom", "Headers held", "value", "Provenance"),
        ),
        table_columns=("object_id", "file_name", "study_uid", "series_uid", "case_id", "data_format", "data_type",
                       "modality", "file_size_bytes", "md5sum", "in_dicom"),
        metrics=(("Files", "count(*)"), ("Studies", "count(distinct study_uid)"),
                 ("Cases", "count(distinct case_id)"), ("Bytes", "coalesce(sum(file_size_bytes), 0)")),
        dicom_link="series_instance_uid", link_column="series_uid", study_column="study_uid",
        guppy_index="data_file",
    ),
}
DEFAULT_ENTITY = "studies"


@dataclass(frozen=True)
class Range:
    """An inclusive numeric range; either end may be open (None)."""

    lo: float | None
    hi: float | None

    def text(self) -> str:
        return f"{_number_text(self.lo)}{RANGE_SEPARATOR}{_number_text(self.hi)}"


@dataclass(frozen=True)
class FacetSelection:
    """What one facet keeps: ``values`` (categorical), or ``range``; ``no_data`` adds the
    rows without a value (alone, it keeps only those)."""

    values: tuple[str, ...] = ()
    range: Range | None = None
    no_data: bool = False

    @property
    def active(self) -> bool:
        return bool(self.values or self.range or self.no_data)


@dataclass(frozen=True)
class HeaderSelection:
    """The header-attribute facet: a tag path pattern of ``marts.tag_catalog`` and the
    element values (``value_text``) or the numeric range (``value_number``) to match."""

    pattern: str
    values: tuple[str, ...] = ()
    range: Range | None = None

    @property
    def active(self) -> bool:
        return bool(self.values or self.range)


@dataclass(frozen=True)
class Selection:
    """The explorer's state for one tab: facet selections by column, the header facet,
    and a pasted guppy filter (JSON text, applied as it is)."""

    entity: str = DEFAULT_ENTITY
    facets: Mapping[str, FacetSelection] = field(default_factory=dict)
    header: HeaderSelection | None = None
    guppy_filter: str | None = None

    def active_facets(self) -> list[str]:
        return [column for column, chosen in self.facets.items() if chosen.active]


def _number_text(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def parse_range(text: str) -> Range | None:
    """``"40..60"``, ``"..60"``, ``"40.."`` or ``"-5..2.5"`` as a :class:`Range`; None if it is not one."""
    if RANGE_SEPARATOR not in text:
        return None
    lo_text, _, hi_text = text.partition(RANGE_SEPARATOR)
    try:
        lo = float(lo_text) if lo_text.strip() else None
        hi = float(hi_text) if hi_text.strip() else None
    except ValueError:
        return None
    if any(v is not None and not math.isfinite(v) for v in (lo, hi)) or (lo is None and hi is None):
        return None
    if lo is not None and hi is not None and lo > hi:
        lo, hi = hi, lo
    return Range(lo, hi)


def entity_of(params: Mapping[str, Sequence[str]]) -> Entity:
    """The tab named by the ``tab`` parameter (the studies tab when absent or unknown)."""
    names = params.get(TAB_PARAM) or []
    return ENTITIES.get(names[-1] if names else DEFAULT_ENTITY, ENTITIES[DEFAULT_ENTITY])


def parse_params(params: Mapping[str, Sequence[str]]) -> tuple[Selection, list[str]]:
    """The selection a URL's query parameters hold (``?c=a&c=b`` gives ``c: [a, b]``), and a
    note for each parameter that was ignored (unknown, or not a value its facet takes)."""
    entity = entity_of(params)
    ignored: list[str] = []
    facets: dict[str, FacetSelection] = {}
    for name, values in params.items():
        if name in (TAB_PARAM, PATTERN_PARAM, VALUE_TEXT_PARAM, VALUE_NUMBER_PARAM, FILTER_PARAM):
            continue
        facet = entity.facet(name)
        if facet is None:
            ignored.append(f"{name}: not a facet of the {entity.label.lower()} tab")
            continue
        no_data = NO_DATA in values
        if facet.categorical:
            kept = tuple(dict.fromkeys(v for v in values if v != NO_DATA))
            facets[name] = FacetSelection(values=kept, no_data=no_data)
            continue
        ranges = [parse_range(v) for v in values if v != NO_DATA]
        if any(r is None for r in ranges):
            ignored.append(f"{name}: a range is written lo..hi")
        found = [r for r in ranges if r is not None]
        facets[name] = FacetSelection(range=found[-1] if found else None, no_data=no_data)
    header = None
    patterns = params.get(PATTERN_PARAM) or []
    if patterns:
        number = [r for r in (parse_range(v) for v in params.get(VALUE_NUMBER_PARAM) or []) if r is not None]
        header = HeaderSelection(pattern=patterns[-1], values=tuple(dict.fromkeys(params.get(VALUE_TEXT_PARAM) or [])),
                                 range=number[-1] if number else None)
    filters = params.get(FILTER_PARAM) or []
    selection = Selection(entity=entity.name, facets={k: v for k, v in facets.items() if v.active},
                          header=header, guppy_filter=filters[-1] if filters and filters[-1].strip() else None)
    return selection, ignored


def to_params(selection: Selection) -> dict[str, list[str]]:
    """The query parameters of a selection (what :func:`parse_params` reads back)."""
    params: dict[str, list[str]] = {}
    if selection.entity != DEFAULT_ENTITY:
        params[TAB_PARAM] = [selection.entity]
    entity = ENTITIES[selection.entity]
    for facet in entity.facets:  # in the facets' order, so equal selections give equal URLs
        chosen = selection.facets.get(facet.column)
        if chosen is None or not chosen.active:
            continue
        values = list(chosen.values)
        if chosen.range is not None:
            values.append(chosen.range.text())
        if chosen.no_data:
            values.append(NO_DATA)
        params[facet.column] = values
    if selection.header is not None:
        params[PATTERN_PARAM] = [selection.header.pattern]
        if selection.header.values:
            params[VALUE_TEXT_PARAM] = list(selection.header.values)
        if selection.header.range is not None:
            params[VALUE_NUMBER_PARAM] = [selection.header.range.text()]
    if selection.guppy_filter:
        params[FILTER_PARAM] = [selection.guppy_filter]
    return params


# --------------------------------------------------------------------------- SQL

def missing_sql(facet: Facet, alias: str = "m", dialect: Dialect = "duckdb") -> str:
    """True where the facet has no value (null, or an empty list)."""
    column = f"{alias}.{facet.column}"
    if facet.kind in ("list", "list_range"):
        return f"({column} is null or {sql_of(dialect).length(column)} = 0)"
    return f"{column} is null"


def _facet_sql(facet: Facet, chosen: FacetSelection, alias: str, dialect: Dialect) -> tuple[str, list[Any]]:
    sql = sql_of(dialect)
    column = f"{alias}.{facet.column}"
    parts: list[str] = []
    params: list[Any] = []
    if chosen.values:
        parts.append(sql.any_is_one_of(column) if facet.kind == "list" else sql.is_one_of(column))
        params.append(list(chosen.values))
    if chosen.range is not None:
        between = sql.any_between if facet.kind == "list_range" else sql.between
        condition, ends = between(column, chosen.range.lo, chosen.range.hi)
        parts.append(condition)
        params += ends
    if chosen.no_data:
        parts.append(missing_sql(facet, alias, dialect))
    return "(" + " or ".join(parts) + ")", params


def pattern_regex(pattern: str) -> str:
    """The regular expression of the tag paths a ``tag_path_pattern`` stands for
    (``*`` is any item index)."""
    return "^" + re.escape(pattern).replace(r"\*", "[0-9]+") + "$"


def header_condition(header: HeaderSelection, alias: str = "e", dialect: Dialect = "duckdb"
                     ) -> tuple[str, list[Any]]:
    """The condition on ``raw.dicom_elements`` (as ``alias``) of an element matching ``header``."""
    sql = sql_of(dialect)
    parts = [sql.full_match(f"{alias}.tag_path")]
    params: list[Any] = [pattern_regex(header.pattern)]
    if "*" not in header.pattern:  # a fixed path: the cheap equality first
        parts.insert(0, f"{alias}.tag_path = ?")
        params.insert(0, header.pattern)
    if header.values:
        parts.append(sql.is_one_of(f"{alias}.value_text"))
        params.append(list(header.values))
    if header.range is not None:
        condition, ends = sql.between(f"{alias}.value_number", header.range.lo, header.range.hi)
        parts.append(condition)
        params += ends
    return " and ".join(parts), params


def header_instances_sql(header: HeaderSelection, dialect: Dialect = "duckdb") -> tuple[str, list[Any]]:
    """A query of the ``file_id``s of instances holding an element that matches ``header``."""
    condition, params = header_condition(header, dialect=dialect)
    return f"select e.file_id from raw.dicom_elements as e where {condition}", params


def header_links_sql(selection: Selection, dialect: Dialect = "duckdb") -> tuple[str, list[Any]]:
    """A query of the tab's link values (``study_instance_uid``, …) of the instances the
    header facet matches (which must be set), as its one column ``link``."""
    assert selection.header is not None
    instances, values = header_instances_sql(selection.header, dialect)
    link = ENTITIES[selection.entity].dicom_link
    return f"select i.{link} as link from raw.dicom_instances as i where i.file_id in ({instances})", values


def where_sql(selection: Selection, *, exclude: str | None = None, alias: str = "m",
              guppy_filter_sql: str | None = None, header_links: Sequence[str] | None = None,
              dialect: Dialect = "duckdb") -> tuple[str, list[Any]]:
    """The ``where`` condition (over the tab's mart as ``alias``) and its parameters.

    Args:
        exclude: a facet column (or :data:`PATTERN_PARAM`) left out: its own counts
            ignore its own selection, as guppy's ``filterSelf: false``.
        guppy_filter_sql: the pasted guppy filter compiled by the one translation
            (:mod:`cohortdb.cohorts.filter_sql`) over its raw table as ``g``, with
            the key expression to match: a subquery giving the mart's link values.
        header_links: the mart's link values of the instances the header facet matches,
            when the caller has them (one parameter instead of a join of every instance).
        dialect: the engine's SQL dialect.
    """
    entity = ENTITIES[selection.entity]
    parts: list[str] = []
    params: list[Any] = []
    for facet in entity.facets:
        chosen = selection.facets.get(facet.column)
        if chosen is None or not chosen.active or facet.column == exclude:
            continue
        sql, values = _facet_sql(facet, chosen, alias, dialect)
        parts.append(sql)
        params += values
    if selection.header is not None and selection.header.active and exclude != PATTERN_PARAM:
        if header_links is not None:
            parts.append(sql_of(dialect).in_many(f"{alias}.{entity.link_column}"))
            params.append(list(header_links))
        else:
            links, values = header_links_sql(selection, dialect)
            parts.append(f"{alias}.{entity.link_column} in ({links})")
            params += values
    if guppy_filter_sql:
        parts.append(f"{alias}.{entity.key} in ({guppy_filter_sql})")
    return (" and ".join(parts) if parts else "true"), params


# --------------------------------------------------------------------------- guppy filters

def sql_literal(text: str) -> str:
    """A SQL string literal (quotes doubled): only for cohort files, whose DICOM conditions
    are SQL text by design and run in the user's read-only box."""
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class GuppyForm:
    """A selection as a cohort definition: the guppy ``filter`` of the tab's index,
    ``dicom_conditions`` for facets the headers hold, and the facets neither can say."""

    index: str | None
    filter: dict[str, Any]
    dicom_conditions: list[str]
    left_out: list[str]


def _clause(field_name: str, chosen: FacetSelection) -> dict[str, Any]:
    clauses: list[dict[str, Any]] = []
    values: list[Any] = list(chosen.values)
    if values or (chosen.no_data and chosen.range is None):
        clauses.append({"IN": {field_name: [*values, *([NO_DATA] if chosen.no_data else [])]}})
    if chosen.range is not None:
        bounds: list[dict[str, Any]] = []
        if chosen.range.lo is not None:
            bounds.append({">=": {field_name: chosen.range.lo}})
        if chosen.range.hi is not None:
            bounds.append({"<=": {field_name: chosen.range.hi}})
        ranged: dict[str, Any] = bounds[0] if len(bounds) == 1 else {"AND": bounds}
        clauses.append({"OR": [ranged, {"IN": {field_name: [NO_DATA]}}]} if chosen.no_data else ranged)
    return clauses[0] if len(clauses) == 1 else {"OR": clauses}


def _between(column: str, bounds: Range) -> str:
    ends = [f"{column} >= {_number_text(bounds.lo)}"] if bounds.lo is not None else []
    ends += [f"{column} <= {_number_text(bounds.hi)}"] if bounds.hi is not None else []
    return " and ".join(ends)


def to_guppy(selection: Selection) -> GuppyForm:
    """The selection as a cohort definition's parts (see :class:`GuppyForm`).

    Facets with a guppy field become guppy clauses (nested ones inside ``nested``);
    facets the headers hold become DICOM conditions on ``marts.dicom_instances`` (the
    header facet a condition on ``file_id``); the rest are listed in ``left_out``.
    A pasted guppy filter is kept as a clause of its own.
    """
    entity = ENTITIES[selection.entity]
    clauses: list[dict[str, Any]] = []
    conditions: list[str] = []
    left_out: list[str] = []
    for facet in entity.facets:
        chosen = selection.facets.get(facet.column)
        if chosen is None or not chosen.active:
            continue
        if facet.guppy_field and entity.guppy_index:
            clause = _clause(facet.guppy_field, chosen)
            clauses.append({"nested": {"path": facet.guppy_nested, **clause}} if facet.guppy_nested else clause)
        elif facet.dicom_column and entity.guppy_index and not chosen.no_data:
            column = facet.dicom_column
            parts = []
            if chosen.values:
                parts.append(f"{column} in ({', '.join(sql_literal(v) for v in chosen.values)})")
            if chosen.range is not None:
                parts.append(_between(column, chosen.range))
            conditions.append(" or ".join(parts) if len(parts) > 1 else parts[0])
        else:
            left_out.append(facet.label)
    if selection.header is not None and selection.header.active and entity.guppy_index:
        header = selection.header
        pieces = [f"e.tag_path = {sql_literal(header.pattern)}"] if "*" not in header.pattern else []
        pieces.append(f"regexp_full_match(e.tag_path, {sql_literal(pattern_regex(header.pattern))})")
        if header.values:
            pieces.append(f"e.value_text in ({', '.join(sql_literal(v) for v in header.values)})")
        if header.range is not None:
            pieces.append(_between("e.value_number", header.range))
        conditions.append("file_id in (select e.file_id from raw.dicom_elements as e where "
                          + " and ".join(pieces) + ")")
    elif selection.header is not None and selection.header.active:
        left_out.append("header attribute")
    if selection.guppy_filter:
        try:
            clauses.append(json.loads(selection.guppy_filter))
        except json.JSONDecodeError:
            left_out.append("guppy filter (not JSON)")
    guppy_filter: dict[str, Any] = {} if not clauses else clauses[0] if len(clauses) == 1 else {"AND": clauses}
    return GuppyForm(index=entity.guppy_index, filter=guppy_filter, dicom_conditions=conditions, left_out=left_out)


_EQUALS = ("=", "eq", "EQ", "IN", "in")
_BOUNDS = {">=": "lo", "gte": "lo", "GTE": "lo", ">": "lo", "gt": "lo", "GT": "lo",
           "<=": "hi", "lte": "hi", "LTE": "hi", "<": "hi", "lt": "hi", "LT": "hi"}


def from_guppy(entity_name: str, guppy_filter: Mapping[str, Any]) -> Selection | None:
    """The facet selection a guppy filter means, when it is an ``AND`` of equality and
    range clauses on the tab's facets (the MIDRC explorer's filters are); None otherwise
    (the filter is then applied as it is)."""
    entity = ENTITIES[entity_name]
    by_field = {(f.guppy_nested, f.guppy_field): f for f in entity.facets if f.guppy_field}
    clauses = _conjuncts(guppy_filter)
    if clauses is None:
        return None
    values: dict[str, list[str]] = {}
    ranges: dict[str, dict[str, float]] = {}
    for nested, clause in clauses:
        ((operator, body),) = clause.items()
        if not isinstance(body, dict) or len(body) != 1:
            return None
        ((field_name, value),) = body.items()
        facet = by_field.get((nested, field_name))
        if facet is None:
            return None
        if operator in _EQUALS and facet.categorical:
            values.setdefault(facet.column, []).extend(str(v) for v in (value if isinstance(value, list) else [value]))
        elif operator in _BOUNDS and not facet.categorical and isinstance(value, int | float):
            ranges.setdefault(facet.column, {})[_BOUNDS[operator]] = float(value)
        else:
            return None
    facets: dict[str, FacetSelection] = {}
    for column, chosen in values.items():
        facets[column] = FacetSelection(values=tuple(v for v in chosen if v != NO_DATA), no_data=NO_DATA in chosen)
    for column, bounds in ranges.items():
        facets[column] = FacetSelection(range=Range(bounds.get("lo"), bounds.get("hi")))
    return Selection(entity=entity.name, facets=facets)


def _conjuncts(node: Any, nested: str | None = None) -> list[tuple[str | None, dict[str, Any]]] | None:
    if not isinstance(node, dict) or len(node) != 1:
        return None if node else []
    ((operator, body),) = node.items()
    if operator in ("AND", "and"):
        if not isinstance(body, list):
            return None
        found: list[tuple[str | None, dict[str, Any]]] = []
        for child in body:
            more = _conjuncts(child, nested)
            if more is None:
                return None
            found += more
        return found
    if operator == "nested" and isinstance(body, dict) and nested is None:
        path = body.get("path")
        rest = {k: v for k, v in body.items() if k != "path"}
        return _conjuncts(rest, str(path)) if isinstance(path, str) else None
    if operator in _EQUALS or operator in _BOUNDS:
        return [(nested, node)]
    return None
