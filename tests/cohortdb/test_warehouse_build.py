"""`cohortdb build`: the dbt project on a real DuckDB warehouse built from synthetic DICOM + guppy."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from fhir.resources.R4B.imagingstudy import ImagingStudy

from cohortdb.build import build
from cohortdb.project import SHIPPED_COHORTS_DIR
from cohortdb.warehouse.duckdb import load_duckdb
from ingest.settings import Settings, resolve_settings
from tests.warehouse import rows as _rows

ROOT = Path(__file__).resolve().parents[2]


def test_every_model_and_test_passes(built: Settings) -> None:
    outcome = build(built, SHIPPED_COHORTS_DIR).outcome
    assert outcome.success and not outcome.problems()
    kinds = {n.resource_type.split(".")[-1] for n in outcome.nodes}
    assert {"model", "test", "seed"} <= kinds
    names = {n.name for n in outcome.nodes}
    for mart in ("imaging_studies", "imaging_series", "dicom_instances", "patients", "data_files",
                 "tag_catalog", "phi_audit", "reconciliation", "fhir_imaging_studies"):
        assert mart in names
    # dbt's connections are closed: another process-local reader can open the file.
    assert _rows(built, "select count(*) as n from marts.imaging_studies")[0]["n"] > 0


def test_studies_join_guppy_and_dicom_on_study_uid(built: Settings) -> None:
    dicom = {r["u"] for r in _rows(built, "select distinct study_instance_uid as u from raw.dicom_instances")}
    guppy = {r["u"] for r in _rows(built, "select study_uid as u from raw.guppy_imaging_study")}
    studies = _rows(built, "select study_uid, in_guppy, in_dicom, n_instances from marts.imaging_studies")
    assert {s["study_uid"] for s in studies} == dicom | guppy
    for study in studies:
        assert study["in_dicom"] == (study["study_uid"] in dicom)
        assert study["in_guppy"] == (study["study_uid"] in guppy)
    assert dicom - guppy and guppy - dicom and dicom & guppy  # the generator plants all three


def test_instances_are_deduplicated_by_sop_instance_uid(built: Settings) -> None:
    raw = _rows(built, "select count(*) as n, count(distinct sop_instance_uid) as u from raw.dicom_instances")[0]
    assert raw["n"] == raw["u"] + 1  # one instance was ingested from two files
    mart = _rows(built, "select count(*) as n, max(n_copies) as copies from marts.dicom_instances")[0]
    assert mart == {"n": raw["u"], "copies": 2}


def test_reconciliation_finds_modality_disagreements(built: Settings) -> None:
    expected = {
        r["study_uid"] for r in _rows(built, """
            select g.study_uid from raw.guppy_imaging_study g
            join (select study_instance_uid, list_sort(list_distinct(array_agg(modality))) as m
                  from raw.dicom_instances group by 1) d on g.study_uid = d.study_instance_uid
            where list_sort(g.study_modality) <> d.m""")
    }
    found = {r["study_uid"] for r in _rows(
        built, "select study_uid from marts.reconciliation where check_name = 'modality'")}
    assert found == expected and expected
    missing = _rows(built, "select check_name, count(*) as n from marts.reconciliation "
                           "where check_name like 'missing%' group by all")
    counts = {r["check_name"]: r["n"] for r in missing}
    flags = _rows(built, "select count(*) filter (where not in_dicom) as no_dicom, "
                         "count(*) filter (where not in_guppy) as no_guppy from marts.imaging_studies")[0]
    assert counts == {"missing_dicom_headers": flags["no_dicom"], "missing_guppy_record": flags["no_guppy"]}


def test_annotation_scores_reach_the_study_mart(built: Settings) -> None:
    records = {r["study_uid"]: json.loads(r["_record"]) for r in _rows(
        built, "select study_uid, _record from raw.guppy_imaging_study")}
    marts = {r["study_uid"]: r for r in _rows(
        built, "select study_uid, n_annotations, midrc_mrale_score from marts.imaging_studies where in_guppy")}
    for uid, record in records.items():
        items = record.get("imaging_study_annotations", [])
        scores = [i["midrc_mRALE_score"] for i in items if "midrc_mRALE_score" in i]
        assert marts[uid]["n_annotations"] == len(items)
        assert marts[uid]["midrc_mrale_score"] == (max(scores) if scores else None)


def test_phi_audit_and_tag_catalog_never_show_identifying_values(built: Settings) -> None:
    identifying = {r["v"] for r in _rows(built, """
        select distinct value_text as v from raw.dicom_elements
        where tag in ('00100010', '00100020', '00080050', '00100030') and length(value_text) > 2""")}
    assert identifying
    for table in ("phi_audit", "tag_catalog"):
        text = json.dumps(_rows(built, f"select * from marts.{table}"), default=str)
        assert not [v for v in identifying if v in text], table
    audit = {r["keyword"]: r for r in _rows(built, "select * from marts.phi_audit")}
    total = _rows(built, "select count(*) as n from marts.dicom_instances")[0]["n"]
    assert audit["PatientID"]["n_instances_non_empty"] == total
    assert audit["PatientName"]["basic_profile_action"] == "Z"
    # A nested identifying attribute is found below the top level.
    assert any(r["max_depth"] and r["max_depth"] > 0 for r in audit.values() if r["is_present"])


def test_tag_catalog_patterns_cover_every_element(built: Settings) -> None:
    catalog = _rows(built, "select sum(n_elements) as n from marts.tag_catalog")[0]["n"]
    elements = _rows(built, """
        select count(*) as n from raw.dicom_elements
        where file_id in (select file_id from marts.dicom_instances)""")[0]["n"]
    assert catalog == elements
    nested = _rows(built, """
        select tag_path_pattern, keyword_path_pattern from marts.tag_catalog
        where tag_path_pattern = '(0012,0064)__*__(0008,0100)'""")
    assert nested == [{"tag_path_pattern": "(0012,0064)__*__(0008,0100)",
                       "keyword_path_pattern": "DeidentificationMethodCodeSequence[*].CodeValue"}]


def test_patients_in_guppy_when_any_guppy_record_names_them(built: Settings) -> None:
    patients = _rows(built, "select case_id, in_guppy, has_case_record, age_at_index from marts.patients")
    named = {r["case_id"] for r in _rows(built, """
        select submitter_id as case_id from raw.guppy_case
        union select unnest(case_ids) from raw.guppy_imaging_study
        union select unnest(case_ids) from raw.guppy_data_file""")}
    cases = {r["submitter_id"]: r["age_at_index"]
             for r in _rows(built, "select submitter_id, age_at_index from raw.guppy_case")}
    for patient in patients:
        assert patient["in_guppy"] == (patient["case_id"] in named)
        assert patient["has_case_record"] == (patient["case_id"] in cases)
        if patient["case_id"] in cases:
            assert patient["age_at_index"] == cases[patient["case_id"]]


def test_tag_catalog_keeps_item_counts_apart_from_values(built: Settings) -> None:
    catalog = {r["tag_path_pattern"]: r for r in _rows(built, """
        select tag_path_pattern, tag, vr, min_value_number, max_value_number, min_items, max_items
        from marts.tag_catalog""")}
    sequence = catalog["(0012,0064)"]
    assert sequence["tag"] == "00120064" and sequence["vr"] == "SQ"
    assert (sequence["min_items"], sequence["max_items"]) == (4, 4)
    assert sequence["min_value_number"] is None and sequence["max_value_number"] is None
    rows_ = catalog["(0028,0010)"]
    assert rows_["min_items"] is None and rows_["min_value_number"] > 0
    # the catalog's patterns select elements with `=`, as LIKE with escaped `_` does on raw tag paths
    by_pattern = _rows(built, """select count(*) as n from staging.stg_dicom__elements
                                 where tag_path_pattern = '(0012,0064)__*__(0008,0100)'""")
    by_like = _rows(built, r"""select count(*) as n from raw.dicom_elements
                               where tag_path like '(0012,0064)\_\_%\_\_(0008,0100)' escape '\'""")
    assert by_pattern == by_like and by_pattern[0]["n"] > 0


