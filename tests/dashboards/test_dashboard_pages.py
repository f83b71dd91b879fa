"""Page logic with Streamlit's AppTest: each page on a built, an empty and an unbuilt warehouse."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from ingest.settings import Settings

APP = str(Path(__file__).resolve().parents[2] / "dashboards" / "app.py")


def app(monkeypatch: pytest.MonkeyPatch, settings: Settings | Path, cohorts: Path | None = None) -> AppTest:
    directory = settings.warehouse_dir if isinstance(settings, Settings) else settings
    monkeypatch.setenv("COHORTDB_WAREHOUSE", str(directory))
    if cohorts is not None:
        monkeypatch.setenv("COHORTDB_COHORTS", str(cohorts))
    return AppTest.from_file(APP, default_timeout=60)


def count(settings: Settings, sql: str) -> int:
    con = duckdb.connect(str(settings.warehouse_dir / "warehouse.duckdb"), read_only=True)
    try:
        return int(con.execute(sql).fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def metric(at: AppTest, label: str) -> str:
    return next(m.value for m in at.metric if m.label == label)


def test_explore_reads_the_url_and_writes_the_selection_back(monkeypatch: pytest.MonkeyPatch,
                                                             dash_built: Settings) -> None:
    at = app(monkeypatch, dash_built)
    at.query_params["sex"] = "Male"
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    males = count(dash_built, "select count(*) from marts.imaging_studies where sex = 'Male'")
    assert metric(at, "Studies") == f"{males:,}"
    at.multiselect(key="facet:studies:modalities").select("DX").run()
    assert not at.exception
    assert at.query_params["modalities"] == "DX" and at.query_params["sex"] == "Male"
    both = count(dash_built, "select count(*) from marts.imaging_studies where sex = 'Male' and "
                             "list_contains(modalities, 'DX')")
    assert metric(at, "Studies") == f"{both:,}"


def test_explore_ignores_unknown_parameters_with_a_note(monkeypatch: pytest.MonkeyPatch,
                                                        dash_built: Settings) -> None:
    at = app(monkeypatch, dash_built)
    at.query_params["no_such_column"] = "x"
    at.query_params["age_at_imaging"] = "old"
    at.switch_page("app_pages/explore.py").run()
    assert not at.exception
    assert any("no_such_column" in w.value for w in at.warning)
    assert metric(at, "Studies") == f"{count(dash_built, 'select count(*) from marts.imaging_studies'):,}"


def test_every_page_opens_without_an_exception(monkeypatch: pytest.MonkeyPatch, dash_built: Settings) -> None:
    uid = count.__globals__["duckdb"].connect(str(dash_built.warehouse_dir / "warehouse.duckdb"), read_only=True) \
        .execute("select study_instance_uid from raw.dicom_instances order by max_depth desc limit 1").fetchone()[0]
    for page, params in (("explore", {}), ("study", {"study": uid}), ("study", {}), ("cohorts", {"sex": "Male"}),
                         ("quality", {}), ("sql", {}), ("export", {"sex": "Male"})):
        at = app(monkeypatch, dash_built)
        for key, value in params.items():
            at.query_params[key] = value
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert not at.error, (page, [e.value for e in at.error])
        assert at.caption[0].value == f"DuckDB · {dash_built.warehouse_dir}", page  # which warehouse it reads


@pytest.mark.parametrize("fixture, expected", [("empty_built", "No rows match"), ("loaded_only", "cohortdb build")])
def test_an_empty_or_unbuilt_warehouse_gives_a_message(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest,
                                                       fixture: str, expected: str) -> None:
    settings: Settings = request.getfixturevalue(fixture)
    for page in ("explore", "study", "cohorts", "quality", "sql", "export"):
        at = app(monkeypatch, settings)
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
    at = app(monkeypatch, settings)
    at.switch_page("app_pages/explore.py").run()
    shown = " ".join(e.value for e in [*at.info, *at.warning, *at.code])
    assert expected.split()[0] in shown or "empty" in shown


def test_no_warehouse_at_all(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for page in ("explore", "study", "cohorts", "quality", "sql", "export"):
        at = app(monkeypatch, tmp_path / "nothing")
        at.switch_page(f"app_pages/{page}.py").run()
        assert not at.exception, (page, at.exception)
        assert any("no warehouse" in i.value for i in at.info), page
        assert any("build" in c.value for c in at.code)


def test_sql_page_runs_a_query_and_refuses_writes(monkeypatch: pytest.MonkeyPatch, dash_built: Settings) -> None:
    at = app(monkeypatch, dash_built)
    at.switch_page("app_pages/sql.py").run()
    at.text_area(key="sql").input("select count(*) as n from marts.patients").run()
    at.button(key="run").click().run()
    assert not at.exception and not at.error
    assert at.dataframe[0].value["n"][0] == count(dash_built, "select count(*) from marts.patients")
    for refused in ("copy (select 1) to '/tmp/cohortdb-dashboard-x.csv'", "select * from read_csv('/etc/passwd')"):
        at.text_area(key="sql").input(refused).run()
        at.button(key="run").click().run()
        assert not at.exception and at.error, refused
    assert not Path("/tmp/cohortdb-dashboard-x.csv").exists()


def test_cohorts_page_saves_the_selection_and_compares(monkeypatch: pytest.MonkeyPatch, dash_built: Settings,
                                                       tmp_path: Path) -> None:
    import shutil

    from cohortdb.project import SHIPPED_COHORTS_DIR

    cohorts = tmp_path / "cohorts"
    shutil.copytree(SHIPPED_COHORTS_DIR, cohorts)
    at = app(monkeypatch, dash_built, cohorts)
    at.query_params["sex"] = "Female"
    at.query_params["modalities"] = "DX"
    at.switch_page("app_pages/cohorts.py").run()
    assert not at.exception
    assert '"study_modality"' in at.code[0].value
    at.text_input(key="cohort_name").input("female_dx")
    at.text_input(key="cohort_description").input("from the dashboard")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception and not at.error, [e.value for e in at.error]
    saved = (cohorts / "female_dx.yml").read_text()
    assert "study_modality" in saved and "Female" in saved
    assert any(m.label == "Only in A" for m in at.metric)
    at.text_input(key="cohort_name").input("Bad Name").run()
    at.button[0].click().run()
    assert at.error and not at.exception
