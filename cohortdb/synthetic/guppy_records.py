"""Deterministic MIDRC-shaped guppy records: case, imaging_study and data_file.

Shapes follow the reference (cdis-manifest etlMapping for data.midrc.org) and
seed 000: imaging_study has int arrays where data_file has the same values as
``fn: set`` string arrays; optional fields are sometimes absent or ``[]``;
``imaging_study_annotations`` items have differing keys. Same ``seed`` and
sizes, same records.
"""

from __future__ import annotations

import random
import uuid
from typing import Any

SEXES = ["Female", "Male", "Not Reported"]
RACES = ["White", "Black or African American", "Asian", "Other", "Not Reported"]
ETHNICITIES = ["Hispanic or Latino", "Not Hispanic or Latino", "Not Reported"]
COVID = ["Yes", "No", "Indeterminate", "Not Reported"]
MODALITIES = ["CT", "CR", "DX", "MR"]
BODY_PARTS = ["CHEST", "PORT CHEST", "ABDOMEN", "HEAD"]
LOINC = [
    ("36589-0", "Portable XR Chest AP single view", "XR.portable", "Chest"),
    ("36572-6", "XR Chest AP", "XR", "Chest"),
    ("24627-2", "CT Chest", "CT", "Chest"),
]
MANUFACTURERS = ["CARESTREAM HEALTH", "GE MEDICAL SYSTEMS", "SIEMENS", "Philips"]
PROJECTS = ["Open-A1", "Open-R1", "Sequestered-X1"]