def test_columns_users_trip_on_are_documented(built: Settings) -> None:
    manifest = json.loads((built.warehouse_dir / "dbt" / "target" / "manifest.json").read_text())
    columns = {(n["name"], c): d["description"] for n in manifest["nodes"].values()
               if n["resource_type"] == "model" for c, d in n["columns"].items()}
    assert "never filled from an age at imaging" in columns[("patients", "age_at_index")]
    assert "imaging_study or data_file" in columns[("patients", "in_guppy")]
    for model in ("tag_catalog", "phi_audit", "stg_dicom__elements"):
        assert "8" in columns[(model, "tag")] and "(00" in columns[(model, "tag")]
    assert "sequence" in columns[("tag_catalog", "min_items")]
    assert "LIKE" in columns[("stg_dicom__elements", "tag_path_pattern")]


def test_fhir_resources_validate_and_match_the_marts(built: Settings) -> None:
    rows = _rows(built, "select f.study_uid, f.resource_json, s.in_dicom, s.n_series, s.n_instances, "
                        "s.n_guppy_series, s.modalities, s.loinc_code, s.study_date, s.study_time "
                        "from marts.fhir_imaging_studies f join marts.imaging_studies s using (study_uid)")
    assert len(rows) == _rows(built, "select count(*) as n from marts.imaging_studies")[0]["n"]
    offsets = {r["study_instance_uid"]: r["utc_offset"] for r in _rows(
        built, "select i.study_instance_uid, min(e.value_text) as utc_offset from raw.dicom_elements e "
               "join raw.dicom_instances i using (file_id) where e.tag = '00080201' group by 1")}
    assert offsets and any(r["in_dicom"] and r["study_uid"] not in offsets for r in rows)  # both kinds
    for row in rows:
        document = json.loads(row["resource_json"])
        study = ImagingStudy.model_validate(document)
        assert study.identifier[0].value == f"urn:oid:{row['study_uid']}"
        assert sorted(m.code for m in study.modality or []) == sorted(set(row["modalities"] or []))
        assert all(m.system == "http://dicom.nema.org/resources/ontology/DCM" for m in study.modality or [])
        if row["loinc_code"] is not None:
            assert study.procedureCode[0].coding[0].code == row["loinc_code"]
            assert study.procedureCode[0].coding[0].system == "http://loinc.org"
        if row["in_dicom"]:
            assert study.numberOfSeries == row["n_series"] == len(study.series)
            assert study.numberOfInstances == row["n_instances"] == sum(len(s.instance) for s in study.series)
            assert all(s.modality.system == "http://dicom.nema.org/resources/ontology/DCM" for s in study.series)
            offset = offsets.get(row["study_uid"])
            if offset is None or row["study_time"] is None:
                assert document["started"] == row["study_date"].isoformat()
            else:
                when = datetime.datetime.fromisoformat(document["started"])
                assert (when.date(), when.time()) == (row["study_date"], row["study_time"])
                hours, minutes = int(offset[:3]), int(offset[0] + offset[3:])  # "-0530": -5 h -30 min
                assert when.utcoffset() == datetime.timedelta(hours=hours, minutes=minutes)
        else:  # known only from the commons: no headers, so no series, instances or start
            assert "series" not in document and "started" not in document and "numberOfInstances" not in document
            assert document.get("numberOfSeries") == (row["n_guppy_series"] or None)
        assert "null" not in row["resource_json"]
    assert any(not row["in_dicom"] for row in rows)
    chest = [s for r in rows for s in json.loads(r["resource_json"]).get("series", []) if "bodySite" in s]
    assert chest and chest[0]["bodySite"]["system"] == "http://snomed.info/sct"


