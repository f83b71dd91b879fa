"""The dashboard's queries on a built warehouse: counts against plain SQL, the SQL box,
exports, versions, the header tree and the preview."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import duckdb
import pytest

from cohortdb import UserError
from dashboards import header_tree, queries, thumbnail
from dashboards.selection import ENTITIES, parse_params
from ingest.settings import Settings


def truth(settings: Settings, sql: str, params: list[object] | None = None) -> list[tuple[object, ...]]:
    con = duckdb.connect(str(settings.warehouse_dir / "warehouse.duckdb"), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_facet_counts_ignore_their_own_selection_and_equal_sql(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    selection, _ = parse_params({"sex": ["Male"], "modalities": ["DX", "no data"]})
    explored = queries.explore(source, selection)
    studies = truth(dash_built, "select count(*) from marts.imaging_studies where sex = 'Male' and "
                                "(list_has_any(modalities, ['DX']) or modalities is null or len(modalities) = 0)")
    assert dict(explored.metrics)["Studies"] == studies[0][0]
    by_sex = dict(truth(dash_built, "select coalesce(sex, 'no data'), count(*) from marts.imaging_studies where "
                                    "list_has_any(modalities, ['DX']) or modalities is null or len(modalities) = 0 "
                                    "group by 1"))
    assert dict(explored.facets["sex"].counts.iter_rows()) == by_sex
    by_race = dict(truth(dash_built, "select coalesce(race, 'no data'), count(*) from marts.imaging_studies where "
                                     "sex = 'Male' and (list_has_any(modalities, ['DX']) or modalities is null or "
                                     "len(modalities) = 0) group by 1"))
    assert dict(explored.facets["race"].counts.iter_rows()) == by_race
    for entity in ENTITIES.values():
        tab, _ = parse_params({"tab": [entity.name]})
        rows = truth(dash_built, f"select count(*) from marts.{entity.mart}")[0][0]
        assert queries.explore(source, tab).metrics[0][1] == rows
        assert queries.table_page(source, tab, 1).height == min(rows, queries.PAGE_SIZE)


def test_header_facet_selects_by_element_value(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    selection, _ = parse_params({"tag_path_pattern": ["(0018,0060)"], "value_number": ["80..100"]})
    expected = truth(dash_built, "select count(distinct i.study_instance_uid) from raw.dicom_elements e join "
                                 "raw.dicom_instances i using (file_id) where e.tag_path = '(0018,0060)' and "
                                 "e.value_number between 80 and 100")[0][0]
    assert expected > 0
    assert queries.explore(source, selection).metrics[0][1] == expected
    values = queries.header_values(source, selection)
    assert values.lo is not None and values.hi is not None and values.lo <= 80 <= 100 <= values.hi


@pytest.mark.parametrize("tab", ["studies", "series", "cases", "files"])
def test_header_facet_as_looked_up_links_or_as_a_subquery(dash_built: Settings, tab: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    selection, _ = parse_params({"tab": [tab], "tag_path_pattern": ["(0008,0060)"], "value_text": ["CR", "CT"]})
    looked_up = queries.explore(source, selection)
    assert queries.header_links(source, tab, selection.header) is not None
    queries.forget_results()
    monkeypatch.setattr(queries, "HEADER_LINKS_MAX", 0)  # every match is too many: the subquery
    assert queries.header_links(source, tab, selection.header) is None
    joined = queries.explore(source, selection)
    assert joined.metrics == looked_up.metrics and looked_up.metrics[0][1] > 0
    assert joined.facets.keys() == looked_up.facets.keys()
    for name, counts in looked_up.facets.items():
        other = joined.facets[name]
        assert (other.lo, other.hi, other.no_data) == (counts.lo, counts.hi, counts.no_data), name
        assert sorted(other.counts.rows()) == sorted(counts.counts.rows()), name


def test_the_sql_box_is_read_only_capped_and_timed(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    result, more = queries.user_sql(source, "select count(*) as n from marts.patients")
    assert result["n"][0] == truth(dash_built, "select count(*) from marts.patients")[0][0] and not more
    capped, more = queries.user_sql(source, "select * from range(20000)")
    assert capped.height == queries.SQL_MAX_ROWS and more
    target = dash_built.warehouse_dir / "x.csv"
    for refused in (f"copy (select 1) to '{target}'", "select * from read_csv('/etc/passwd')",
                    "select 1; select 2", "set memory_limit = '1GB'", "detach warehouse",
                    "create table marts.x as select 1", "attach '/tmp/other.duckdb' as other"):
        with pytest.raises(UserError):
            queries.user_sql(source, refused)
    assert not target.exists()
    with pytest.raises(UserError, match="stopped"):
        source.user_query("select count(*) from range(100000000000)", timeout_s=0.5)


def test_exports_of_a_selection(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    selection, _ = parse_params({"sex": ["Female"]})
    manifest = queries.selection_manifest(source, selection)
    expected = truth(dash_built, "select count(distinct f.object_id) from marts.data_files f join "
                                 "marts.imaging_studies s using (study_uid) where s.sex = 'Female' and "
                                 "f.object_id is not null")[0][0]
    assert len(manifest) == expected > 0 and all("object_id" in entry for entry in manifest)
    resources = [json.loads(line) for line in queries.selection_fhir(source, selection).splitlines()]
    assert resources and {r["resourceType"] for r in resources} == {"ImagingStudy"}
    # every tab: the files and studies linked to its selected rows, each once, sorted
    links = {"studies": ("study_uid", "study_uid", "study_uid"),
             "series": ("series_instance_uid", "series_uid", "study_instance_uid"),
             "cases": ("case_id", "case_id", "case_id"), "files": ("object_id", "object_id", "study_uid")}
    for tab, (key, file_column, study_link) in links.items():
        column_value = {"studies": ("sex", "Female"), "cases": ("sex", "Female"), "series": ("modality", "CR"),
                        "files": None}[tab]
        chosen, ignored = parse_params({"tab": [tab], **({column_value[0]: [column_value[1]]} if column_value else {})})
        assert not ignored
        mart = f"marts.{ENTITIES[tab].mart}"
        condition = f"m.{column_value[0]} = '{column_value[1]}'" if column_value else "true"
        files = [r[0] for r in truth(dash_built, f"select distinct f.object_id from marts.data_files f join {mart} m "
                                                 f"on f.{file_column} = m.{key} where {condition} and "
                                                 "f.object_id is not null order by 1")]
        assert [e["object_id"] for e in queries.selection_manifest(source, chosen)] == files, tab
        column = "study_uid" if study_link != "case_id" else "case_id"
        studies = [r[0] for r in truth(dash_built, f"select r.study_uid from marts.fhir_imaging_studies r where "
                                                   f"r.{column} in (select m.{study_link} from {mart} m "
                                                   f"where {condition}) order by 1")]
        ndjson = queries.selection_fhir(source, chosen)
        assert ndjson.endswith(b"\n") or not studies
        assert [json.loads(line)["id"] for line in ndjson.splitlines()] == studies, tab
    rows = queries.selection_rows(source, selection)
    assert rows.height == dict(queries.explore(source, selection).metrics)["Studies"]


def test_a_new_version_is_read_after_a_publish_and_the_old_reader_is_not_blocking(dash_built: Settings,
                                                                                   tmp_path: Path) -> None:
    settings = Settings(warehouse_dir=tmp_path)
    shutil.copyfile(dash_built.warehouse_dir / "warehouse.duckdb", tmp_path / "warehouse.duckdb")
    target = queries.target(tmp_path)
    first = queries.reader(target)
    assert first is not None and queries.reader(target) is first
    before = queries.explore(first, parse_params({})[0]).metrics[0][1]
    # what a build does: write the next file beside the live one, rename it over
    con = duckdb.connect(str(tmp_path / "next.duckdb"))
    con.execute(f"attach '{tmp_path / 'warehouse.duckdb'}' as live (read_only)")
    con.execute("copy from database live to next")  # a writer: it works while the reader holds the old file
    con.execute("delete from marts.imaging_studies where sex = 'Male'")
    con.close()
    os.replace(tmp_path / "next.duckdb", tmp_path / "warehouse.duckdb")
    second = queries.reader(target)
    assert second is not None and second is not first and second.version != first.version
    assert queries.explore(second, parse_params({})[0]).metrics[0][1] < before
    assert queries.explore(first, parse_params({})[0]).metrics[0][1] == before  # the old one, whole
    del settings


def test_header_tree_nests_sequences_and_escapes(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    file_id = truth(dash_built, "select file_id from raw.dicom_instances order by max_depth desc, file_id")[0][0]
    rows = queries.instance_elements(source, file_id).to_dicts()
    tree = header_tree.build(rows)
    html = header_tree.render(tree)
    assert html.count("<details class='seq'") == sum(1 for r in rows if r["vr"] == "SQ")
    rows.append({"tag_path": "(0009,1001)", "tag": "00091001", "keyword": "", "vr": "LO", "private_creator": "ACME",
                 "value_text": "<script>alert(1)</script>"})
    html = header_tree.render(header_tree.build(rows))
    assert "<script>alert" not in html and "&lt;script&gt;" in html and "private · ACME" in html
    creator = {"tag_path": "(0009,0010)", "tag": "00090010", "keyword": "", "vr": "LO", "value_text": "ACME"}
    unknown = {"tag_path": "(0008,0002)", "tag": "00080002", "keyword": "", "vr": "UN", "value_text": ""}
    assert "private creator" in header_tree.render(header_tree.build([creator]))
    assert "(unknown)" in header_tree.render(header_tree.build([unknown]))
    kept = header_tree.filtered(rows, "CodeValue")
    assert all("CodeValue" in r["tag_path"] + (r.get("keyword_path") or "") or r["vr"] == "SQ" for r in kept)


def test_items_sort_numerically() -> None:
    rows = [{"tag_path": p, "tag": "00080100", "keyword": "CodeValue", "vr": "SH", "value_text": p}
            for p in ("(0040,A730)__10__(0008,0100)", "(0040,A730)__2__(0008,0100)")]
    rows.append({"tag_path": "(0040,A730)", "tag": "0040A730", "keyword": "ContentSequence", "vr": "SQ",
                 "value_number": 11})
    (sequence,) = header_tree.build(rows)
    assert list(sequence.items) == [2, 10]


def test_preview_of_a_decodable_file_and_notes_otherwise(tmp_path: Path) -> None:
    from pydicom import examples

    shown = thumbnail.preview(str(examples.get_path("ct")), None)
    assert shown.image is not None and shown.image.dtype.name == "uint8" and shown.image.max() > 0
    assert "not on this machine" in thumbnail.preview(str(tmp_path / "gone.dcm"), None).note
    (tmp_path / "bad.dcm").write_bytes(b"not dicom")
    assert thumbnail.preview(str(tmp_path / "bad.dcm"), None).note.startswith("No preview")
    assert "local file" in thumbnail.preview("https://pacs.example/dicomweb", None).note


def test_cohort_diff_equals_the_set_difference(dash_built: Settings) -> None:
    source = queries.reader(queries.target(dash_built.warehouse_dir))
    assert source is not None
    built = [name for (name,) in truth(dash_built, "select table_name from information_schema.tables where "
                                                   "table_schema = 'cohorts' and table_name not like '%\\_\\_%' "
                                                   "escape '\\' order by 1")]
    assert len(built) >= 2, built
    a, b = built[:2]
    keys = {name: {k for (k,) in truth(dash_built, f'select study_uid from cohorts."{name}"')} for name in (a, b)}
    diff = queries.cohort_diff(source, a, b, "study_uid", limit=3)
    expected = {"Only in A": keys[a] - keys[b], "Only in B": keys[b] - keys[a], "In both": keys[a] & keys[b]}
    assert diff.counts == {side: len(uids) for side, uids in expected.items()}
    assert diff.keys == {side: sorted(uids)[:3] for side, uids in expected.items()}
    assert queries.cohort_diff(source, a, a, "study_uid").counts == {
        "Only in A": 0, "Only in B": 0, "In both": len(keys[a])}
    for bad in ("x\"; drop table marts.patients; --", "nosuchcohort"):
        with pytest.raises(UserError):
            queries.cohort_diff(source, bad, b, "study_uid")
