"""The dashboard on BigQuery (the emulator): every query it runs gives the DuckDB answer for
the same selection, the SQL it sends BigQuery is GoogleSQL, and its pages open on
``--target bigquery``, under AppTest and in a browser through ``cohortdb dashboard``.

The emulator runs GoogleSQL on DuckDB, so it accepts some DuckDB spellings BigQuery would
refuse; :func:`test_the_sql_sent_to_bigquery_is_googlesql` keeps those out of what is sent.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from streamlit.testing.v1 import AppTest

from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse.base import Params, Relation, WarehouseReader
from cohortdb.warehouse.bigquery import BigQueryWarehouse, config_environment, qualify
from cohortdb.warehouse.duckdb import DuckDBWarehouse
from dashboards import queries
from dashboards.selection import (
    ENTITIES,
    NO_DATA,
    FacetSelection,
    HeaderSelection,
    Range,
    Selection,
    to_params,
)
from tests.bigquery.compare import normal
from tests.browser import dashboard_server, metric, no_exception, open_page, shot

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")

GUPPY_FILTERS = {
    "studies": [{"AND": [{"IN": {"study_modality": ["DX", "CR"]}}, {">=": {"age_at_imaging": 40}}]},
                {"nested": {"path": "imaging_study_annotations", ">=": {"midrc_mRALE_score": 4}}}],
    "cases": [{"OR": [{"IN": {"sex": ["Female"]}}, {"<": {"age_at_index": 30}}]}],
    "files": [{"AND": [{"!=": {"data_format": "DCM"}}, {">=": {"file_size": 1}}]}],
}
"""Pasted guppy filters per tab (the tab's own index)."""

GOOGLESQL_FUNCTIONS = frozenset({
    "array_length", "cast", "chr", "coalesce", "count", "countif", "exists", "floor", "grouping", "max", "min",
    "nullif", "regexp_contains", "row_number", "sum", "unnest",
})
"""Every function the dashboard's BigQuery SQL may call: each one documented in GoogleSQL
(what the one guppy-filter translation writes is property-tested on its own)."""
SQL_WORDS = frozenset({"as", "in", "from", "join", "on", "and", "or", "not", "when", "then", "else", "over",
                       "sets", "where", "select", "by", "with", "values", "is"})
DUCKDB_ONLY = ("::", " materialized ", "group by all", "filter (where", "[null", "list_", "varchar", "len(",
               "regexp_full_match", "bigint", "double", '"')
"""DuckDB spellings the emulator would take and BigQuery would not."""


class Recording:
    """A reader that keeps every query it is given (and runs it)."""

    def __init__(self, reader: WarehouseReader) -> None:
        self._reader = reader
        self.version = reader.version
        self.dialect = reader.dialect
        self.sent: list[str] = []

    def query(self, sql: str, params: Params = None) -> Any:
        self.sent.append(sql)
        return self._reader.query(sql, params)

    def user_query(self, sql: str, params: Params = None, **limits: Any) -> Any:
        self.sent.append(sql)
        return self._reader.user_query(sql, params, **limits)

    def relations(self) -> list[Relation]:
        return self._reader.relations()

    def close(self) -> None:
        self._reader.close()


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    queries.close_readers()
    yield
    queries.close_readers()


def _frame(data: pl.DataFrame, ordered: bool = True) -> list[tuple[Any, ...]]:
    found = [tuple(normal(v) for v in row) for row in data.rows()]
    return found if ordered else sorted(found, key=repr)


def _explored(explored: queries.Explored) -> dict[str, Any]:
    return {
        "metrics": explored.metrics,
        "facets": {name: (_frame(counts.counts, ordered=False), normal(counts.lo), normal(counts.hi), counts.no_data)
                   for name, counts in explored.facets.items()},
        "charts": {name: _frame(chart, ordered=False) for name, chart in explored.charts.items()},
    }


def selections(source: WarehouseReader) -> list[Selection]:
    """Selections of every tab, built from what the DuckDB warehouse holds: each facet alone
    (its values, its values with ``no data``, ``no data`` alone, ranges open at either end),
    facets together, the header facet by values and by a numeric range, and guppy filters."""
    chosen: list[Selection] = []
    tags = queries.tag_choices(source)
    nested = tags.filter(pl.col("tag_path_pattern").str.contains("*", literal=True)
                         & ~pl.col("numeric"))["tag_path_pattern"][0]
    numeric = tags.filter(pl.col("numeric"))["tag_path_pattern"][0]
    for name, entity in ENTITIES.items():
        landing = queries.explore(source, Selection(entity=name))
        bounds = queries.range_bounds(source, name)
        picks: dict[str, FacetSelection] = {}
        for turn, facet in enumerate(entity.facets):
            if facet.categorical:
                values = [v for v in landing.facets[facet.column].counts["value"].to_list() if v != NO_DATA]
                pick = [FacetSelection(values=tuple(values[:1])),
                        FacetSelection(values=tuple(values[:2]), no_data=True),
                        FacetSelection(no_data=True)][turn % 3] if values else FacetSelection(no_data=True)
            elif facet.column in bounds:
                lo, hi = bounds[facet.column]
                middle = (lo + hi) / 2
                pick = [FacetSelection(range=Range(lo, middle)),
                        FacetSelection(range=Range(middle, None), no_data=True),
                        FacetSelection(range=Range(None, middle))][turn % 3]
            else:
                pick = FacetSelection(no_data=True)
            picks[facet.column] = pick
            chosen.append(Selection(entity=name, facets={facet.column: pick}))
        columns = [f.column for f in entity.facets]
        chosen.append(Selection(entity=name, facets={c: picks[c] for c in columns[:3]}))
        chosen.append(Selection(entity=name, facets={c: picks[c] for c in columns[1::3]}))
        values = queries.header_values(source, Selection(entity=name, header=HeaderSelection(pattern=nested)))
        chosen.append(Selection(entity=name, header=HeaderSelection(nested, tuple(values.counts["value"][:2]))))
        bounds_of = queries.header_values(source, Selection(entity=name, header=HeaderSelection(pattern=numeric)))
        assert bounds_of.lo is not None and bounds_of.hi is not None
        chosen.append(Selection(entity=name, facets={columns[0]: picks[columns[0]]},
                                header=HeaderSelection(numeric, range=Range(bounds_of.lo, bounds_of.hi))))
        for guppy_filter in GUPPY_FILTERS.get(name, []):
            chosen.append(Selection(entity=name, guppy_filter=json.dumps(guppy_filter)))
    return chosen


def answers(source: WarehouseReader, chosen: list[Selection]) -> dict[str, Any]:
    """What every query of the dashboard gives on ``source``, comparably."""
    found: dict[str, Any] = {"tags": _frame(queries.tag_choices(source), ordered=False),
                             "counts": queries.counts(source)}
    for name in ENTITIES:
        found[f"{name}: landing"] = _explored(queries.explore(source, Selection(entity=name)))
        found[f"{name}: bounds"] = normal(queries.range_bounds(source, name))
    for index, selection in enumerate(chosen):
        key = f"{index}: {json.dumps(to_params(selection), sort_keys=True)}"
        found[key] = _explored(queries.explore(source, selection))
        found[key + " page 2"] = _frame(queries.table_page(source, selection, 2, page_size=5))
        if selection.header is not None:
            found[key + " header values"] = _frame(queries.header_values(source, selection).counts, ordered=False)
        if index % 4 == 0:
            columns = [ENTITIES[selection.entity].key, "n_instances"]
            found[key + " rows"] = _frame(queries.selection_rows(source, selection, columns))
            found[key + " manifest"] = normal(queries.selection_manifest(source, selection))
            found[key + " fhir"] = sorted(json.dumps(json.loads(line), sort_keys=True)
                                          for line in queries.selection_fhir(source, selection).splitlines())
    studies = source.query("select study_instance_uid as uid from raw.dicom_instances "
                           "group by 1 order by max(max_depth) desc, 1 limit 3").column("uid").to_pylist()
    for uid in studies:
        found[f"study {uid}"] = normal(queries.study(source, uid))
        found[f"series of {uid}"] = _frame(queries.study_series(source, uid))
        instances = queries.study_instances(source, uid)
        found[f"instances of {uid}"] = _frame(instances)
        file_id = instances["file_id"][0]
        found[f"elements of {file_id}"] = _frame(queries.instance_elements(source, file_id))
        found[f"source of {file_id}"] = normal(queries.instance_source(source, file_id))
    found["reconciliation"] = _frame(queries.reconciliation_summary(source))
    for check in queries.reconciliation_summary(source)["check_name"]:
        found[f"reconciliation {check}"] = _frame(queries.reconciliation_rows(source, check))
    found["phi"] = _frame(queries.phi_audit(source))
    found["errors"] = _frame(queries.error_summary(source))
    for severity, error_type in queries.error_summary(source).select("severity", "error_type").rows():
        found[f"errors {severity} {error_type}"] = _frame(queries.error_rows(source, error_type, severity))
    found["truncated"] = _frame(queries.truncated_instances(source))
    found["diff"] = normal(dataclasses.asdict(queries.cohort_diff(source, "seed000_covid_chest_xr",
                                                                  "portable_chest_high_kvp", "study_uid")))
    for title, sql in queries.sql_examples(source.dialect).items():
        found[f"example {title}"] = _frame(queries.user_sql(source, sql)[0], ordered=False)
    return found


@pytest.fixture(scope="module")
def both(engines: tuple[DuckDBWarehouse, BigQueryWarehouse], monkeypatch_module: pytest.MonkeyPatch
         ) -> tuple[dict[str, Any], dict[str, Any], Recording]:
    """Every answer on DuckDB, on BigQuery, and what was sent to BigQuery."""
    duck, bq = engines
    duck_reader = duck.reader()
    chosen = selections(duck_reader)
    recording = Recording(bq.reader())
    on_bq = answers(recording, chosen)
    on_duck = answers(duck_reader, chosen)
    monkeypatch_module.setattr(queries, "HEADER_LINKS_MAX", 0)  # the header facet as a subquery too
    headers = [s for s in chosen if s.header is not None]
    for source, found in ((recording, on_bq), (duck_reader, on_duck)):
        queries.forget_results()
        for selection in headers:
            found[f"{selection} as a subquery"] = _explored(queries.explore(source, selection))
    duck_reader.close()
    return on_duck, on_bq, recording


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_every_dashboard_query_answers_as_on_duckdb(both: tuple[dict[str, Any], dict[str, Any], Recording]) -> None:
    on_duck, on_bq, _ = both
    assert on_bq.keys() == on_duck.keys() and len(on_duck) > 150
    differ = [key for key in on_duck if on_bq[key] != on_duck[key]]
    assert not differ, {key: (on_duck[key], on_bq[key]) for key in differ[:3]}
    landing = on_duck["studies: landing"]
    assert landing["metrics"][0][1] > 20 and len(landing["facets"]["modalities"][0]) > 1  # not a trivial warehouse
    explored = [value["metrics"][0][1] for key, value in on_duck.items() if key[:1].isdigit() and key.endswith("}")]
    assert sum(n > 0 for n in explored) > len(explored) / 2 and 0 in explored  # some keep rows, some none
    assert any(value[0][1] > 0 for key, value in on_duck.items() if key.endswith("header values"))


def _functions(sql: str) -> set[str]:
    """The names called in ``sql`` (string literals left out)."""
    bare = re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql.lower())
    return {name for name in re.findall(r"\b([a-z_][a-z0-9_]*)\s*\(", bare)} - SQL_WORDS


