"""The one translation of guppy filters to SQL, against the fake commons' evaluator.

Records of the three indices go through the real path (JSON dump → ``ingest
guppy`` → lake → ``load`` → DuckDB); random filters must select, in SQL,
exactly the records :func:`tests.fake_gen3.filters.matches` selects, and so must
their BigQuery translation (parsed, and run on DuckDB through sqlglot).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cohortdb.cohorts.filter_sql import filter_to_sql, guppy_columns
from cohortdb.synthetic.guppy import generate
from cohortdb.warehouse.duckdb import database_path
from ingest.errors import UserError
from ingest.settings import resolve_settings
from tests.cli import run_cli
from tests.fake_gen3.filters import KEYWORD, NESTED, NUMERIC, FilterError, field_kinds, matches

INDICES = ("case", "imaging_study", "data_file")
SPECIAL_TEXT = "O'Brien's \"CHEST\" \\ view;\n--"
ABSENT_TEXTS = ["zzz-absent", "no data", "Chest", "chest", "CT "]
ABSENT_NUMBERS = [-1000, 99999, 0.25]


def _augment(records: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """Add what generate() lacks: booleans, nested lists in nested items, odd text, null items."""
    rng = random.Random(7)
    for study in records["imaging_study"]:
        choice = rng.random()
        if choice < 0.4:
            study["image_data_modified"] = rng.random() < 0.5
        elif choice < 0.7:
            study["lossy_flags"] = [rng.random() < 0.5 for _ in range(rng.randrange(0, 3))]
    records["imaging_study"][0]["study_description"] = SPECIAL_TEXT
    records["imaging_study"][1].setdefault("imaging_study_annotations", []).append(None)
    records["imaging_study"][2]["imaging_study_annotations"] = [None]
    for case in records["case"]:
        for item in case["imaging_studies"]:
            if rng.random() < 0.7:
                item["series"] = [
                    {"modality": rng.choice(["CT", "CR", "DX"]),
                     "number_of_instances": rng.randrange(1, 50),
                     "view_position": [rng.choice(["AP", "PA", "LL"])]}
                    for _ in range(rng.randrange(0, 3))
                ]
    return records


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict[str, Any]]]:
    return _augment(generate(n_cases=14, studies_per_case=2, files_per_study=2, seed=11))


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory,
              records: dict[str, list[dict[str, Any]]]) -> Path:
    """A DuckDB warehouse with raw.guppy_{case,imaging_study,data_file} from JSON dumps."""
    root = tmp_path_factory.mktemp("filter_sql")
    args = ["--warehouse", str(root / "wh"), "ingest", "guppy"]
    for index in INDICES:
        dump = root / f"{index}.json"
        dump.write_text(json.dumps(records[index]))
        args += ["--index", index, "--from-json", str(dump)]
    for command in (args, ["--warehouse", str(root / "wh"), "load"]):
        result = run_cli(*command)
        assert result.exit_code == 0, result.output
    return root / "wh"


@pytest.fixture(scope="module")
def con(warehouse: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(database_path(resolve_settings(warehouse))), read_only=True)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def columns(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, pa.DataType]]:
    return {index: guppy_columns(
        con.execute(f"select * from raw.guppy_{index} limit 0").to_arrow_table().schema)
        for index in INDICES}


def _select(con: duckdb.DuckDBPyConnection, index: str, where: str) -> set[str]:
    rows = con.execute(f"select submitter_id from raw.guppy_{index} as g where {where}")
    return {row[0] for row in rows.fetchall()}


# --- random filters built from the records' own values ------------------------------------


class Catalog:
    """One index's fields (dotted paths) with their kinds and the values seen."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.kinds = field_kinds(rows)
        self.values: dict[str, list[Any]] = {}

        def visit(document: dict[str, Any], prefix: str) -> None:
            for name, value in document.items():
                items = value if isinstance(value, list) else [value]
                for item in items:
                    if isinstance(item, dict):
                        visit(item, f"{prefix}{name}.")
                    elif item is not None:
                        self.values.setdefault(prefix + name, []).append(item)

        for row in rows:
            visit(row, "")
        for path, seen in self.values.items():
            self.values[path] = sorted(set(seen), key=repr)

    def children(self, prefix: str, kind: str) -> list[str]:
        return sorted(p[len(prefix):] for p, k in self.kinds.items()
                      if k == kind and p.startswith(prefix) and "." not in p[len(prefix):])


