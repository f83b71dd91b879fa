"""MIDRC-shaped guppy records (case, imaging_study, data_file) for DICOM series we hold.

The demo and the benchmarks need guppy records that *link* to a DICOM corpus
by Study/Series Instance UID, as MIDRC's do, with the imperfections a real
commons has, so that the warehouse's joins and its reconciliation mart have
something to find. Pure: the same series and ``seed`` give the same records.

Planted imperfections (all deterministic, by a hash of the study UID):

* about 1 study in 10 has DICOM headers but no guppy record (``in_dicom`` only);
* about 1 study in 12 gets a guppy-only sibling (a study UID with no headers);
* about 1 study in 15 disagrees with its headers on modality (CR ↔ DX, CT ↔ MR);
* half the studies carry ``imaging_study_annotations`` (an mRALE score and/or an
  auto-annotation item with differing keys, as in seed 000);
* about 1 study in 4 was imaged the day after a positive COVID-19 test with a
  high mRALE score (20–24), so that seed 000's cohort is not empty.

Field shapes follow seed 000: demographics are one-item lists on imaging_study
and data_file, scalars on case; study fields are lists on data_file.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

SEXES = {"M": "Male", "F": "Female"}
RACES = ["White", "Black or African American", "Asian", "Other", "Not Reported"]
ETHNICITIES = ["Not Hispanic or Latino", "Hispanic or Latino", "Hispanic or Latino", "Not Reported"]
COVID = ["Yes", "No", "Indeterminate"]
PROJECTS = ["Open-A1", "Open-R1", "Open-A1_PETAL_REDCORAL"]
LOINC = {
    "CR": ("36589-0", "Portable XR Chest AP single view", "XR.portable", "Chest"),
    "DX": ("36572-6", "XR Chest AP", "XR", "Chest"),
    "CT": ("24627-2", "CT Chest", "CT", "Chest"),
    "MR": ("24590-2", "MR Brain", "MR", "Head"),
}
SWAPPED_MODALITY = {"CR": "DX", "DX": "CR", "CT": "MR", "MR": "CT"}

SERIES_KEYS = (
    "patient_id", "patient_sex", "patient_age_years", "study_instance_uid", "study_date",
    "study_description", "series_instance_uid", "modality", "body_part_examined",
    "manufacturer", "manufacturer_model_name", "series_description", "view_position",
    "n_instances",
)
"""What each input series mapping must hold (values may be None)."""


def _bucket(text: str, salt: str, buckets: int) -> int:
    """A stable 0-based bucket of ``text`` (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha1(f"{salt}|{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def records_for_series(series: Iterable[Mapping[str, Any]], seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Guppy records of the three MIDRC indices describing ``series``.

    Args:
        series: one mapping per DICOM series with the keys of :data:`SERIES_KEYS`
            (``patient_age_years`` an int or None; ``study_date`` a date or None).
        seed: drives every random choice (demographics, ids, scores).

    Returns:
        ``{"case": [...], "imaging_study": [...], "data_file": [...]}``; cases and
        studies sorted by id, one data_file per series (a zip, as MIDRC ships).
    """
    rng = random.Random(seed)
    by_patient: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for one in series:
        by_patient[one["patient_id"] or "unknown"][one["study_instance_uid"]].append(one)
    cases: list[dict[str, Any]] = []
    studies: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for _case_number, patient_id in enumerate(sorted(by_patient)):
        patient_studies = by_patient[patient_id]
        first = next(iter(patient_studies.values()))[0]
        project = PROJECTS[_bucket(patient_id, "project", len(PROJECTS))]
        program, code = project.split("-", 1)
        auth_path = f"/programs/{program}/projects/{code}"
        age = first["patient_age_years"]
        demographics: dict[str, Any] = {
            "sex": SEXES.get(first["patient_sex"] or "", "Not Reported"),
            "race": rng.choice(RACES),
            "ethnicity": rng.choice(ETHNICITIES),
            "age_at_index": age,
            "index_event": "First COVID test",
            "covid19_positive": rng.choice(COVID),
            "zip": f"{rng.randrange(100, 999)}",
        }
        if age is None:
            del demographics["age_at_index"]
        case_studies: list[dict[str, Any]] = []
        for study_uid in sorted(patient_studies):
            study_series = patient_studies[study_uid]
            variants = [study_uid]
            if _bucket(study_uid, "guppy-only", 12) == 0:
                variants.append(study_uid + ".9")
            for variant in variants:
                if variant == study_uid and _bucket(study_uid, "dicom-only", 10) == 0:
                    continue
                study, study_files = _study(rng, variant, study_series, patient_id, project,
                                            auth_path, demographics)
                studies.append(study)
                files.extend(study_files)
                case_studies.append(study)
        cases.append(_case(rng, patient_id, project, auth_path, demographics, case_studies))
    studies.sort(key=lambda s: s["submitter_id"])
    return {"case": cases, "imaging_study": studies, "data_file": files}


def _study(rng: random.Random, study_uid: str, series: list[Mapping[str, Any]], case_id: str,
           project: str, auth_path: str, demographics: Mapping[str, Any]
           ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    head = series[0]
    modality = head["modality"] or "OT"
    if _bucket(study_uid, "modality", 15) == 0:
        modality = SWAPPED_MODALITY.get(modality, modality)
    loinc = LOINC.get(modality, ("", "", "", ""))
    study_date = head["study_date"]
    pos_tests = sorted(rng.randrange(-10, 30) for _ in range(rng.randrange(0, 3)))
    covid_day_after = _bucket(study_uid, "covid-day-after", 4) == 0
    if covid_day_after:
        pos_tests = sorted({*pos_tests, -1})
    study: dict[str, Any] = {
        "_imaging_study_id": _guid(rng),
        "project_id": project,
        "submitter_id": study_uid,
        "case_ids": [case_id],
        "study_uid": study_uid,
        "study_description": head["study_description"],
        "study_modality": [modality],
        "body_part_examined": sorted({s["body_part_examined"] for s in series if s["body_part_examined"]}),
        "age_at_imaging": demographics.get("age_at_index"),
        "days_to_study": rng.randrange(0, 60),
        "study_year": study_date.year if study_date else None,
        "study_year_shifted": "true",
        "loinc_code": loinc[0],
        "loinc_long_common_name": loinc[1],
        "loinc_method": loinc[2],
        "loinc_system": loinc[3],
        **{name: [value] for name, value in demographics.items()},
        "dataset_submitter_id": ["ACR_20220415"],
        "auth_resource_path": auth_path,
    }
    if pos_tests:
        study["days_from_study_to_pos_covid_test"] = pos_tests
    annotations = _annotations(rng, study_uid)
    if covid_day_after:
        annotations.append({"midrc_mRALE_score": rng.randrange(20, 25), "_annotation_id": _guid(rng)})
    if annotations:
        study["imaging_study_annotations"] = annotations
    files = [_data_file(rng, one, study, modality, demographics) for one in series]
    study["object_id"] = [f["object_id"] for f in files]
    study["data_format"] = ["DCM"]
    study[f"{modality.lower()}_series_file"] = len(files)
    return {k: v for k, v in study.items() if v is not None}, files


def _annotations(rng: random.Random, study_uid: str) -> list[dict[str, Any]]:
    if _bucket(study_uid, "annotated", 2):
        return []
    items: list[dict[str, Any]] = []
    if rng.random() < 0.7:
        items.append({"midrc_mRALE_score": rng.randrange(0, 25), "_annotation_id": _guid(rng)})
    if rng.random() < 0.6:
        items.append({"annotation_method": "Retrospective_auto", "annotator_id": "SIFT",
                      "instance_uids": [f"{study_uid}.{rng.randrange(1, 99)}"],
                      "_annotation_id": _guid(rng)})
    return items


def _data_file(rng: random.Random, series: Mapping[str, Any], study: Mapping[str, Any],
               modality: str, demographics: Mapping[str, Any]) -> dict[str, Any]:
    series_uid = series["series_instance_uid"]
    if study["study_uid"] != series["study_instance_uid"]:
        series_uid += ".9"
    record: dict[str, Any] = {
        "_data_file_id": _guid(rng),
        "project_id": study["project_id"],
        "submitter_id": series_uid,
        "series_uid": series_uid,
        "case_ids": study["case_ids"],
        "object_id": f"dg.MD1R/{_guid(rng)}",
        "md5sum": f"{rng.getrandbits(128):032x}",
        "file_name": f"{study['case_ids'][0]}/{study['study_uid']}/{series_uid}.zip",
        "file_size": (series["n_instances"] or 1) * rng.randrange(500_000, 9_000_000),
        "data_format": "DCM",
        "data_type": "DICOM",
        "data_category": modality,
        "source_node": f"{modality.lower()}_series_file",
        "modality": modality,
        "manufacturer": series["manufacturer"],
        "manufacturer_model_name": series["manufacturer_model_name"],
        "series_description": series["series_description"],
        "view_position": [series["view_position"]] if series["view_position"] else [],
        "number_of_instances": series["n_instances"],
        "_imaging_study_id": [study["_imaging_study_id"]],
        "study_uid": [study["study_uid"]],
        "study_modality": study["study_modality"],
        **{name: [value] for name, value in demographics.items()},
        "auth_resource_path": study["auth_resource_path"],
    }
    return {k: v for k, v in record.items() if v is not None}


def _case(rng: random.Random, case_id: str, project: str, auth_path: str,
          demographics: Mapping[str, Any], studies: list[dict[str, Any]]) -> dict[str, Any]:
    case: dict[str, Any] = {
        "_case_id": _guid(rng),
        "project_id": project,
        "submitter_id": case_id,
        **demographics,
        "dataset_submitter_id": "ACR_20220415",
        "_imaging_studies_count": len(studies),
        "data_file_count": sum(len(s["object_id"]) for s in studies),
        "object_id": [o for s in studies for o in s["object_id"]],
        "imaging_studies": [
            {k: s[k] for k in ("study_uid", "study_modality", "age_at_imaging", "days_to_study",
                               "study_description") if k in s}
            for s in studies
        ],
        "auth_resource_path": auth_path,
    }
    annotations = [a for s in studies for a in s.get("imaging_study_annotations", [])]
    if annotations:
        case["imaging_study_annotations"] = annotations
    return case