def test_build_with_guppy_only_and_sparse_records(tmp_path: Path) -> None:
    """Indices never ingested, and fields no record carried, still give a passing build."""
    settings = resolve_settings(tmp_path / "w")
    dump = tmp_path / "studies.json"
    dump.write_text(json.dumps([{"submitter_id": "1.2.3", "study_modality": "CT"},
                                {"submitter_id": "1.2.4", "case_ids": ["c1"], "age_at_index": [61],
                                 "age_at_imaging": 62.5, "race": ["Asian"]},
                                {"submitter_id": "1.2.5", "case_ids": ["c2"], "age_at_imaging": 50}]))
    from ingest.sources.guppy.dump import read_dump
    from ingest.sources.guppy.ingest import ingest_indices

    ingest_indices(settings, ["imaging_study"], lambda index: read_dump(dump, index),
                   commons="test", warn=lambda message: None)
    load_duckdb(settings)
    outcome = build(settings, SHIPPED_COHORTS_DIR).outcome
    assert outcome.success, outcome.problems()
    studies = _rows(settings, "select study_uid, guppy_modalities, in_dicom from marts.imaging_studies "
                              "order by study_uid")
    assert studies == [
        {"study_uid": "1.2.3", "guppy_modalities": ["CT"], "in_dicom": False},
        {"study_uid": "1.2.4", "guppy_modalities": None, "in_dicom": False},
        {"study_uid": "1.2.5", "guppy_modalities": None, "in_dicom": False},
    ]
    # Cases the commons names only in imaging_study records (no case index ingested) are in
    # guppy; age_at_index is the commons' age at the index event, never an age at imaging.
    patients = _rows(settings, "select case_id, in_guppy, has_case_record, in_dicom, age_at_index, "
                               "first_age_at_imaging, race from marts.patients order by case_id")
    assert patients == [
        {"case_id": "c1", "in_guppy": True, "has_case_record": False, "in_dicom": False,
         "age_at_index": 61.0, "first_age_at_imaging": 62.5, "race": "Asian"},
        {"case_id": "c2", "in_guppy": True, "has_case_record": False, "in_dicom": False,
         "age_at_index": None, "first_age_at_imaging": 50.0, "race": None},
    ]


def test_cli_build_from_another_directory(built: Settings, tmp_path: Path) -> None:
    """Relative --warehouse from an unrelated cwd: paths are made absolute, nothing lands in cwd."""
    relative = Path("..") / built.warehouse_dir.relative_to(built.warehouse_dir.parent.parent)
    cwd = built.warehouse_dir.parent.parent / "elsewhere"
    cwd.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(relative), "build", "--select", "marts"],
        cwd=cwd, capture_output=True, text=True, timeout=600,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this tree's code, not the editable install's
    )
    assert result.returncode == 0, result.stderr
    assert "dbt build ok" in result.stdout
    assert list(cwd.iterdir()) == []
