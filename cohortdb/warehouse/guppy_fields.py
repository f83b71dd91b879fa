"""The MIDRC guppy fields the dbt models read, and how a load makes sure they exist.

Guppy records are schemaless: a field no record of an ingest happened to carry
is simply absent from ``lake/guppy/<index>``, and a field MIDRC sends as a
list (``fn: set``) may arrive as a scalar from another export. The lake keeps
what was ingested; when loading, :func:`conforming_select` adds each declared
field that is missing as a typed null column, wraps a scalar into a one-item
list where a list is declared (Elasticsearch treats both alike), and adds
missing fields to the items of nested lists. Nothing present is dropped or
narrowed. Types follow the reference's MIDRC mapping (keyword → string,
long → int64, float → float64, arrays → lists).
"""

from __future__ import annotations

import pyarrow as pa

S, INT, F = pa.string(), pa.int64(), pa.float64()
LS, LI = pa.list_(S), pa.list_(INT)

ANNOTATION = pa.struct([
    ("_annotation_id", S), ("annotation_method", S), ("annotation_name", S),
    ("annotator_id", S), ("instance_uids", LS), ("midrc_mRALE_score", INT),
    ("airspace_disease_grading", S), ("class_covid19_pneumonia", S),
])

TS = pa.timestamp("us", tz="UTC")

_COMMON = [("_commons", S), ("_ingested_at", TS), ("_record", S), ("project_id", S),
           ("submitter_id", S), ("auth_resource_path", S)]

DECLARED: dict[str, pa.Schema] = {
    "imaging_study": pa.schema(_COMMON + [
        ("_imaging_study_id", S), ("case_ids", LS), ("study_uid", S), ("study_description", S),
        ("study_modality", LS), ("body_part_examined", LS), ("age_at_imaging", F),
        ("days_to_study", F), ("study_year", INT), ("days_from_study_to_pos_covid_test", LI),
        ("days_from_study_to_neg_covid_test", LI), ("loinc_code", S),
        ("loinc_long_common_name", S), ("loinc_method", S), ("loinc_system", S),
        ("sex", LS), ("race", LS), ("ethnicity", LS), ("age_at_index", pa.list_(F)),
        ("covid19_positive", LS), ("object_id", LS), ("data_format", LS),
        ("imaging_study_annotations", pa.list_(ANNOTATION)),
    ]),
    "case": pa.schema(_COMMON + [
        ("_case_id", S), ("sex", S), ("race", S), ("ethnicity", S), ("age_at_index", F),
        ("index_event", S), ("covid19_positive", S), ("zip", S), ("dataset_submitter_id", S),
        ("_imaging_studies_count", INT), ("data_file_count", INT), ("object_id", LS),
        ("imaging_study_annotations", pa.list_(ANNOTATION)),
    ]),
    "data_file": pa.schema(_COMMON + [
        ("_data_file_id", S), ("object_id", S), ("series_uid", S), ("study_uid", LS),
        ("case_ids", LS), ("file_name", S), ("file_size", INT), ("md5sum", S), ("data_format", S),
        ("data_type", S), ("data_category", S), ("source_node", S), ("modality", S),
        ("manufacturer", S), ("manufacturer_model_name", S), ("series_description", S),
        ("number_of_instances", INT),
    ]),
}
"""Per index: the fields the staging models read, with their MIDRC types."""


def duckdb_type(data_type: pa.DataType) -> str:
    """The DuckDB spelling of an Arrow type used in :data:`DECLARED`."""
    if pa.types.is_list(data_type):
        return duckdb_type(data_type.value_type) + "[]"
    if pa.types.is_struct(data_type):
        fields = ", ".join(f'"{f.name}" {duckdb_type(f.type)}' for f in data_type)
        return f"STRUCT({fields})"
    return {S: "VARCHAR", INT: "BIGINT", F: "DOUBLE", pa.bool_(): "BOOLEAN",
            TS: "TIMESTAMP WITH TIME ZONE"}[data_type]


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _conform(expression: str, actual: pa.DataType, declared: pa.DataType) -> str | None:
    """SQL turning ``expression`` of type ``actual`` into one that has ``declared``'s
    fields, or None when it can stay as it is."""
    if pa.types.is_list(declared) and not pa.types.is_list(actual):
        return f"case when {expression} is null then null else [{expression}] end"
    if (pa.types.is_list(declared) and pa.types.is_struct(declared.value_type)
            and pa.types.is_list(actual) and pa.types.is_struct(actual.value_type)):
        have = {f.name for f in actual.value_type}
        wanted = declared.value_type
        missing = [f for f in wanted if f.name not in have]
        if not missing:
            return None
        parts = [f"{_quote(f.name)} := _item.{_quote(f.name)}" for f in actual.value_type]
        parts += [f"{_quote(f.name)} := cast(null as {duckdb_type(f.type)})" for f in missing]
        return (f"list_transform({expression}, _item -> case when _item is null then null "
                f"else struct_pack({', '.join(parts)}) end)")
    return None


def conforming_select(index: str, actual: pa.Schema) -> str:
    """The select list that gives ``raw.guppy_<index>`` every declared field.

    Args:
        index: the guppy index name; unknown indices are loaded as they are.
        actual: the unified Arrow schema of the index's lake part files.
    """
    declared = DECLARED.get(index)
    if declared is None:
        return "*"
    replaced: list[str] = []
    for field in declared:
        if field.name in actual.names:
            expression = _conform(_quote(field.name), actual.field(field.name).type, field.type)
            if expression is not None:
                replaced.append(f"{expression} as {_quote(field.name)}")
    added = [f"cast(null as {duckdb_type(f.type)}) as {_quote(f.name)}"
             for f in declared if f.name not in actual.names]
    star = f"* replace ({', '.join(replaced)})" if replaced else "*"
    return ", ".join([star] + added)


def loaded_type(actual: pa.DataType | None, declared: pa.DataType) -> pa.DataType:
    """The type a declared field has after :func:`conforming_select` (None: missing)."""
    if actual is None:
        return declared
    if pa.types.is_list(declared) and not pa.types.is_list(actual):
        return pa.list_(actual)
    if (pa.types.is_list(declared) and pa.types.is_struct(declared.value_type)
            and pa.types.is_list(actual) and pa.types.is_struct(actual.value_type)):
        have = {f.name for f in actual.value_type}
        extra = [f for f in declared.value_type if f.name not in have]
        return pa.list_(pa.struct(list(actual.value_type) + extra))
    return actual


def loaded_schema(index: str, actual: pa.Schema) -> pa.Schema:
    """The schema of ``raw.guppy_<index>`` once loaded from lake files of schema ``actual``."""
    declared = DECLARED.get(index, pa.schema([]))
    fields = [pa.field(f.name, loaded_type(f.type, declared.field(f.name).type)
                       if f.name in declared.names else f.type) for f in actual]
    fields += [f for f in declared if f.name not in actual.names]
    return pa.schema(fields)
