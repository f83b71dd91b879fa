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

The records agree with themselves, as a real site's do:

* a study's LOINC code, long common name, method and system are its study
  type's (:data:`LOINC`: one code per study description), and so are its body
  part and its series' views or sequences (the DICOM corpus's study types);
* a case's COVID-19 tests lie on one timeline whose day 0 is its index event,
  its first COVID-19 test: a ``Yes`` case's first test was positive, a ``No``
  case's tests were all negative, any other case has no test result; each
  study's ``days_to_study`` and ``days_from_study_to_{pos,neg}_covid_test``
  are measured on that timeline;
* ages at imaging follow the age at index and the days since; study years lie
  in the COVID-19 era (2020 on). Against headers (:func:`records_for_series`),
  dates, ages and descriptions are the headers': the first study follows the
  index event by 0–14 days.

Planted by both (deterministic, by a hash of the case or study id; see :data:`ONE_IN`):

* half the studies carry ``imaging_study_annotations`` (an mRALE score and/or
  an auto-annotation item);
* about 1 study in 2 of a COVID-19 positive case imaged within 30 days of its
  index event was imaged the day after a positive test (the day of it, for a
  study on day 0), with a high mRALE score (20–24), so that seed 000's cohort
  is not empty;
* about 1 case in 7 has no ethnicity (guppy's "no data").

Planted by :func:`records_for_series` only, against the DICOM headers:

* about 1 study in 10 has headers but no guppy record (``in_dicom`` only);
* about 1 study in 12 gets a guppy-only sibling (a study UID with no headers);
* about 1 study in 15 disagrees with its headers on modality (CR ↔ DX, CT ↔ MR;
  its LOINC procedure stays the study's).
"""

from __future__ import annotations

import hashlib
import random
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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
    # StudyDescription of a study type: (code, long common name, method, system)
    "XR CHEST 1 VIEW AP": ("36572-6", "XR Chest AP", "XR", "Chest"),
    "XR CHEST PORTABLE": ("36589-0", "Portable XR Chest AP single view", "XR.portable", "Chest"),
    "XR CHEST 1 VIEW PA": ("24648-8", "XR Chest PA upright", "XR", "Chest"),
    "XR CHEST 2 VIEWS PA AND LATERAL": ("24647-0", "XR Chest PA and Lateral upright", "XR", "Chest"),
    "XR CHEST 2 VIEWS AP AND LATERAL": ("36687-2", "XR Chest AP and Lateral", "XR", "Chest"),
    "XR CHEST 3 VIEWS": ("36298-8", "XR Chest 3 Views", "XR", "Chest"),
    "DX CHEST PA/LAT": ("36643-5", "XR Chest 2 Views", "XR", "Chest"),
    "CT CHEST WO CONTRAST": ("29252-4", "CT Chest WO contrast", "CT", "Chest"),
    "CT CHEST W CONTRAST": ("24628-0", "CT Chest W contrast IV", "CT", "Chest"),
    "CTA CHEST PE PROTOCOL": ("36266-5", "CTA Chest vessels W contrast IV", "CT.angio", "Chest>Vessels"),
    "CT CHEST HIGH RESOLUTION": ("24627-2", "CT Chest", "CT", "Chest"),
    "MRI CHEST WO CONTRAST": ("36442-2", "MR Chest WO contrast", "MR", "Chest"),
    "MR CARDIAC MORPHOLOGY": ("36482-8", "MR Heart WO contrast", "MR", "Chest>Heart"),
    "MRI BRAIN WO CONTRAST": ("30657-1", "MR Brain WO contrast", "MR", "Head>Brain"),
}
"""The LOINC procedure (LOINC/RSNA Radiology Playbook) of each study type of the mock site."""
REGION_LOINC = {
    # (modality, body region): (code, long common name, method, system)
    ("CR", "Chest"): ("30745-4", "XR Chest Views", "XR", "Chest"),
    ("DX", "Chest"): ("30745-4", "XR Chest Views", "XR", "Chest"),
    ("CT", "Chest"): ("24627-2", "CT Chest", "CT", "Chest"),
    ("MR", "Chest"): ("24629-8", "MR Chest", "MR", "Chest"),
    ("MR", "Head"): ("24590-2", "MR Brain", "MR", "Head>Brain"),
}
"""The generic LOINC procedure of a modality and body region: for a study of no known study type."""
MODALITIES = ("CR", "DX", "CT", "MR")
SWAPPED_MODALITY = {"CR": "DX", "DX": "CR", "CT": "MR", "MR": "CT"}
"""The modality a commons records by mistake for one in :data:`ONE_IN` ``["modality"]`` studies."""
BODY_SYSTEMS = {"CHEST": "Chest", "PORT CHEST": "Chest", "LUNG": "Chest", "THORAX": "Chest",
                "HEART": "Chest", "HEAD": "Head", "BRAIN": "Head"}
"""Body region (a LOINC system's first part) of a BodyPartExamined; any other is itself, capitalised."""

DEVICES = {
    "CR": tuple((d.manufacturer, d.model) for d in dicom_values.RADIOGRAPHY_DEVICES if d.modality == "CR"),
    "DX": tuple((d.manufacturer, d.model) for d in dicom_values.RADIOGRAPHY_DEVICES if d.modality == "DX"),
    "CT": tuple((s[0], s[1]) for s in dicom_values.CT_SCANNERS),
    "MR": tuple((s[0], s[1]) for s in dicom_values.MR_SCANNERS),
}
"""(Manufacturer, ManufacturerModelName) per modality: the DICOM corpus's devices."""
StudyType = tuple[str, str, tuple[str | None, ...], int]
"""(StudyDescription, BodyPartExamined, the view of each series in order (None: CT/MR), weight)."""
STUDY_TYPES: dict[str, tuple[StudyType, ...]] = {
    "CR": tuple((t[0], "CHEST", t[1], t[2]) for t in dicom_values.CHEST_STUDY_TYPES
                if not t[0].startswith(dicom_values.DX_ONLY_PREFIX)),
    "DX": tuple((t[0], "CHEST", t[1], t[2]) for t in dicom_values.CHEST_STUDY_TYPES),
    "CT": tuple((t[0], "CHEST", (None,), t[-1]) for t in dicom_values.CT_STUDY_TYPES),
    "MR": tuple((t[0], t[1], (None,) * len(t[4]), t[-1]) for t in dicom_values.MR_STUDY_TYPES),
}
"""The DICOM corpus's study types, per modality."""
SECTION_DESCRIPTIONS = {"CT": ("AXIAL 5mm", "LUNG 1.25mm", "STANDARD 2.5mm"),
                        **{t[0]: t[4] for t in dicom_values.MR_STUDY_TYPES}}
"""SeriesDescriptions of CT series, and of each MR study type's series in order (by its
StudyDescription); radiographs take theirs from their view."""

FIRST_INDEX_DAY = date(2020, 3, 1)
INDEX_DAYS = 1300
"""A case with no DICOM behind it has its index event within INDEX_DAYS days of FIRST_INDEX_DAY."""
DAYS_TO_STUDY = range(0, 60)
"""Days from the index event to a study, for a case with no DICOM header to date it."""
FIRST_STUDY_LEAD = range(0, 15)
"""Days from the index event (the first COVID-19 test) to a case's first study with a header date."""
ACUTE_DAYS = 30
"""A positive case's studies imaged within ACUTE_DAYS of its index event may be planted
``covid-day-after`` (a positive test the day before)."""
RETEST_DAYS = range(2, 21)
"""Day (from the index event) of a positive case's second positive test, one case in
:data:`ONE_IN` ``["retest"]``."""
NEG_TEST_DAYS = range(1, 90)
"""Days from a negative case's first test to a later negative one, or from a positive case's
last positive test to a negative one (one case in :data:`ONE_IN` ``["negative-test"]`` each)."""
MRALE_SCORES = range(0, 25)
HIGH_MRALE_SCORES = range(20, 25)
MRALE_PERCENT, AUTO_ANNOTATION_PERCENT = 70, 60
"""Of the annotated studies, the shares (percent) with an mRALE score item and with an auto-annotation item."""
AUTO_ANNOTATION = {"annotation_method": "Retrospective_auto", "annotator_id": "SIFT"}

ONE_IN = {"annotated": 2, "covid-day-after": 2, "negative-test": 4, "retest": 3, "no-ethnicity": 7,
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
Loinc = tuple[str | None, str | None, str, str | None]
"""(code, long common name, method, system) of a study's procedure."""


def auth_resource_path(project: str) -> str:
    """``/programs/<program>/projects/<project>`` of a ``<program>-<project>`` project id."""
    program, code = project.split("-", 1)
    return f"/programs/{program}/projects/{code}"


def case_submitter_id(number: int) -> str:
    """The submitter_id of case ``number`` (0-based) of a commons with no DICOM behind it."""
    return f"{CASE_SITE}-{number:0{CASE_ID_DIGITS}d}"


def loinc(description: str | None, modality: str, body_part: str | None) -> Loinc:
    """The LOINC procedure of a study: its study type's (:data:`LOINC`), else the generic
    one of its modality and body region (:data:`REGION_LOINC`), else no code: the method is
    the modality and the system the body region (None when the body part is unknown)."""
    if description in LOINC:
        return LOINC[description]
    region = body_part_system(body_part)
    return REGION_LOINC.get((modality, region or ""), (None, None, modality, region))


def body_part_system(body_part: str | None) -> str | None:
    """The body region of a BodyPartExamined (see :data:`BODY_SYSTEMS`); None for None or ''."""
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
        heads = [patient_studies[uid][0] for uid in sorted(patient_studies)]
        dated = [head for head in heads if head["study_date"]]
        first = min(dated, key=lambda head: head["study_date"]) if dated else heads[0]
        sex = {code: sex for sex, code in SEX_CODES.items()}.get(first["patient_sex"], "Not Reported")
        case = _new_case(rng, patient_id, sex, first["patient_age_years"])
        index_day = first["study_date"] - timedelta(days=rng.choice(FIRST_STUDY_LEAD)) if dated else None
        planned: list[tuple[str, list[Mapping[str, Any]], int]] = []
        for study_uid in sorted(patient_studies):
            study_series = patient_studies[study_uid]
            study_date = study_series[0]["study_date"]
            day = (study_date - index_day).days if study_date and index_day else rng.choice(DAYS_TO_STUDY)
            variants = [] if _planted(study_uid, "dicom-only") else [study_uid]
            if _planted(study_uid, "guppy-only"):
                variants.append(study_uid + ".9")
            planned.extend((variant, study_series, day) for variant in variants)
        tests = _covid_tests(rng, case, [(variant, day) for variant, _, day in planned])
        studies: list[dict[str, Any]] = []
        for variant, study_series, day in planned:
            head = study_series[0]
            true_modality = head["modality"] or "OT"
            modality = SWAPPED_MODALITY.get(true_modality, true_modality) \
                if _planted(variant, "modality") else true_modality
            body_parts = sorted({s["body_part_examined"] for s in study_series if s["body_part_examined"]})
            age = head["patient_age_years"]
            if age is None and case.age_at_index is not None:
                age = case.age_at_index + day // 365
            study = _study(rng, case, tests, variant, modality, head["study_description"], body_parts,
                           loinc(head["study_description"], true_modality, body_parts[0] if body_parts else None),
                           head["study_date"].year if head["study_date"] else None, day, age)
            suffix = variant[len(head["study_instance_uid"]):]
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
        index_day = FIRST_INDEX_DAY + timedelta(days=rng.randrange(INDEX_DAYS))
        planned: list[tuple[str, str, StudyType, int]] = []
        for _ in range(studies_per_case):
            modality = rng.choice(MODALITIES)
            types = STUDY_TYPES[modality]
            study_type = rng.choices(types, weights=[t[-1] for t in types])[0]
            planned.append((_uid(rng), modality, study_type, rng.choice(DAYS_TO_STUDY)))
        tests = _covid_tests(rng, case, [(uid, day) for uid, _, _, day in planned])
        studies: list[dict[str, Any]] = []
        for uid, modality, (description, body_part, views, _), day in planned:
            study = _study(rng, case, tests, uid, modality, description, [body_part],
                           loinc(description, modality, body_part),
                           (index_day + timedelta(days=day)).year, day, age + day // 365)
            files = [_data_file(rng, case, study, _uid(rng),
                                _sampled_series(rng, modality, description, views, k)
                                if k == 0 or rng.random() < 0.7 else None)
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

    @property
    def age_at_index(self) -> float | None:
        age: float | None = self.demographics.get("age_at_index")
        return age

    @property
    def positive(self) -> bool:
        return bool(self.demographics.get("covid19_positive") == "Yes")


@dataclass(frozen=True)
class _Tests:
    """A case's COVID-19 test days, counted from its index event (its first test, day 0)."""

    positive: tuple[int, ...]
    negative: tuple[int, ...]

    def from_study(self, days: tuple[int, ...], day: int) -> list[int] | None:
        """``days`` as days from a study on ``day`` (a test before it is negative); None for none."""
        return [test - day for test in days] or None


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


def _covid_tests(rng: random.Random, case: _Case, studies: Sequence[tuple[str, int]]) -> _Tests:
    """The case's tests: for a ``Yes`` case, a positive first test, perhaps a positive retest,
    a positive test the day before each study planted ``covid-day-after`` (``studies``: their
    ids and days) and perhaps a negative test after the last positive one; for a ``No`` case,
    a negative first test and perhaps a later negative one; none for any other status."""
    status = case.demographics.get("covid19_positive")
    if status == "Yes":
        positive = {0}
        if _planted(case.case_id, "retest"):
            positive.add(rng.choice(RETEST_DAYS))
        positive.update(max(day - 1, 0) for study_uid, day in studies if _day_after(case, study_uid, day))
        negative = {max(positive) + rng.choice(NEG_TEST_DAYS)} if _planted(case.case_id, "negative-test") else set()
        return _Tests(tuple(sorted(positive)), tuple(sorted(negative)))
    if status == "No":
        negative = {0}
        if _planted(case.case_id, "negative-test"):
            negative.add(rng.choice(NEG_TEST_DAYS))
        return _Tests((), tuple(sorted(negative)))
    return _Tests((), ())


def _day_after(case: _Case, study_uid: str, day: int) -> bool:
    """Whether the study, ``day`` days after the index event, was planted ``covid-day-after``:
    only a positive case's, while it is acute (:data:`ACUTE_DAYS`)."""
    return case.positive and day < ACUTE_DAYS and _planted(study_uid, "covid-day-after")


def _study(rng: random.Random, case: _Case, tests: _Tests, study_uid: str, modality: str,
           description: str | None, body_parts: list[str], procedure: Loinc, year: int | None,
           day: int, age_at_imaging: float | None) -> dict[str, Any]:
    """An imaging_study record without its files (see :func:`_with_files`); ``day``: days
    from the case's index event to the study."""
    code, name, method, system = procedure
    day_after = _day_after(case, study_uid, day)
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
        "days_to_study": day,
        "study_year": year,
        "study_year_shifted": "true",
        "days_from_study_to_pos_covid_test": tests.from_study(tests.positive, day),
        "days_from_study_to_neg_covid_test": tests.from_study(tests.negative, day),
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


def _sampled_series(rng: random.Random, modality: str, description: str,
                    views: tuple[str | None, ...], number: int) -> dict[str, Any]:
    """The :data:`SERIES_KEYS` a data_file reads, and image summaries, for series ``number``
    (0-based) of a study of type ``description`` with no DICOM (``views``: its study type's)."""
    manufacturer, model = rng.choice(DEVICES[modality])
    view = views[number % len(views)]
    if view:
        series_description = rng.choice(dicom_values.VIEW_SERIES_DESCRIPTIONS[view])
    elif description in SECTION_DESCRIPTIONS:
        sequences = SECTION_DESCRIPTIONS[description]
        series_description = sequences[number % len(sequences)]
    else:
        series_description = rng.choice(SECTION_DESCRIPTIONS[modality])
    sampled: dict[str, Any] = {
        "manufacturer": manufacturer,
        "manufacturer_model_name": model,
        "series_description": series_description,
        "view_position": view,
        "n_instances": rng.randrange(1, 3) if view else rng.randrange(20, 400),
        "image_type": ["DERIVED", "PRIMARY"] if view else ["ORIGINAL", "PRIMARY", "AXIAL"],
        "pixel_spacing": [0.139, 0.139] if view else [0.7, 0.7],
    }
    if not view:
        sampled["slice_thickness"] = [rng.choice([1.0, 2.5, 5])]
    return sampled


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