def _keyword_values(catalog: Catalog, path: str) -> st.SearchStrategy[Any]:
    seen = catalog.values.get(path, [])
    as_numbers = [int(v) for v in seen if isinstance(v, str) and v.lstrip("-").isdigit()]
    return st.sampled_from(seen + ABSENT_TEXTS + as_numbers[:3] + [True])


def _numeric_values(catalog: Catalog, path: str) -> st.SearchStrategy[Any]:
    seen = catalog.values.get(path, [])
    near = [v + d for v in seen for d in (0, 0.5, -1)]
    return st.sampled_from(sorted(set(near + ABSENT_NUMBERS)))


def _leaf(catalog: Catalog, prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    options = []
    for field in catalog.children(prefix, KEYWORD):
        values = _keyword_values(catalog, prefix + field)
        options.append(st.one_of(
            st.builds(lambda op, v, f=field: {op: {f: v}},
                      st.sampled_from(["=", "eq", "EQ", "!="]), values),
            st.builds(lambda op, vs, f=field: {op: {f: vs}},
                      st.sampled_from(["IN", "in", "!="]), st.lists(values, max_size=4)),
        ))
    for field in catalog.children(prefix, NUMERIC):
        values = _numeric_values(catalog, prefix + field)
        options.append(st.one_of(
            st.builds(lambda op, v, f=field: {op: {f: v}},
                      st.sampled_from([">", ">=", "<", "<=", "gt", "GTE", "lt", "LTE", "=",
                                       "!="]), values),
            st.builds(lambda v, f=field: {"=": {f: v}}, st.sampled_from(["no data"])),
            st.builds(lambda op, vs, f=field: {op: {f: vs}}, st.sampled_from(["IN", "in"]),
                      st.lists(st.one_of(values, st.just("no data")), max_size=4)),
        ))
    return st.one_of(options)


def _search(catalog: Catalog, prefix: str) -> st.SearchStrategy[dict[str, Any]]:
    texts = [str(v) for f in catalog.children(prefix, KEYWORD)
             for v in catalog.values.get(prefix + f, [])]

    @st.composite
    def keyword(draw: st.DrawFn) -> str:
        if texts and draw(st.booleans()):
            text = draw(st.sampled_from(texts))
            start = draw(st.integers(0, max(0, len(text) - 2)))
            word = text[start:start + draw(st.integers(2, 8))]
            if len(word) >= 2:
                return "".join(c.upper() if draw(st.booleans()) else c for c in word)
        return draw(st.text("abcdhstCTX1 -'", min_size=2, max_size=6))

    fields = catalog.children(prefix, KEYWORD) + catalog.children(prefix, NUMERIC)[:2]
    field_choice = st.one_of(st.none(), st.sampled_from(fields),
                             st.lists(st.sampled_from(fields), min_size=1, max_size=3))
    return st.builds(
        lambda k, f: {"search": {"keyword": k} if f is None else {"keyword": k, "fields": f}},
        keyword(), field_choice)


def filters(catalog: Catalog, prefix: str = "", depth: int = 3
            ) -> st.SearchStrategy[dict[str, Any]]:
    options = [_leaf(catalog, prefix), _leaf(catalog, prefix), _search(catalog, prefix)]
    if depth > 0:
        inner = st.deferred(lambda: filters(catalog, prefix, depth - 1))
        options.append(st.builds(lambda op, children: {op: children},
                                 st.sampled_from(["AND", "OR", "and", "Or"]),
                                 st.lists(inner, max_size=3)))
        for name in catalog.children(prefix, NESTED):
            full = prefix + name
            paths = [name, full] if prefix else [name]
            paths += [f"{name}.{sub}" for sub in catalog.children(full + ".", NESTED)]
            for path in paths:
                target = (path if path.startswith(prefix) and prefix else prefix + path) + "."
                options.append(st.builds(
                    lambda body, p=path: {"nested": {"path": p, **body}},
                    filters(catalog, target, depth - 1)))
    return st.one_of(options)


def test_random_filters_select_what_the_fake_commons_selects(
    con: duckdb.DuckDBPyConnection,
    records: dict[str, list[dict[str, Any]]],
    columns: dict[str, dict[str, pa.DataType]],
) -> None:
    catalogs = {index: Catalog(records[index]) for index in INDICES}
    strategies = {index: filters(catalogs[index]) for index in INDICES}
    hits: Counter[str] = Counter()

    @settings(max_examples=300, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        index = data.draw(st.sampled_from(INDICES), label="index")
        filter_ = data.draw(strategies[index], label="filter")
        kinds = catalogs[index].kinds
        expected = {r["submitter_id"] for r in records[index] if matches(r, filter_, kinds)}
        where = filter_to_sql(filter_, columns[index], relation_alias="g")
        assert _select(con, index, where) == expected, where
        bigquery = filter_to_sql(filter_, columns[index], "bigquery", relation_alias="g")
        query = f"select submitter_id from raw.guppy_{index} as g where {bigquery}"
        sqlglot.parse_one(query, read="bigquery")
        # And it means the same: sqlglot's DuckDB rendering of it selects the same rows.
        as_duckdb = sqlglot.transpile(query, read="bigquery", write="duckdb")[0]
        assert {row[0] for row in con.execute(as_duckdb).fetchall()} == expected, bigquery
        total = len(records[index])
        hits["some" if 0 < len(expected) < total else "none" if not expected else "all"] += 1

    check()
    examples = sum(hits.values())
    assert hits["some"] >= examples // 4, hits  # filters are not trivially empty or full
    assert hits["none"] and hits["all"], hits


# --- exact cases --------------------------------------------------------------------------


def test_empty_filters_select_everything(con: duckdb.DuckDBPyConnection,
                                         columns: dict[str, dict[str, pa.DataType]]) -> None:
    everything = _select(con, "case", "true")
    for filter_ in (None, {}, {"AND": []}, {"or": []}, {"AND": [{}, {"OR": []}]}):
        assert filter_to_sql(filter_, columns["case"]) in ("true", "(true) and (true)")
        assert _select(con, "case", filter_to_sql(filter_, columns["case"])) == everything


def test_values_are_escaped_literals(con: duckdb.DuckDBPyConnection,
                                     records: dict[str, list[dict[str, Any]]],
                                     columns: dict[str, dict[str, pa.DataType]]) -> None:
    cols = columns["imaging_study"]
    special = {"=": {"study_description": SPECIAL_TEXT}}
    assert _select(con, "imaging_study", filter_to_sql(special, cols)) == {
        records["imaging_study"][0]["submitter_id"]}
    injection = {"IN": {"study_description": ["x' or '1'='1", "x\" or \"1\"=\"1"]}}
    assert _select(con, "imaging_study", filter_to_sql(injection, cols)) == set()
    bigquery = filter_to_sql(special, cols, "bigquery")
    parsed = sqlglot.parse_one(f"select 1 from t where {bigquery}", read="bigquery")
    strings = [lit.this for lit in parsed.find_all(sqlglot.exp.Literal) if lit.is_string]
    assert strings == [SPECIAL_TEXT]


def test_field_names_are_quoted_identifiers() -> None:
    columns = {'we"ird': pa.string(), "Sex": pa.list_(pa.string())}
    assert '"we""ird"' in filter_to_sql({"=": {'we"ird': "x"}}, columns)
    sql = filter_to_sql({"=": {"Sex": "M"}}, columns, "bigquery", relation_alias="g")
    assert "`g`.`Sex`" in sql


def test_nested_needs_one_item_to_satisfy_the_whole_clause() -> None:
    con = duckdb.connect()
    con.execute("create table t as select * from (values "
                "('both', [{'a': 1, 'b': 'x'}]), "
                "('split', [{'a': 1, 'b': 'y'}, {'a': 2, 'b': 'x'}]), "
                "('null item', [null]), ('no items', [])) v(id, n)")
    columns = {"id": pa.string(),
               "n": pa.list_(pa.struct([("a", pa.int64()), ("b", pa.string())]))}
    one_item = {"nested": {"path": "n", "AND": [{"=": {"a": 1}}, {"=": {"b": "x"}}]}}
    two_blocks = {"AND": [{"nested": {"path": "n", "=": {"a": 1}}},
                          {"nested": {"path": "n", "=": {"b": "x"}}}]}
    not_x = {"nested": {"path": "n", "!=": {"b": "x"}}}  # only real items count
    for filter_, expected in ((one_item, [("both",)]), (two_blocks, [("both",), ("split",)]),
                              (not_x, [("split",)])):
        where = filter_to_sql(filter_, columns)
        assert con.execute(f"select id from t where {where} order by id").fetchall() == expected


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("imaging_study", {"=": {"sexx": "Male"}}, "filter.=.sexx"),
    ("imaging_study", {"AND": [{"=": {"sex": "Male"}}, {">=": {"sex": 5}}]},
     "filter.AND[1].>=.sex"),
    ("imaging_study", {"AND": [{}, {"nested": {"path": "imaging_study_annotations",
                                                ">=": {"midrc_mRALE_score": "high"}}}]},
     "filter.AND[1].nested.>=.midrc_mRALE_score"),
    ("imaging_study", {"nested": {"path": "imaging_study_annotations",
                                  "=": {"midrc_mRALE_score": "high"}}},
     "filter.nested.=.midrc_mRALE_score"),
    ("imaging_study", {"nested": {"path": "imaging_study_annotations",
                                  "<": {"annotator_id": 3}}},
     "filter.nested.<.annotator_id"),
    ("imaging_study", {"OR": [{"contains": {"sex": "M"}}]}, "filter.OR[0]"),
    ("imaging_study", {"search": {"keyword": "c"}}, "filter.search.keyword"),
    ("imaging_study", {"search": {"keyword": "ch", "fields": ["sex", "nope"]}},
     "filter.search.fields[1]"),
    ("imaging_study", {"nested": {"path": "sex", "=": {"x": 1}}}, "filter.nested.path"),
    ("imaging_study", {"=": {"imaging_study_annotations.annotator_id": "SIFT"}},
     "filter.=.imaging_study_annotations.annotator_id"),
    ("imaging_study", {"=": {"imaging_study_annotations": "SIFT"}},
     "filter.=.imaging_study_annotations"),
    ("imaging_study", {"!=": {"age_at_imaging": [70, 71]}}, "filter.!=.age_at_imaging"),
    ("imaging_study", {"=": {"age_at_imaging": True}}, "filter.=.age_at_imaging"),
    ("imaging_study", {"IN": {"sex": "Male"}}, "filter.IN.sex"),
    ("case", {"nested": {"path": "imaging_studies",
                         "nested": {"path": "imaging_studies.series",
                                    "IN": {"modality": ["CT", 3, "no data"],
                                           }}}}, None),
    ("case", {"nested": {"path": "imaging_studies",
                         "nested": {"path": "series", ">": {"number_of_instance": 3}}}},
     "filter.nested.nested.>.number_of_instance"),
]


@pytest.mark.parametrize(("index", "filter_", "bad_part"), INVALID)
def test_invalid_filters_are_one_user_error_naming_the_bad_part(
    records: dict[str, list[dict[str, Any]]],
    columns: dict[str, dict[str, pa.DataType]],
    index: str, filter_: dict[str, Any], bad_part: str | None,
) -> None:
    kinds = field_kinds(records[index])
    if bad_part is None:  # a valid control: both accept it
        filter_to_sql(filter_, columns[index])
        [matches(r, filter_, kinds) for r in records[index]]
        return
    with pytest.raises(FilterError):
        [matches(r, filter_, kinds) for r in records[index]]
    for dialect in ("duckdb", "bigquery"):
        with pytest.raises(UserError) as error:
            filter_to_sql(filter_, columns[index], dialect)  # type: ignore[arg-type]
        message = str(error.value)
        assert "\n" not in message
        assert bad_part in message, message


def test_a_nested_items_field_outside_nested_points_at_nested() -> None:
    annotation = pa.struct([("midrc_mRALE_score", pa.int64()), ("annotator_id", pa.string())])
    series = pa.struct([("modality", pa.string())])
    columns = {"sex": pa.list_(pa.string()), "imaging_study_annotations": pa.list_(annotation),
               "imaging_studies": pa.list_(pa.struct([("study_uid", pa.string()),
                                                      ("series", pa.list_(series))]))}
    cases = [
        ({"=": {"midrc_mRALE_score": 20}}, "filter.=.midrc_mRALE_score: 'midrc_mRALE_score' is a field "
         "of nested 'imaging_study_annotations': use {\"nested\": {\"path\": \"imaging_study_annotations\", ...}}"),
        ({"AND": [{"IN": {"modality": ["CT"]}}]}, "filter.AND[0].IN.modality: 'modality' is a field of "
         "nested 'imaging_studies.series': use {\"nested\": {\"path\": \"imaging_studies.series\", ...}}"),
        ({"nested": {"path": "imaging_studies", "=": {"modality": "CT"}}},
         "'modality' is a field of nested 'imaging_studies.series'"),
        ({"search": {"keyword": "SIFT", "fields": ["annotator_id"]}},
         "filter.search.fields[0]: 'annotator_id' is a field of nested 'imaging_study_annotations'"),
    ]
    for filter_, message in cases:
        with pytest.raises(UserError) as error:
            filter_to_sql(filter_, columns)
        assert message in str(error.value)
        assert "unknown field" not in str(error.value)
    # the hint's form is accepted as it stands
    filter_to_sql({"nested": {"path": "imaging_studies.series", "=": {"modality": "CT"}}}, columns)