def test_the_sql_sent_to_bigquery_is_googlesql(both: tuple[dict[str, Any], dict[str, Any], Recording],
                                               engines: tuple[DuckDBWarehouse, BigQueryWarehouse]) -> None:
    *_, recording = both
    assert len(recording.sent) > 200
    assert any(" as g where " in sql for sql in recording.sent), "no guppy filter reached BigQuery"
    for written in recording.sent:
        for text in (written, qualify(written, engines[1].config)):  # as written, and as sent (names qualified)
            sql = re.split(" as g where ", text, flags=re.IGNORECASE)[0]  # the guppy filter's translation aside
            assert _functions(sql) <= GOOGLESQL_FUNCTIONS, (_functions(sql) - GOOGLESQL_FUNCTIONS, sql)
            spaced = " " + re.sub(r"\s+", " ", re.sub(r"'(?:[^'\\]|\\.)*'", "''", sql.lower())) + " "
            assert not [word for word in DUCKDB_ONLY if word in spaced], sql


def _app(monkeypatch: pytest.MonkeyPatch, bq: BigQueryWarehouse) -> AppTest:
    monkeypatch.setenv("COHORTDB_TARGET", "bigquery")
    monkeypatch.setenv("COHORTDB_WAREHOUSE", str(bq.settings.warehouse_dir))
    monkeypatch.setenv("COHORTDB_COHORTS", str(SHIPPED_COHORTS_DIR))
    for name, value in config_environment(bq.config).items():
        monkeypatch.setenv(name, value)
    return AppTest.from_file(APP, default_timeout=120)


