"""The plan of a synthetic corpus: patients, their studies and series, and their UIDs.

Cheap and sequential: one ``random.Random(seed)`` draws everything in a fixed
order, so a seed always gives the same plan. Writing is in
:mod:`cohortdb.synthetic.dicom`, headers in :mod:`cohortdb.synthetic.dicom_headers`.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydicom.uid import generate_uid

from cohortdb.synthetic import dicom_values as values

KINDS = ("crdx", "ct", "mr")
"""Series kinds: CR/DX chest radiographs, CT volumes, MR stacks."""

FIRST_STUDY_DAY = dt.date(2020, 3, 1)
LAST_STUDY_DAY = dt.date(2023, 12, 31)
"""The COVID-19 era MIDRC collects (the mock site's dates are as its de-identification left them)."""


@dataclass(frozen=True)
class Patient:
    """One synthetic patient; ``character_set`` is the Specific Character Set value(s)."""

    site: values.Site
    patient_id: str
    name: str
    character_set: str | tuple[str, ...]
    sex: str
    age_years: int
    first_study_day: dt.date


@dataclass(frozen=True)
class SeriesPlan:
    """Everything a worker needs to write one series.

    ``view`` is the radiograph view position (crdx only); ``device_index`` indexes
    the kind's device pool; ``study_type_index`` the kind's study-type pool.
    """

    kind: str
    patient: Patient
    study_uid: str
    study_day: dt.date
    study_time: str
    accession_number: str
    study_type_index: int
    device_index: int
    frame_of_reference_uid: str
    series_uid: str
    series_number: int
    n_instances: int
    view: str | None
    seed: int


def midrc_uid(site_id: str, *parts: object) -> str:
    """A 64-char MIDRC-style UID ``<root><site>.<digits>`` hashed from ``parts``."""
    return generate_uid(prefix=f"{values.UID_ROOT}{site_id}.",
                        entropy_srcs=["|".join(str(part) for part in parts)])


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[int]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


class Planner:
    """Draws patients, studies and series in a fixed order from one ``Random``."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.rng = random.Random(seed)
        self.patients_per_site: dict[str, int] = {}
        self.n_studies = 0
        self.plans: list[SeriesPlan] = []

    def new_patient(self) -> Patient:
        rng = self.rng
        site = rng.choice(values.SITES)
        number = self.patients_per_site.get(site.site_id, 0) + 1 + rng.randrange(3)
        self.patients_per_site[site.site_id] = number
        charsets = values.CHARACTER_SETS
        character_set, names, _ = _weighted(rng, charsets, [weight for *_, weight in charsets])
        span_days = (LAST_STUDY_DAY - FIRST_STUDY_DAY).days - 180
        return Patient(
            site=site,
            patient_id=f"{site.site_id}-{number:06d}",
            name=rng.choice(names),
            character_set=character_set,
            sex=_weighted(rng, ("M", "F", "O"), (49, 49, 2)),
            age_years=min(90, max(18, round(rng.gauss(62, 16)))),
            first_study_day=FIRST_STUDY_DAY + dt.timedelta(days=rng.randrange(span_days)),
        )

    def new_study(self, patient: Patient, day_offset: int) -> tuple[str, dt.date, str, str, str]:
        """(study_uid, day, time, accession, frame_of_reference_uid) of a new study."""
        self.n_studies += 1
        site_id = patient.site.site_id
        day = min(LAST_STUDY_DAY, patient.first_study_day + dt.timedelta(days=day_offset))
        seconds = self.rng.randrange(24 * 3600)
        study_time = (f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"
                      f".{self.rng.randrange(10**6):06d}")
        return (midrc_uid(site_id, self.seed, "study", self.n_studies), day, study_time,
                str(10000 + self.rng.randrange(90000)),
                midrc_uid(site_id, self.seed, "frame", self.n_studies))

    def add_series(self, kind: str, patient: Patient, study: tuple[str, dt.date, str, str, str],
                   study_type_index: int, device_index: int, series_number: int,
                   n_instances: int, view: str | None = None) -> None:
        study_uid, day, study_time, accession, frame_uid = study
        self.plans.append(SeriesPlan(
            kind=kind, patient=patient, study_uid=study_uid, study_day=day,
            study_time=study_time, accession_number=accession,
            study_type_index=study_type_index, device_index=device_index,
            frame_of_reference_uid=frame_uid,
            series_uid=midrc_uid(patient.site.site_id, study_uid, "series", series_number),
            series_number=series_number, n_instances=n_instances, view=view, seed=self.seed,
        ))

    def plan_radiographs(self, n_instances: int) -> list[Patient]:
        """Patients with 1–5 chest studies, 1–3 series each, 1–2 instances per series."""
        rng = self.rng
        patients: list[Patient] = []
        study_types = values.CHEST_STUDY_TYPES
        devices = values.RADIOGRAPHY_DEVICES
        remaining = n_instances
        while remaining > 0:
            patient = self.new_patient()
            patients.append(patient)
            day_offset = 0
            for _ in range(_weighted(rng, (1, 2, 3, 4, 5), (35, 25, 20, 12, 8))):
                if remaining <= 0:
                    break
                study = self.new_study(patient, day_offset)
                day_offset += rng.randrange(1, 60)
                type_index = _weighted(rng, range(len(study_types)),
                                       [weight for *_, weight in study_types])
                dx_only = study_types[type_index][0].startswith(values.DX_ONLY_PREFIX)
                device_index = _weighted(rng, range(len(devices)),
                                         [0 if dx_only and d.modality != "DX" else d.weight for d in devices])
                for series_number, view in enumerate(study_types[type_index][1], start=1):
                    count = min(remaining, _weighted(rng, (1, 2), (80, 20)))
                    self.add_series("crdx", patient, study, type_index, device_index,
                                    series_number, count, view)
                    remaining -= count
                    if remaining <= 0:
                        break
        return patients

    def plan_volumes(self, kind: str, n_series: int, n_slices: int,
                     patients: list[Patient]) -> None:
        """CT or MR studies of 1–3 series of ``n_slices`` each, for existing patients if any."""
        rng = self.rng
        if kind == "ct":
            study_weights = [weight for *_, weight in values.CT_STUDY_TYPES]
            device_weights = [weight for *_, weight in values.CT_SCANNERS]
        else:
            study_weights = [weight for *_, weight in values.MR_STUDY_TYPES]
            device_weights = [weight for *_, weight in values.MR_SCANNERS]
        written = 0
        while written < n_series:
            patient = rng.choice(patients) if patients else self.new_patient()
            study = self.new_study(patient, rng.randrange(0, 120))
            type_index = _weighted(rng, range(len(study_weights)), study_weights)
            device_index = _weighted(rng, range(len(device_weights)), device_weights)
            for series_number in range(1, min(rng.randint(1, 3), n_series - written) + 1):
                self.add_series(kind, patient, study, type_index, device_index,
                                series_number, n_slices)
                written += 1


def plan_corpus(*, n_crdx: int = 200, n_ct_series: int = 2, ct_slices: int = 50,
                n_mr_series: int = 1, mr_slices: int = 20, seed: int = 0) -> list[SeriesPlan]:
    """The series to write, in a fixed order; ``n_crdx`` counts CR/DX instances (files)."""
    planner = Planner(seed)
    patients = planner.plan_radiographs(n_crdx)
    planner.plan_volumes("ct", n_ct_series, ct_slices, patients)
    planner.plan_volumes("mr", n_mr_series, mr_slices, patients)
    return planner.plans
