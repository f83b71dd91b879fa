"""MIDRC-shaped guppy records (case, imaging_study, data_file), linked by ids: the mock site's commons.

One set of value pools and record builders serves two entry points:

* :func:`records_for_series` describes DICOM series we hold (the demo): the
  records link to the corpus by Study/Series Instance UID, as MIDRC's do, with
  the imperfections a real commons has, so that the warehouse's joins and its
  reconciliation mart have something to find;
* :func:`generate` makes standalone records of a chosen size with no DICOM
  behind them (the tests' fake commons, the guppy ingest benchmark); some of
  its data_file records are annotation files (CSV), not series.

:mod:`cohortdb.synthetic.lake` writes the same pools at scale, in SQL.

Shapes follow the reference (cdis-manifest etlMapping for data.midrc.org) and
seed 000: demographics are scalars on case and one-item lists on imaging_study
and data_file; study fields are lists on data_file, where imaging_study's int
arrays are ``fn: set`` string arrays; optional fields are sometimes absent or
``[]``; ``imaging_study_annotations`` items have differing keys. Pure: the same
input and ``seed`` give the same records.

Planted by both (deterministic, by a hash of the case or study id; see :data:`ONE_IN`):

* half the studies carry ``imaging_study_annotations`` (an mRALE score and/or
  an auto-annotation item);
* about 1 study in 4 was imaged the day after a positive COVID-19 test, with a
  high mRALE score (20–24), so that seed 000's cohort is not empty;
* about 1 case in 7 has no ethnicity (guppy's "no data").

Planted by :func:`records_for_series` only, against the DICOM headers:

* about 1 study in 10 has headers but no guppy record (``in_dicom`` only);
* about 1 study in 12 gets a guppy-only sibling (a study UID with no headers);
* about 1 study in 15 disagrees with its headers on modality (CR ↔ DX, CT ↔ MR).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cohortdb.synthetic import dicom_values

# --------------------------------------------------------------------------- value pools
# A weighted pool maps each value to its share in percent (the shares sum to 100).

PROJECTS = ("Open-A1", "Open-R1", "Open-A1_PETAL_REDCORAL", "Sequestered-X1")
"""``<program>-<project>``; a case's ``auth_resource_path`` is :func:`auth_resource_path`."""
SEXES = {"Male": 48, "Female": 48, "Not Reported": 4}
SEX_CODES = {"Male": "M", "Female": "F"}
"""DICOM PatientSex of a guppy sex; any other code is "Not Reported"."""
RACES = dict.fromkeys(("White", "Black or African American", "Asian", "Other", "Not Reported"), 20)
ETHNICITIES = {"Hispanic or Latino": 40, "Not Hispanic or Latino": 50, "Not Reported": 10}
COVID = {"Yes": 40, "No": 40, "Indeterminate": 15, "Not Reported": 5}
AGES = range(18, 90)
"""Age at index (years) of a case with no DICOM header to give it."""

LOINC = {
    # modality: (code, long common name, method, system)
    "CR": ("36589-0", "Portable XR Chest AP single view", "XR.portable", "Chest"),
    "DX": ("36572-6", "XR Chest AP", "XR", "Chest"),
    "CT": ("24627-2", "CT Chest", "CT", "Chest"),
    "MR": ("24590-2", "MR Brain", "MR", "Head"),
}
MODALITIES = tuple(LOINC)
SWAPPED_MODALITY = {"CR": "DX", "DX": "CR", "CT": "MR", "MR": "CT"}
"""The modality a commons records by mistake for one in :data:`ONE_IN` ``["modality"]`` studies."""
BODY_SYSTEMS = {"CHEST": "Chest", "PORT CHEST": "Chest", "LUNG": "Chest", "THORAX": "Chest",
                "HEAD": "Head", "BRAIN": "Head"}
"""LOINC system of a BodyPartExamined; any other body part is its own system, capitalised."""
BODY_PARTS = {"CR": ("CHEST", "PORT CHEST"), "DX": ("CHEST", "PORT CHEST"), "CT": ("CHEST", "ABDOMEN"),
              "MR": ("HEAD", "CHEST")}
"""BodyPartExamined per modality of a study with no DICOM behind it."""