def test_every_page_opens_on_bigquery(engines: tuple[DuckDBWarehouse, BigQueryWarehouse],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    duck, bq = engines
    males = duck.query("select count(*) as n from marts.imaging_studies where sex = 'Male'").column("n")[0].as_py()
    uid = duck.query("select study_instance_uid as uid from raw.dicom_instances order by max_depth desc, file_id "
                     "limit 1").column("uid")[0].as_py()
    for page, params in (("explore", {"sex": "Male"}), ("study", {"study": uid}), ("cohorts", {"sex": "Male"}),
                         ("quality", {}), ("sql", {}), ("export", {"sex": "Male"})):
        at = _app(monkeypatch, bq)
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.caption[0].value == f"BigQuery · {bq.location}", page
        if page == "explore":
            assert next(m.value for m in at.metric if m.label == "Studies") == f"{males:,}"
        if page == "sql":
            assert "GoogleSQL" in " ".join(c.value for c in at.caption)
            at.button(key="run").click().run()
            assert not at.error and len(at.dataframe[0].value) > 1


def test_a_misnamed_bigquery_warehouse_is_a_message(engines: tuple[DuckDBWarehouse, BigQueryWarehouse],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    _, bq = engines
    at = _app(monkeypatch, bq)
    monkeypatch.setenv("COHORTDB_BQ_DATASET_PREFIX", "nothing_here")
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    assert any("no warehouse in" in i.value.lower() for i in at.info), [i.value for i in at.info]
    assert any("--target bigquery" in c.value for c in at.code)
    monkeypatch.delenv("COHORTDB_BQ_PROJECT")
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception and any("--project" in e.value for e in at.error)


def test_cohortdb_dashboard_serves_bigquery_in_a_browser(engines: tuple[DuckDBWarehouse, BigQueryWarehouse],
                                                         page: Any, tmp_path: Path) -> None:
    duck, bq = engines
    expected = duck.query("select count(*) as n from marts.imaging_studies where sex = 'Female' and "
                          "list_contains(modalities, 'DX')").column("n")[0].as_py()
    assert bq.config.api_endpoint
    options = ["--warehouse", str(bq.settings.warehouse_dir), "--target", "bigquery", "--project", bq.config.project,
               "--dataset-prefix", bq.config.dataset_prefix, "--api-endpoint", bq.config.api_endpoint]
    with dashboard_server(options, tmp_path / "server.log") as url:
        open_page(page, url + "/explore?sex=Female&modalities=DX")
        no_exception(page)
        assert metric(page, "Studies") == f"{expected:,}"
        shot(page, tmp_path, "explore-bigquery")
        open_page(page, url + "/sql")
        no_exception(page)
        assert page.get_by_text("GoogleSQL").count() > 0
