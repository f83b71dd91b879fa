"""The pure guppy flattener: records → (schema, columns)."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ingest.sources.guppy.flatten import flatten
from ingest.sources.guppy.schema import join

WHEN = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)

# Shapes from seed 000: imaging_study has int lists, data_file has string lists.
STUDY = {
    "submitter_id": "2.16.840.1.114274.1818.514395397152296418914049330214008864917",
    "case_ids": ["10008204-RwVMPdTu0EOZV6oE7Rml5Q"],
    "age_at_imaging": 71,
    "days_from_study_to_pos_covid_test": [28, 0],
    "study_year_shifted": "true",
    "imaging_study_annotations": [
        {
            "annotation_method": "Retrospective_auto",
            "annotator_id": "SIFT",
            "instance_uids": ["2.16.840.1.114274.1818.572321565400986639059515"],
            "_annotation_id": "7349a919-2092-46a8-9452-eb8960898c40",
        },
        {"midrc_mRALE_score": 24, "_annotation_id": "463b7844-7616-4786-a8f0-f10161bc6ea0"},
    ],
}
FILE_LIKE = {
    "submitter_id": "s2",
    "age_at_imaging": 70.5,
    "days_from_study_to_pos_covid_test": ["0", "28"],
    "study_year_shifted": ["true"],
    "imaging_study_annotations": [{"midrc_mRALE_score": "n/a"}],
    "extra": None,
}


def table(records: list[dict[str, Any]]) -> pa.Table:
    schema, columns = flatten(records, commons="https://x", ingested_at=WHEN)
    return pa.Table.from_arrays(columns, schema=schema)


def test_one_row_per_record_typed_columns() -> None:
    result = table([STUDY])
    assert result.num_rows == 1
    types = {f.name: f.type for f in result.schema}
    assert types["age_at_imaging"] == pa.int64()
    assert types["case_ids"] == pa.list_(pa.string())
    assert types["days_from_study_to_pos_covid_test"] == pa.list_(pa.int64())
    annotations = types["imaging_study_annotations"]
    assert pa.types.is_list(annotations) and pa.types.is_struct(annotations.value_type)
    assert [f.name for f in annotations.value_type] == [
        "_annotation_id", "annotation_method", "annotator_id", "instance_uids", "midrc_mRALE_score",
    ]
    row = result.to_pylist()[0]
    assert row["imaging_study_annotations"][1]["annotator_id"] is None
    assert row["imaging_study_annotations"][1]["midrc_mRALE_score"] == 24
    assert row["_commons"] == "https://x"
    assert row["_ingested_at"] == WHEN
    assert json.loads(row["_record"]) == STUDY


def test_disagreeing_types_are_widened_never_dropped() -> None:
    result = table([STUDY, FILE_LIKE])
    types = {f.name: f.type for f in result.schema}
    assert types["age_at_imaging"] == pa.float64()
    assert types["days_from_study_to_pos_covid_test"] == pa.list_(pa.string())
    assert types["study_year_shifted"] == pa.list_(pa.string())
    assert types["extra"] == pa.string()
    rows = result.to_pylist()
    assert rows[0]["days_from_study_to_pos_covid_test"] == ["28", "0"]
    assert rows[1]["days_from_study_to_pos_covid_test"] == ["0", "28"]
    assert rows[0]["study_year_shifted"] == ["true"]
    assert rows[0]["age_at_imaging"] == 71.0
    scores = [a["midrc_mRALE_score"] for a in rows[0]["imaging_study_annotations"]]
    assert scores == [None, "24"]
    assert rows[1]["imaging_study_annotations"][0]["midrc_mRALE_score"] == "n/a"
    assert rows[1]["case_ids"] is None  # missing there


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([True, 1], pa.string()),
        ([1, "a"], pa.string()),
        ([{"a": 1}, "x"], pa.string()),
        ([2**70, 1], pa.string()),
        ([[], None], pa.list_(pa.string())),
        ([{}, None], pa.string()),
        ([[1], 2.5], pa.list_(pa.float64())),
        ([[[1, 2]], [[3]]], pa.list_(pa.list_(pa.int64()))),
    ],
)
def test_widening_table(values: list[Any], expected: pa.DataType) -> None:
    result = table([{"f": v} for v in values])
    assert result.schema.field("f").type == expected
    texts = result.column("f").to_pylist()
    if expected == pa.string():
        assert texts == [
            v if isinstance(v, str) or v is None else json.dumps(v, separators=(",", ":"))
            for v in values
        ]


def test_empty_input_gives_only_metadata_columns() -> None:
    schema, columns = flatten([], commons="c", ingested_at=WHEN)
    assert schema.names == ["_commons", "_ingested_at", "_record"]
    assert all(len(c) == 0 for c in columns)


@pytest.mark.parametrize("bad", [[1, 2], "x", None, 3])
def test_records_must_be_objects(bad: Any) -> None:
    with pytest.raises(ValueError, match="record 1 is a JSON"):
        flatten([{"a": 1}, bad], commons="c", ingested_at=WHEN)


def test_reserved_names_are_refused() -> None:
    with pytest.raises(ValueError, match="_record"):
        flatten([{"_record": 1}], commons="c", ingested_at=WHEN)


def test_raw_texts_are_kept_verbatim() -> None:
    raw = ['{"a": 1,   "b": [1.0]}']
    schema, columns = flatten([{"a": 1, "b": [1.0]}], commons="c", ingested_at=WHEN,
                              raw_texts=raw)
    assert columns[schema.get_field_index("_record")].to_pylist() == raw


json_scalars = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(
    allow_nan=False, allow_infinity=False) | st.text(max_size=3)


def nested(scalars: st.SearchStrategy[Any], max_leaves: int) -> st.SearchStrategy[Any]:
    """JSON values built from ``scalars``: lists and objects (keys a, b, c) of them."""
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from("abc"), children, max_size=3),
        max_leaves=max_leaves,
    )


json_values = nested(json_scalars, max_leaves=8)
records_strategy = st.lists(
    st.dictionaries(st.sampled_from(["x", "y", "z"]), json_values, max_size=3), max_size=6
)


@settings(max_examples=150, deadline=None)
@given(records_strategy, st.randoms())
def test_schema_does_not_depend_on_record_order(
    records: list[dict[str, Any]], rnd: random.Random
) -> None:
    shuffled = records[:]
    rnd.shuffle(shuffled)
    first = table(records)
    second = table(shuffled)
    assert first.schema == second.schema
    assert first.num_rows == len(records)
    for row, record in zip(first.to_pylist(), records, strict=True):
        assert json.loads(row["_record"]) == record
        for name, value in record.items():
            if value is not None and value != [] and value != {}:
                assert row[name] is not None, name  # never dropped


@settings(max_examples=200, deadline=None)
@given(st.lists(json_values, min_size=3, max_size=3))
def test_join_is_associative_and_commutative(values: list[Any]) -> None:
    types = [table([{"f": v}]).schema.field("f").type for v in values]
    a, b, c = types
    assert join(a, b) == join(b, a)
    assert join(join(a, b), c) == join(a, join(b, c))


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=6))
def test_arrow_fast_path_agrees_with_the_lattice(values: list[Any]) -> None:
    from ingest.sources.guppy.flatten import convert
    from ingest.sources.guppy.schema import infer_type, resolve

    fast = table([{"f": v} for v in values]).column("f").combine_chunks()
    target = resolve(infer_type(values).type)
    slow = pa.array([convert(v, target) for v in values], type=target)
    assert fast.type == slow.type
    assert fast.to_pylist() == slow.to_pylist()


# The Arrow JSON reader path (ingest.sources.guppy.arrow_json) against the pure lattice.
reader_scalars = json_scalars | st.sampled_from(
    ["2020-01-01", "2020-01-01 10:00:00", 2**63, -(2**63), 2**64, 1e19, 0.5, True])
reader_values = nested(reader_scalars, max_leaves=6)
reader_records = st.lists(
    st.dictionaries(st.sampled_from(["x", "y", "z", "w"]), reader_values, max_size=4),
    min_size=1, max_size=8,
)


def lattice_column(values: list[Any]) -> pa.Array:
    from ingest.sources.guppy.flatten import convert
    from ingest.sources.guppy.schema import infer_type, resolve

    target = resolve(infer_type(values).type)
    return pa.array([convert(v, target) for v in values], type=target)


@settings(max_examples=300, deadline=None)
@given(reader_records)
def test_every_column_agrees_with_the_lattice(records: list[dict[str, Any]]) -> None:
    result = table(records)
    for name in sorted(set().union(*records)):
        expected = lattice_column([r.get(name) for r in records])
        got = result.column(name)
        assert got.type == expected.type, name
        assert got.to_pylist() == expected.to_pylist(), name


def python_built_columns(monkeypatch: pytest.MonkeyPatch) -> list[list[Any]]:
    """Record the values of every column the flattener builds in Python."""
    import ingest.sources.guppy.flatten as flatten_module

    calls: list[list[Any]] = []
    python_column = flatten_module.column

    def spy(values: list[Any]) -> pa.Array:
        calls.append(list(values))
        return python_column(values)

    monkeypatch.setattr(flatten_module, "column", spy)
    return calls


def test_midrc_shaped_records_are_typed_by_the_arrow_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from cohortdb.synthetic.guppy import generate

    calls = python_built_columns(monkeypatch)
    for records in generate(n_cases=30, seed=3).values():
        result = table(records)
        assert result.num_rows == len(records)
    # Only fields that are always [] (list<null> from the reader is not trusted).
    assert all(value in ([], None) for values in calls for value in values)


def test_a_field_mixing_kinds_alone_is_built_in_python(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = python_built_columns(monkeypatch)
    records = [{"a": 1, "b": [1, 2], "c": {"k": "x"}}, {"a": "1", "b": [3], "d": "2020-01-01"}]
    result = table(records)
    assert calls == [[1, "1"], [None, "2020-01-01"]]  # a: number/string, d: a date
    assert result.column("a").to_pylist() == ["1", "1"]
    assert result.column("b").type == pa.list_(pa.int64())
    assert result.column("d").to_pylist() == [None, "2020-01-01"]


def test_big_integers_are_text_not_doubles() -> None:
    result = table([{"n": 2**64}, {"n": 1.5}, {"m": [2**63]}])
    assert result.column("n").to_pylist() == [str(2**64), "1.5", None]
    assert result.column("m").to_pylist() == [None, None, [str(2**63)]]


def test_raw_texts_spanning_lines_are_kept_verbatim() -> None:
    raw = ['{\n  "a": 1\n}', '{"a": 2}']
    schema, columns = flatten([{"a": 1}, {"a": 2}], commons="c", ingested_at=WHEN,
                              raw_texts=raw)
    assert columns[schema.get_field_index("_record")].to_pylist() == raw
    assert columns[schema.get_field_index("a")].to_pylist() == [1, 2]


def test_metadata_columns_repeat_commons_and_time() -> None:
    from datetime import timedelta, timezone

    from ingest.sources.guppy.flatten import repeated_text, repeated_time

    assert repeated_text("", 2).to_pylist() == ["", ""]
    assert repeated_text("é", 3).to_pylist() == ["é"] * 3
    assert repeated_text("x", 0).to_pylist() == []
    local = datetime(2025, 1, 2, 5, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))
    assert repeated_time(local, 2).to_pylist() == [local, local]