DEVICES = {
    "CR": tuple((d.manufacturer, d.model) for d in dicom_values.RADIOGRAPHY_DEVICES if d.modality == "CR"),
    "DX": tuple((d.manufacturer, d.model) for d in dicom_values.RADIOGRAPHY_DEVICES if d.modality == "DX"),
    "CT": tuple((s[0], s[1]) for s in dicom_values.CT_SCANNERS),
    "MR": tuple((s[0], s[1]) for s in dicom_values.MR_SCANNERS),
}
"""(Manufacturer, ManufacturerModelName) per modality: the DICOM corpus's devices."""
STUDY_DESCRIPTIONS = {
    "CR": tuple(t[0] for t in dicom_values.CHEST_STUDY_TYPES),
    "DX": tuple(t[0] for t in dicom_values.CHEST_STUDY_TYPES),
    "CT": tuple(t[0] for t in dicom_values.CT_STUDY_TYPES),
    "MR": dicom_values.MR_STUDY_DESCRIPTIONS,
}
SECTION_DESCRIPTIONS = {"CT": ("AXIAL 5mm", "LUNG 1.25mm", "STANDARD 2.5mm"),
                        "MR": tuple(s[0] for s in dicom_values.MR_SEQUENCES)}
"""SeriesDescription of CT/MR series; radiographs take theirs from their view."""
VIEWS = ("AP", "PA", "LL")
STUDY_YEARS = range(2019, 2024)

DAYS_TO_STUDY = range(0, 60)
"""Days from the index event to the study."""
POS_TESTS = range(0, 3)
"""How many positive COVID-19 tests a study has."""
POS_TEST_DAYS = range(-10, 30)
"""Days from the study to a positive test."""
NEG_TEST_DAYS = range(-100, 100)
"""Days from the study to a negative test; one study in :data:`ONE_IN` ``["negative-test"]`` has one."""
MRALE_SCORES = range(0, 25)
HIGH_MRALE_SCORES = range(20, 25)
MRALE_PERCENT, AUTO_ANNOTATION_PERCENT = 70, 60
"""Of the annotated studies, the shares (percent) with an mRALE score item and with an auto-annotation item."""
AUTO_ANNOTATION = {"annotation_method": "Retrospective_auto", "annotator_id": "SIFT"}

ONE_IN = {"annotated": 2, "covid-day-after": 4, "negative-test": 4, "no-ethnicity": 7,
          "dicom-only": 10, "guppy-only": 12, "modality": 15}
"""Planted traits and imperfections: about one case or study in N has each, chosen by a hash of its id."""

INDEX_EVENT = "First COVID test"
DATASET = "ACR_20220415"
OBJECT_ID_PREFIX = "dg.MD1R/"
CASE_SITE = dicom_values.SITES[0].site_id
CASE_ID_DIGITS = 7

SERIES_KEYS = (
    "patient_id", "patient_sex", "patient_age_years", "study_instance_uid", "study_date",
    "study_description", "series_instance_uid", "modality", "body_part_examined",
    "manufacturer", "manufacturer_model_name", "series_description", "view_position",
    "n_instances",
)
"""What each input series mapping of :func:`records_for_series` must hold (values may be None)."""

IMAGE_SUMMARY_KEYS = ("image_type", "pixel_spacing", "slice_thickness")
"""Header summaries a series mapping may also hold; copied to its data_file when present."""

Records = dict[str, list[dict[str, Any]]]


def auth_resource_path(project: str) -> str:
    """``/programs/<program>/projects/<project>`` of a ``<program>-<project>`` project id."""
    program, code = project.split("-", 1)
    return f"/programs/{program}/projects/{code}"


def case_submitter_id(number: int) -> str:
    """The submitter_id of case ``number`` (0-based) of a commons with no DICOM behind it."""
    return f"{CASE_SITE}-{number:0{CASE_ID_DIGITS}d}"


def loinc(modality: str, body_part: str | None) -> tuple[str | None, str | None, str, str | None]:
    """(code, long common name, method, system) of a study.

    The modality's LOINC code is given unless the body part names another system;
    without a code the method is the modality. The system is the body part's, or
    the code's when the body part is unknown (None when both are).
    """
    code, name, method, system = LOINC.get(modality, (None, None, modality, None))
    body_system = body_part_system(body_part)
    if body_system is not None and body_system != system:
        return None, None, modality, body_system
    return code, name, method, system


def body_part_system(body_part: str | None) -> str | None:
    """The LOINC system of a BodyPartExamined (see :data:`BODY_SYSTEMS`); None for None or ''."""
    if not body_part:
        return None
    return BODY_SYSTEMS.get(body_part.upper(), body_part.capitalize())


