"""The mock site's guppy records agree with themselves and with the DICOM headers they describe."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

import pytest

from cohortdb.synthetic import dicom_values as values
from cohortdb.synthetic.dicom import plan_corpus, series_datasets
from cohortdb.synthetic.guppy import BODY_SYSTEMS, Records, generate, records_for_series

METHOD_MODALITIES = {"XR": {"CR", "DX"}, "XR.portable": {"CR", "DX"}, "CT": {"CT"}, "CT.angio": {"CT"},
                     "MR": {"MR"}}


def _check_digit_ok(code: str) -> bool:
    """LOINC's mod 10 check digit (the Luhn algorithm on the part before the dash)."""
    number, check = code.split("-")
    total = 0
    for position, digit in enumerate(int(d) for d in reversed(number)):
        doubled = digit * 2 if position % 2 == 0 else digit
        total += doubled - 9 if doubled > 9 else doubled
    return (10 - total % 10) % 10 == int(check)


def _views_named(long_common_name: str) -> int:
    if "3 Views" in long_common_name:
        return 3
    return 2 if "2 Views" in long_common_name or " and " in long_common_name else 1


def _views(description: str) -> tuple[str, ...]:
    """The view of each series of a radiograph study type; () for CT and MR."""
    return next((t[1] for t in values.CHEST_STUDY_TYPES if t[0] == description), ())


@pytest.fixture(scope="module")
def generated() -> Records:
    return generate(n_cases=300, studies_per_case=3, files_per_study=3, seed=5)


@pytest.fixture(scope="module")
def headers() -> list[dict[str, Any]]:
    """One mapping per series of a synthetic corpus (what the demo reads from the lake)."""
    series = []
    for plan in plan_corpus(n_crdx=400, n_ct_series=6, ct_slices=1, n_mr_series=6, mr_slices=1, seed=7):
        ds = next(series_datasets(plan, pixel_bytes=16))
        series.append({
            "patient_id": ds.PatientID, "patient_sex": ds.PatientSex,
            "patient_age_years": int(ds.PatientAge[:3]), "study_instance_uid": ds.StudyInstanceUID,
            "study_date": dt.datetime.strptime(ds.StudyDate, "%Y%m%d").date(),
            "study_description": ds.StudyDescription, "series_instance_uid": ds.SeriesInstanceUID,
            "modality": ds.Modality, "body_part_examined": ds.BodyPartExamined,
            "manufacturer": ds.get("Manufacturer"), "manufacturer_model_name": ds.get("ManufacturerModelName"),
            "series_description": ds.SeriesDescription, "view_position": ds.get("ViewPosition"),
            "n_instances": plan.n_instances,
            "contrast_bolus_agent": ds.get("ContrastBolusAgent"),
            "procedure_code": ds.ProcedureCodeSequence[0].CodeValue if "ProcedureCodeSequence" in ds else None,
        })
    return series


@pytest.fixture(scope="module")
def described(headers: list[dict[str, Any]]) -> Records:
    return records_for_series(headers, seed=7)


def _check_loinc(studies: Iterable[dict[str, Any]], true_modality: dict[str, str]) -> None:
    by_code: dict[str, set[tuple[str, str, str]]] = defaultdict(set)
    by_name: dict[str, set[str]] = defaultdict(set)
    by_description: dict[str, set[str | None]] = defaultdict(set)
    descriptions_of_code: dict[str, set[str]] = defaultdict(set)
    for study in studies:
        code, name = study.get("loinc_code"), study.get("loinc_long_common_name")
        description = study["study_description"]
        by_description[description].add(code)
        assert code is not None, study  # every study type of the mock site has its procedure
        assert name is not None and _check_digit_ok(code), (code, name)
        by_code[code].add((name, study["loinc_method"], study["loinc_system"]))
        by_name[name].add(code)
        descriptions_of_code[code].add(description)
        assert true_modality[study["study_uid"]] in METHOD_MODALITIES[study["loinc_method"]], study
        for body_part in study["body_part_examined"]:
            assert BODY_SYSTEMS[body_part] == study["loinc_system"].split(">")[0], study
        assert ("PORTABLE" in description) == (study["loinc_method"] == "XR.portable"), study
        if _views(description):
            assert _views_named(name) == len(_views(description)), (description, name)
    assert all(len(v) == 1 for v in by_code.values()), by_code
    assert all(len(v) == 1 for v in by_name.values()), by_name
    assert all(len(v) == 1 for v in by_description.values()), by_description
    assert all(len(v) == 1 for v in descriptions_of_code.values()), descriptions_of_code