def _uid(rng: random.Random) -> str:
    return "1.2.826.0.1.3680043.10." + ".".join(str(rng.randrange(10**9)) for _ in range(4))


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def generate(n_cases: int = 50, studies_per_case: int = 2, files_per_study: int = 2,
             seed: int = 0) -> dict[str, list[dict[str, Any]]]:
    """Records of the three indices, linked by ids, for ``n_cases`` cases.

    Counts: ``n_cases`` cases, ``n_cases * studies_per_case`` imaging studies,
    and ``files_per_study`` data files per study.
    """
    rng = random.Random(seed)
    cases: list[dict[str, Any]] = []
    studies: list[dict[str, Any]] = []
    files: list[dict[str, Any]] = []
    for case_number in range(n_cases):
        project = PROJECTS[case_number % len(PROJECTS)]
        program, code = project.split("-")
        case_id = f"{419639 + case_number:06d}-{case_number:06d}"
        demographics: dict[str, Any] = {
            "sex": rng.choice(SEXES),
            "race": rng.choice(RACES),
            "ethnicity": rng.choice(ETHNICITIES),
            "age_at_index": rng.choice([rng.randrange(18, 90), rng.randrange(18, 90) + 0.5]),
            "index_event": "First COVID test",
            "covid19_positive": rng.choice(COVID),
            "zip": f"{rng.randrange(100, 999)}",
        }
        if case_number % 7 == 3:
            del demographics["ethnicity"]  # "no data"
        auth_path = f"/programs/{program}/projects/{code}"
        case_studies: list[dict[str, Any]] = []
        for _ in range(studies_per_case):
            study_uid = _uid(rng)
            modality = rng.choice(MODALITIES)
            loinc = rng.choice(LOINC)
            pos_tests = [rng.randrange(-30, 40) for _ in range(rng.randrange(0, 4))]
            annotations = []
            if rng.random() < 0.6:
                annotations.append({"annotation_method": "Retrospective_auto",
                                    "annotator_id": "SIFT",
                                    "instance_uids": [_uid(rng)],
                                    "_annotation_id": _guid(rng)})
            if rng.random() < 0.5:
                annotations.append({"midrc_mRALE_score": rng.randrange(0, 25),
                                    "_annotation_id": _guid(rng)})
            study: dict[str, Any] = {
                "_imaging_study_id": _guid(rng),
                "project_id": project,
                "submitter_id": study_uid,
                "case_ids": [case_id],
                "study_uid": study_uid,
                "study_description": f"{modality} CHEST {rng.randrange(1, 3)} VIEW",
                "study_modality": [modality],
                "body_part_examined": [rng.choice(BODY_PARTS)],
                "age_at_imaging": int(demographics["age_at_index"]) + rng.randrange(0, 2),
                "days_to_study": rng.randrange(0, 40),
                "study_year": rng.randrange(2019, 2024),
                "study_year_shifted": "true",
                "loinc_code": loinc[0],
                "loinc_long_common_name": loinc[1],
                "loinc_method": loinc[2],
                "loinc_system": loinc[3],
                **{k: [v] for k, v in demographics.items()},
                "dataset_submitter_id": ["ACR_20220415"],
                "auth_resource_path": auth_path,
            }
            if pos_tests:
                study["days_from_study_to_pos_covid_test"] = pos_tests
            if annotations:
                study["imaging_study_annotations"] = annotations
            object_ids = []
            for file_number in range(files_per_study):
                object_id = f"dg.MD1R/{_guid(rng)}"
                object_ids.append(object_id)
                series_uid = _uid(rng)
                is_image = file_number == 0 or rng.random() < 0.7
                data_file: dict[str, Any] = {
                    "_data_file_id": _guid(rng),
                    "project_id": project,
                    "submitter_id": series_uid,
                    "series_uid": series_uid,
                    "case_ids": [case_id],
                    "object_id": object_id,
                    "md5sum": f"{rng.getrandbits(128):032x}",
                    "file_name": f"{case_id}/{study_uid}/{series_uid}.zip",
                    "file_size": rng.randrange(10**5, 10**8),
                    "data_format": "DCM" if is_image else "CSV",
                    "data_type": "DICOM" if is_image else "MIDRC Annotation",
                    "data_category": modality if is_image else "annotation_file",
                    "source_node": f"{modality.lower()}_series_file" if is_image
                    else "annotation_file",
                    "auth_resource_path": auth_path,
                    "_case_id": [_guid(rng)],
                    "_imaging_study_id": [study["_imaging_study_id"]],
                    **{k: [v] for k, v in demographics.items()},
                    "study_uid": [study_uid],
                    "study_modality": [modality],
                    "age_at_imaging": [study["age_at_imaging"]],
                    "days_from_study_to_pos_covid_test": [str(d) for d in sorted(pos_tests)],
                    "days_from_study_to_neg_covid_test": [],
                    "study_year": [],
                    "loinc_system": [loinc[3]],
                }
                if is_image:
                    data_file.update({
                        "modality": modality,
                        "manufacturer": rng.choice(MANUFACTURERS),
                        "series_description": rng.choice(["AP(shutter)", "PA", "AXIAL 5mm"]),
                        "image_type": ["DERIVED", "PRIMARY"],
                        "pixel_spacing": [0.139, 0.139],
                        "slice_thickness": [rng.choice([1.0, 2.5, 5])],
                        "number_of_instances": rng.randrange(1, 400),
                        "view_position": [rng.choice(["AP", "PA", "LL"])],
                    })
                files.append(data_file)
            study["object_id"] = object_ids
            study["data_format"] = sorted({f["data_format"] for f in files[-files_per_study:]})
            studies.append(study)
            case_studies.append(study)
        case: dict[str, Any] = {
            "_case_id": _guid(rng),
            "project_id": project,
            "submitter_id": case_id,
            **demographics,
            "dataset_submitter_id": "ACR_20220415",
            "_imaging_studies_count": len(case_studies),
            "data_file_count": files_per_study * len(case_studies),
            "object_id": [o for s in case_studies for o in s["object_id"]],
            "imaging_studies": [
                {k: s[k] for k in ("study_uid", "study_modality", "age_at_imaging",
                                   "days_to_study", "study_description") if k in s}
                for s in case_studies
            ],
            "auth_resource_path": auth_path,
        }
        annotations = [a for s in case_studies for a in s.get("imaging_study_annotations", [])]
        if annotations:
            case["imaging_study_annotations"] = annotations
        cases.append(case)
    return {"case": cases, "imaging_study": studies, "data_file": files}