# --------------------------------------------------------------------------- entry points

def records_for_series(series: Iterable[Mapping[str, Any]], seed: int = 0) -> Records:
    """Guppy records of the three MIDRC indices describing ``series``.

    Args:
        series: one mapping per DICOM series with the keys of :data:`SERIES_KEYS`
            (``patient_age_years`` an int or None; ``study_date`` a date or None).
        seed: drives every random choice (demographics, ids, scores).

    Returns:
        ``{"case": [...], "imaging_study": [...], "data_file": [...]}``; cases and
        studies sorted by submitter_id, one data_file per series (a zip, as MIDRC ships).
    """
    rng = random.Random(seed)
    by_patient: dict[str, dict[str, list[Mapping[str, Any]]]] = defaultdict(lambda: defaultdict(list))
    for one in series:
        by_patient[one["patient_id"] or "unknown"][one["study_instance_uid"]].append(one)
    records: Records = {"case": [], "imaging_study": [], "data_file": []}
    for patient_id in sorted(by_patient):
        patient_studies = by_patient[patient_id]
        first = next(iter(patient_studies.values()))[0]
        sex = {code: sex for sex, code in SEX_CODES.items()}.get(first["patient_sex"], "Not Reported")
        case = _new_case(rng, patient_id, sex, first["patient_age_years"])
        studies: list[dict[str, Any]] = []
        for study_uid in sorted(patient_studies):
            study_series = patient_studies[study_uid]
            head = study_series[0]
            variants = [] if _planted(study_uid, "dicom-only") else [study_uid]
            if _planted(study_uid, "guppy-only"):
                variants.append(study_uid + ".9")
            for variant in variants:
                modality = head["modality"] or "OT"
                if _planted(variant, "modality"):
                    modality = SWAPPED_MODALITY.get(modality, modality)
                study = _study(rng, case, variant, modality, head["study_description"],
                               sorted({s["body_part_examined"] for s in study_series if s["body_part_examined"]}),
                               head["study_date"].year if head["study_date"] else None,
                               case.demographics.get("age_at_index"))
                suffix = variant[len(study_uid):]
                files = [_data_file(rng, case, study, one["series_instance_uid"] + suffix, one)
                         for one in study_series]
                studies.append(_with_files(study, files))
                records["data_file"].extend(files)
        records["imaging_study"].extend(studies)
        records["case"].append(_case(case, studies))
    records["imaging_study"].sort(key=lambda s: s["submitter_id"])
    return records


def generate(n_cases: int = 50, studies_per_case: int = 2, files_per_study: int = 2, seed: int = 0) -> Records:
    """Records of the three indices, linked by ids, for ``n_cases`` cases with no DICOM behind them.

    Counts: ``n_cases`` cases, ``n_cases * studies_per_case`` imaging studies, and
    ``files_per_study`` data files per study: the first a series zip, each other
    one a series zip (70 %) or an annotation file (CSV).
    """
    rng = random.Random(seed)
    records: Records = {"case": [], "imaging_study": [], "data_file": []}
    for number in range(n_cases):
        age = rng.choice(AGES) + rng.choice((0, 0.5))
        case = _new_case(rng, case_submitter_id(number), _pick(rng, SEXES), age)
        studies: list[dict[str, Any]] = []
        for _ in range(studies_per_case):
            modality = rng.choice(MODALITIES)
            study = _study(rng, case, _uid(rng), modality, rng.choice(STUDY_DESCRIPTIONS[modality]),
                           [rng.choice(BODY_PARTS[modality])], rng.choice(STUDY_YEARS), int(age) + rng.randrange(0, 2))
            files = [_data_file(rng, case, study, _uid(rng),
                                _sampled_series(rng, modality) if k == 0 or rng.random() < 0.7 else None)
                     for k in range(files_per_study)]
            studies.append(_with_files(study, files))
            records["data_file"].extend(files)
        records["imaging_study"].extend(studies)
        records["case"].append(_case(case, studies))
    return records


# --------------------------------------------------------------------------- record builders

@dataclass(frozen=True)
class _Case:
    """A case's ids, project and demographics (case scalars; an unknown one is absent)."""

    case_id: str
    guid: str
    project: str
    demographics: dict[str, Any]