def _check_covid_and_ages(records: Records) -> None:
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for study in records["imaging_study"]:
        by_case[study["case_ids"][0]].append(study)
    cases = {case["submitter_id"]: case for case in records["case"]}
    for case_id, studies in by_case.items():
        status = cases[case_id]["covid19_positive"]
        positive_days, negative_days = set(), set()
        for study in studies:
            assert study["covid19_positive"] == [status]
            day = study["days_to_study"]
            assert day >= 0
            positive = study.get("days_from_study_to_pos_covid_test", [])
            negative = study.get("days_from_study_to_neg_covid_test", [])
            if status != "Yes":
                assert not positive, study  # no positive test for a case that is not positive
            if status == "Yes":
                assert -day in positive  # its first test, the index event, was positive
                assert not negative or min(negative) > max(positive)
            elif status == "No":
                assert -day in negative
            else:
                assert not negative
            assert all(offset + day >= 0 for offset in [*positive, *negative])  # none before the first
            positive_days.add(tuple(sorted(offset + day for offset in positive)))
            negative_days.add(tuple(sorted(offset + day for offset in negative)))
            age_at_index = study["age_at_index"][0]
            assert 18 <= age_at_index <= 90
            assert age_at_index <= study["age_at_imaging"] <= age_at_index + day / 365 + 1, study
            assert 2020 <= study["study_year"] <= 2023
        assert len(positive_days) == 1 and len(negative_days) == 1, (case_id, positive_days, negative_days)
    files = {f["object_id"]: f for f in records["data_file"]}
    for study in records["imaging_study"]:
        for object_id in study["object_id"]:
            copied = files[object_id]
            assert copied["covid19_positive"] == study["covid19_positive"]
            assert copied["days_from_study_to_pos_covid_test"] == \
                [str(d) for d in study.get("days_from_study_to_pos_covid_test", [])]


def test_generated_records_agree_with_themselves(generated: Records) -> None:
    studies = generated["imaging_study"]
    _check_loinc(studies, {s["study_uid"]: s["study_modality"][0] for s in studies})
    _check_covid_and_ages(generated)
    by_uid = {s["study_uid"]: s for s in studies}
    for file in generated["data_file"]:
        study = by_uid[file["study_uid"][0]]
        if file.get("view_position"):
            assert file["view_position"][0] in _views(study["study_description"]), (file, study)
        if file["data_format"] == "DCM" and study["study_modality"] == ["MR"]:
            assert file["series_description"] in values.MR_STUDY_TYPES[
                values.MR_STUDY_DESCRIPTIONS.index(study["study_description"])][4]
    # seed 000's cohort has its studies: imaged 0-2 days after a positive test, high mRALE
    assert any(s["study_modality"][0] in ("CR", "DX") and s["loinc_system"] == "Chest"
               and any(-2 <= d <= 0 for d in s.get("days_from_study_to_pos_covid_test", []))
               and any(a.get("midrc_mRALE_score", 0) >= 20 for a in s.get("imaging_study_annotations", []))
               for s in studies)


def test_described_records_agree_with_their_headers(headers: list[dict[str, Any]],
                                                    described: Records) -> None:
    by_study: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for one in headers:
        by_study[one["study_instance_uid"]].append(one)
    studies = described["imaging_study"]
    truth = {s["study_uid"]: by_study[s["study_uid"].removesuffix(".9")][0] for s in studies}
    _check_loinc(studies, {uid: head["modality"] for uid, head in truth.items()})
    _check_covid_and_ages(described)
    for study in studies:
        head = truth[study["study_uid"]]
        assert study["study_description"] == head["study_description"]
        assert study["study_year"] == head["study_date"].year
        assert study["age_at_imaging"] == head["patient_age_years"]
    by_case: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for study in studies:
        by_case[study["case_ids"][0]].append(study)
    first_dates: dict[str, dt.date] = {}
    for one in headers:
        first_dates[one["patient_id"]] = min(one["study_date"], first_dates.get(one["patient_id"], one["study_date"]))
    for case_id, case_studies in by_case.items():  # one timeline: the index event precedes the first study
        leads = {s["days_to_study"] - (truth[s["study_uid"]]["study_date"] - first_dates[case_id]).days
                 for s in case_studies}
        assert len(leads) == 1 and 0 <= leads.pop() < 15
    assert {s["study_modality"][0] for s in studies} >= {"CR", "DX", "CT", "MR"}


def test_headers_agree_with_their_study_type(headers: list[dict[str, Any]]) -> None:
    for one in headers:
        description = one["study_description"]
        if one["modality"] in ("CR", "DX"):
            views = next(t[1] for t in values.CHEST_STUDY_TYPES if t[0] == description)
            assert one["view_position"] in views
            if description.startswith(values.DX_ONLY_PREFIX):
                assert one["modality"] == "DX"
        elif one["modality"] == "CT":
            _, code, _, agent, _ = next(t for t in values.CT_STUDY_TYPES if t[0] == description)
            assert (one["procedure_code"], one["contrast_bolus_agent"] or "") == (code, agent)
            assert ("WO" in description or "HIGH RESOLUTION" in description) == (not agent)
        else:
            _, body_part, code, _, sequences, _ = next(t for t in values.MR_STUDY_TYPES if t[0] == description)
            assert (one["body_part_examined"], one["procedure_code"]) == (body_part, code)
            assert one["series_description"] in sequences
