"""The dashboard in a real browser: `cohortdb dashboard` on a free port, driven by Playwright
with Debian's chromium. Screenshots of every page go to the test's temporary directory."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ingest.settings import Settings, resolve_settings
from tests.browser import ROOT, dashboard_server, metric, no_exception, open_page, settle, shot

INJECTIONS = ["x' or '1'='1", "'); drop table marts.imaging_studies; --", "<script>alert(1)</script>"]


def truth(settings: Settings, sql: str) -> Any:
    con = duckdb.connect(str(settings.warehouse_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]  # type: ignore[index]
    finally:
        con.close()


@pytest.fixture(scope="module")
def served(dash_built: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Settings, Path]]:
    """`cohortdb dashboard` on a copy of the built warehouse (the rebuild test changes it)."""
    root = tmp_path_factory.mktemp("served")
    shutil.copytree(dash_built.warehouse_dir, root / "warehouse", symlinks=True,
                    ignore=shutil.ignore_patterns("warehouse.lock", "*.wal"))
    settings = resolve_settings(root / "warehouse")
    cohorts = root / "cohorts"
    shutil.copytree(ROOT / "cohorts", cohorts)
    with dashboard_server(["--warehouse", str(settings.warehouse_dir), "--cohorts", str(cohorts)],
                          root / "server.log") as url:
        yield url, settings, root


def test_every_page_opens_and_is_screenshot(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, root = served
    uid = truth(settings, "select study_instance_uid from raw.dicom_instances order by max_depth desc, file_id")
    for name, path in (("explore", "/explore?sex=Male&modalities=DX"), ("study", f"/study?study={uid}"),
                       ("cohorts", "/cohorts?sex=Female"), ("quality", "/quality"), ("sql", "/sql"),
                       ("export", "/export?sex=Male"), ("root", "/")):
        open_page(page, url + path)
        no_exception(page)
        if name in ("explore", "root"):  # what a researcher comes for: the counts, on the first load too
            assert metric(page, "Studies"), name
        shot(page, root, name)
    assert page.url.startswith(url + "/explore")  # the root opens the explorer at its own path


def test_facet_values_give_the_counts_of_sql(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, _ = served
    open_page(page, url + "/explore")
    total = truth(settings, "select count(*) from marts.imaging_studies")
    assert metric(page, "Studies") == f"{total:,}"
    females = truth(settings, "select count(*) from marts.imaging_studies where sex = 'Female'")
    page.get_by_test_id("stMultiSelect").filter(has_text="Sex").click()
    page.get_by_role("option", name=f"Female ({females:,})").click()
    settle(page)
    page.keyboard.press("Escape")
    assert metric(page, "Studies") == f"{females:,}"
    assert "sex=Female" in page.url
    dx = truth(settings, "select count(*) from marts.imaging_studies where sex = 'Female' and "
                         "list_contains(modalities, 'DX')")
    dx_any = truth(settings, "select count(*) from marts.imaging_studies where sex = 'Female' and "
                             "list_contains(modalities, 'DX')")
    page.get_by_test_id("stMultiSelect").filter(has_text="Modality").click()
    page.get_by_role("option", name=f"DX ({dx_any:,})").click()
    settle(page)
    assert metric(page, "Studies") == f"{dx:,}"
    assert "modalities=DX" in page.url
    no_exception(page)
    # the URL reproduces the view
    open_page(page, url + "/explore?sex=Female&modalities=DX")
    assert metric(page, "Studies") == f"{dx:,}"


def test_a_study_opens_and_a_sequence_expands(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, root = served
    uid = truth(settings, "select study_instance_uid from raw.dicom_instances where max_depth > 0 order by file_id")
    open_page(page, url + "/explore?" + urllib.parse.urlencode({"sex": truth(
        settings, f"select sex from marts.imaging_studies where study_uid = '{uid}'")}))
    open_page(page, f"{url}/study?study={uid}")
    no_exception(page)
    sequence = page.locator("details.seq").first
    assert sequence.get_attribute("open") is None
    sequence.locator("summary").first.click()
    assert sequence.get_attribute("open") is not None
    item = sequence.locator("details.item").first
    item.locator("summary").first.click()
    assert item.locator(".el").count() > 0
    shot(page, root, "study-sequence-open")


def test_a_table_row_opens_its_study(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, _ = served
    open_page(page, url + "/explore?sex=Male")
    grid = page.get_by_test_id("stDataFrame").first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 15, box["y"] + 52)
    page.wait_for_url("**/study?**")
    settle(page)
    no_exception(page)
    first = truth(settings, "select min(study_uid) from marts.imaging_studies where sex = 'Male'")
    assert urllib.parse.quote(first) in page.url or first in urllib.parse.unquote(page.url)


def run_sql(page: Any, query: str) -> None:
    box = page.get_by_test_id("stTextArea").locator("textarea")
    box.fill(query)
    box.press("Control+Enter")
    settle(page)
    page.get_by_test_id("stButton").filter(has_text="Run").click()
    settle(page)


def test_sql_box_runs_a_select_and_refuses_files(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, root = served
    open_page(page, url + "/sql")
    run_sql(page, "select count(*) as n from marts.patients")
    assert page.get_by_test_id("stDataFrame").count() == 1 and page.get_by_test_id("stAlert").count() == 0
    assert page.get_by_text("1 rows").count() == 1
    target = root / "stolen.csv"
    for refused, says in ((f"copy (select 1) to '{target}'", "read-only"),
                          ("select * from read_csv('/etc/passwd')", "disabled")):
        run_sql(page, refused)
        alert = page.get_by_test_id("stAlert")
        assert alert.count() == 1 and says in alert.inner_text(), refused
        no_exception(page)
    assert not target.exists()


def test_a_manifest_downloads(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, root = served
    open_page(page, url + "/export?sex=Male")
    with page.expect_download() as download:
        page.get_by_test_id("stDownloadButton").filter(has_text="drs-pull manifest").click()
    saved = root / "manifest.json"
    download.value.save_as(saved)
    entries = json.loads(saved.read_text())
    expected = truth(settings, "select count(distinct f.object_id) from marts.data_files f join marts.imaging_studies "
                               "s using (study_uid) where s.sex = 'Male' and f.object_id is not null")
    assert len(entries) == expected > 0 and all(e["object_id"] for e in entries)


def test_csv_and_fhir_downloads_are_the_cli_exports(served: tuple[str, Settings, Path], page: Any) -> None:
    """The selection's CSV has the cells `cohortdb export csv` writes (nested values JSON,
    booleans true/false), and its FHIR NDJSON the resources `cohortdb export fhir` writes."""
    url, settings, root = served
    open_page(page, url + "/export?sex=Male")
    saved = {}
    for label, name in (("CSV", "selection.csv"), ("ImagingStudy NDJSON", "selection.ndjson")):
        with page.expect_download() as download:
            page.get_by_test_id("stDownloadButton").filter(has_text=label).first.click()
        saved[label] = root / name
        download.value.save_as(saved[label])
    cli = root / "studies.csv"
    fhir = root / "studies.ndjson"
    for args in (("export", "csv", "--model", "imaging_studies", "--out", str(cli)),
                 ("export", "fhir", "--out", str(fhir))):
        subprocess.run([sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), *args],
                       cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), check=True, capture_output=True)
    with cli.open(newline="") as every, saved["CSV"].open(newline="") as chosen:
        males = [row for row in csv.DictReader(every) if row["sex"] == "Male"]
        selected = list(csv.DictReader(chosen))
    assert sorted(selected, key=lambda r: r["study_uid"]) == sorted(males, key=lambda r: r["study_uid"])
    assert any(row["modalities"].startswith('["') for row in selected)
    assert {row["in_dicom"] for row in selected} <= {"true", "false"}
    male_uids = {row["study_uid"] for row in males}
    expected = [line for line in fhir.read_text().splitlines() if json.loads(line)["id"] in male_uids]
    assert saved["ImagingStudy NDJSON"].read_text().splitlines() == expected and expected


def test_injection_strings_through_every_input_and_the_url(served: tuple[str, Settings, Path], page: Any) -> None:
    url, settings, root = served
    total = truth(settings, "select count(*) from marts.imaging_studies")
    for text in INJECTIONS:
        quoted = urllib.parse.quote(text)
        for path in (f"/explore?sex={quoted}", f"/explore?tag_path_pattern={quoted}&value_text={quoted}",
                     f"/explore?age_at_imaging={quoted}", f"/explore?tab={quoted}", f"/study?study={quoted}",
                     f"/export?modalities={quoted}", f"/cohorts?race={quoted}", f"/explore?filter={quoted}",
                     f"/sql?q={quoted}"):
            open_page(page, url + path)
            no_exception(page)
        open_page(page, url + "/study")
        page.get_by_test_id("stTextInput").first.locator("input").fill(text)
        page.keyboard.press("Enter")
        settle(page)
        no_exception(page)
        open_page(page, url + "/sql")
        run_sql(page, text)
        no_exception(page)
        open_page(page, url + "/cohorts")
        page.get_by_test_id("stTextArea").first.locator("textarea").fill(text)
        page.get_by_test_id("stButton").filter(has_text="Open in the explorer").click()
        settle(page)
        no_exception(page)
        inputs = page.get_by_test_id("stTextInput").locator("input")
        inputs.nth(0).fill(text)
        inputs.nth(1).fill(text)
        page.get_by_test_id("stFormSubmitButton").click()
        settle(page)
        no_exception(page)
    assert truth(settings, "select count(*) from marts.imaging_studies") == total
    assert not any(p.suffix == ".yml" and "drop" in p.name for p in (root / "cohorts").iterdir())


def test_a_rebuild_underneath_shows_the_new_count(served: tuple[str, Settings, Path], page: Any) -> None:
    from cohortdb.build import build
    from cohortdb.synthetic.dicom import generate_corpus
    from ingest.sources.files.ingest import ingest_dicom

    url, settings, root = served
    open_page(page, url + "/explore")
    before = truth(settings, "select count(*) from marts.imaging_studies")
    assert metric(page, "Studies") == f"{before:,}"
    more = root / "more-dicom"
    generate_corpus(more, n_crdx=6, n_ct_series=0, ct_slices=1, n_mr_series=0, mr_slices=1, seed=99)
    ingest_dicom(settings, [more], workers=1)
    outcome = build(settings, root / "cohorts").outcome  # the dashboard holds the old version meanwhile
    assert outcome.success, outcome.problems()
    after = truth(settings, "select count(*) from marts.imaging_studies")
    assert after > before
    page.reload()
    page.get_by_test_id("stAppViewContainer").wait_for()
    settle(page)
    assert metric(page, "Studies") == f"{after:,}"
    shot(page, root, "explore-after-rebuild")