def _new_case(rng: random.Random, case_id: str, sex: str, age: float | None) -> _Case:
    demographics = {
        "sex": sex,
        "race": _pick(rng, RACES),
        "ethnicity": None if _planted(case_id, "no-ethnicity") else _pick(rng, ETHNICITIES),
        "age_at_index": age,
        "index_event": INDEX_EVENT,
        "covid19_positive": _pick(rng, COVID),
        "zip": f"{rng.randrange(100, 999)}",
    }
    project = PROJECTS[_bucket(case_id, "project", len(PROJECTS))]
    return _Case(case_id, _guid(rng), project, _present(demographics))


def _study(rng: random.Random, case: _Case, study_uid: str, modality: str, description: str | None,
           body_parts: list[str], year: int | None, age_at_imaging: float | None) -> dict[str, Any]:
    """An imaging_study record without its files (see :func:`_with_files`)."""
    code, name, method, system = loinc(modality, body_parts[0] if body_parts else None)
    positive = sorted(rng.choice(POS_TEST_DAYS) for _ in range(rng.choice(POS_TESTS)))
    day_after = _planted(study_uid, "covid-day-after")
    if day_after:
        positive = sorted({*positive, -1})
    negative = [rng.choice(NEG_TEST_DAYS)] if _planted(study_uid, "negative-test") else None
    return _present({
        "_imaging_study_id": _guid(rng),
        "project_id": case.project,
        "submitter_id": study_uid,
        "case_ids": [case.case_id],
        "study_uid": study_uid,
        "study_description": description,
        "study_modality": [modality],
        "body_part_examined": body_parts,
        "age_at_imaging": age_at_imaging,
        "days_to_study": rng.choice(DAYS_TO_STUDY),
        "study_year": year,
        "study_year_shifted": "true",
        "days_from_study_to_pos_covid_test": positive or None,
        "days_from_study_to_neg_covid_test": negative,
        "loinc_code": code,
        "loinc_long_common_name": name,
        "loinc_method": method,
        "loinc_system": system,
        **{key: [value] for key, value in case.demographics.items()},
        "dataset_submitter_id": [DATASET],
        "imaging_study_annotations": _annotations(rng, study_uid, high_score=day_after) or None,
        "auth_resource_path": auth_resource_path(case.project),
    })


def _annotations(rng: random.Random, study_uid: str, high_score: bool) -> list[dict[str, Any]]:
    """Items with differing keys: an mRALE score, an auto-annotation, and a high score when asked."""
    items: list[dict[str, Any]] = []
    if _planted(study_uid, "annotated"):
        if rng.randrange(100) < MRALE_PERCENT:
            items.append({"midrc_mRALE_score": rng.choice(MRALE_SCORES), "_annotation_id": _guid(rng)})
        if rng.randrange(100) < AUTO_ANNOTATION_PERCENT:
            items.append({**AUTO_ANNOTATION, "instance_uids": [f"{study_uid}.{rng.randrange(1, 99)}"],
                          "_annotation_id": _guid(rng)})
    if high_score:
        items.append({"midrc_mRALE_score": rng.choice(HIGH_MRALE_SCORES), "_annotation_id": _guid(rng)})
    return items


def _data_file(rng: random.Random, case: _Case, study: Mapping[str, Any], series_uid: str,
               series: Mapping[str, Any] | None) -> dict[str, Any]:
    """A series zip (``series``: the keys of :data:`SERIES_KEYS`, perhaps :data:`IMAGE_SUMMARY_KEYS`)
    or, when ``series`` is None, an annotation file. File sizes are in bytes."""
    study_uid = study["study_uid"]
    modality = study["study_modality"][0]
    record: dict[str, Any] = {
        "_data_file_id": _guid(rng),
        "project_id": case.project,
        "submitter_id": series_uid,
        "series_uid": series_uid,
        "case_ids": [case.case_id],
        "object_id": OBJECT_ID_PREFIX + _guid(rng),
        "md5sum": f"{rng.getrandbits(128):032x}",
        "file_name": f"{case.case_id}/{study_uid}/{series_uid}.zip",
        "file_size": ((series or {}).get("n_instances") or 1) * rng.randrange(500_000, 9_000_000),
        "data_format": "DCM" if series else "CSV",
        "data_type": "DICOM" if series else "MIDRC Annotation",
        "data_category": modality if series else "annotation_file",
        "source_node": f"{modality.lower()}_series_file" if series else "annotation_file",
        "auth_resource_path": study["auth_resource_path"],
        "_case_id": [case.guid],
        "_imaging_study_id": [study["_imaging_study_id"]],
        **{key: [value] for key, value in case.demographics.items()},
        "study_uid": [study_uid],
        "study_modality": study["study_modality"],
        "age_at_imaging": [study["age_at_imaging"]] if "age_at_imaging" in study else [],
        "days_from_study_to_pos_covid_test": [str(d) for d in study.get("days_from_study_to_pos_covid_test", [])],
        "days_from_study_to_neg_covid_test": [str(d) for d in study.get("days_from_study_to_neg_covid_test", [])],
        "study_year": [],  # as on MIDRC: a study field the data_file mapping often leaves empty
        "loinc_system": [study["loinc_system"]] if "loinc_system" in study else [],
    }
    if series:
        record.update({
            "modality": modality,
            "manufacturer": series["manufacturer"],
            "manufacturer_model_name": series["manufacturer_model_name"],
            "series_description": series["series_description"],
            "view_position": [series["view_position"]] if series["view_position"] else [],
            "number_of_instances": series["n_instances"],
            **{key: series[key] for key in IMAGE_SUMMARY_KEYS if key in series},
        })
    return _present(record)


def _with_files(study: dict[str, Any], files: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """``study`` with the fields its data files give it (object ids, formats, series count)."""
    study["object_id"] = [f["object_id"] for f in files]
    study["data_format"] = sorted({f["data_format"] for f in files})
    series = sum(f["data_format"] == "DCM" for f in files)
    if series:
        study[f"{study['study_modality'][0].lower()}_series_file"] = series
    return study


def _case(case: _Case, studies: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """A case record summarising its ``studies``."""
    return _present({
        "_case_id": case.guid,
        "project_id": case.project,
        "submitter_id": case.case_id,
        **case.demographics,
        "dataset_submitter_id": DATASET,
        "_imaging_studies_count": len(studies),
        "data_file_count": sum(len(s["object_id"]) for s in studies),
        "object_id": [o for s in studies for o in s["object_id"]],
        "imaging_studies": [
            {k: s[k] for k in ("study_uid", "study_modality", "age_at_imaging", "days_to_study",
                               "study_description") if k in s}
            for s in studies
        ],
        "imaging_study_annotations": [a for s in studies for a in s.get("imaging_study_annotations", [])] or None,
        "auth_resource_path": auth_resource_path(case.project),
    })


def _sampled_series(rng: random.Random, modality: str) -> dict[str, Any]:
    """The :data:`SERIES_KEYS` a data_file reads, and image summaries, for a series with no DICOM."""
    manufacturer, model = rng.choice(DEVICES[modality])
    view = rng.choice(VIEWS) if modality in ("CR", "DX") else None
    descriptions = dicom_values.VIEW_SERIES_DESCRIPTIONS[view] if view else SECTION_DESCRIPTIONS[modality]
    return {
        "manufacturer": manufacturer,
        "manufacturer_model_name": model,
        "series_description": rng.choice(descriptions),
        "view_position": view,
        "n_instances": rng.randrange(1, 4) if view else rng.randrange(20, 400),
        "image_type": ["DERIVED", "PRIMARY"],
        "pixel_spacing": [0.139, 0.139],
        "slice_thickness": [rng.choice([1.0, 2.5, 5])],
    }


# --------------------------------------------------------------------------- helpers

def _pick(rng: random.Random, pool: Mapping[str, int]) -> str:
    """A value of a weighted pool."""
    return rng.choices(tuple(pool), weights=tuple(pool.values()))[0]


def _bucket(text: str, salt: str, buckets: int) -> int:
    """A stable 0-based bucket of ``text`` (independent of PYTHONHASHSEED)."""
    digest = hashlib.sha1(f"{salt}|{text}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets


def _planted(key: str, imperfection: str) -> bool:
    """Whether the case or study ``key`` has ``imperfection`` (one in :data:`ONE_IN` of them)."""
    return _bucket(key, imperfection, ONE_IN[imperfection]) == 0


def _present(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` without its None fields (guppy leaves a missing field out)."""
    return {key: value for key, value in record.items() if value is not None}


def _uid(rng: random.Random) -> str:
    return dicom_values.UID_ROOT + ".".join(str(rng.randrange(10**9)) for _ in range(3))


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
