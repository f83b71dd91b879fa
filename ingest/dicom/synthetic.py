"""A realistic synthetic DICOM corpus: MIDRC-like CR/DX chest films, CT and MR series.

Pure pydicom, no network. Headers follow a real MIDRC chest DX file (CTP
de-identification, GDCM file meta, a 4-item De-identification Method Code
Sequence, the ``CTP`` private block in group 0013) and common CT/MR vendor
headers with nested and private sequences. Pixel data is a short OW stub: the
header's Rows/Columns stay realistic, the ingest never reads pixels.

Everything is derived from ``seed``: the corpus plan from ``random.Random(seed)``,
each series' values from its own ``random.Random(f"{seed}|{series_uid}")`` and
every UID from a SHA-512 of its inputs, so output is byte-identical for a seed
whatever the number of worker processes.

Layout (as MIDRC downloads): ``<out>/<patient_id>/<study_uid>/<series_uid>/<sop_uid>.dcm``;
with ``zip_series=True`` one zip per series, ``<out>/<patient_id>/<series_uid>.zip``
holding ``<sop_uid>.dcm`` members.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
import random
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element, write_file_meta_info
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from ingest.dicom import synthetic_values as values

KINDS = ("crdx", "ct", "mr")
"""Series kinds: CR/DX chest radiographs, CT volumes, MR stacks."""

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""Fixed member timestamp so zips are byte-identical across runs."""

FIRST_STUDY_DAY = dt.date(2019, 1, 1)
LAST_STUDY_DAY = dt.date(2023, 12, 31)


# --- the plan: who, which studies, which series (cheap, sequential, deterministic) ---


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


def _uid(site_id: str, *parts: object) -> str:
    """A 64-char MIDRC-style UID ``<root><site>.<digits>`` hashed from ``parts``."""
    return generate_uid(prefix=f"{values.UID_ROOT}{site_id}.",
                        entropy_srcs=["|".join(str(part) for part in parts)])


def _weighted(rng: random.Random, items: Sequence[Any], weights: Sequence[int]) -> Any:
    return rng.choices(items, weights=weights, k=1)[0]


class _Planner:
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
        return (_uid(site_id, self.seed, "study", self.n_studies), day, study_time,
                str(10000 + self.rng.randrange(90000)),
                _uid(site_id, self.seed, "frame", self.n_studies))

    def add_series(self, kind: str, patient: Patient, study: tuple[str, dt.date, str, str, str],
                   study_type_index: int, device_index: int, series_number: int,
                   n_instances: int, view: str | None = None) -> None:
        study_uid, day, study_time, accession, frame_uid = study
        self.plans.append(SeriesPlan(
            kind=kind, patient=patient, study_uid=study_uid, study_day=day,
            study_time=study_time, accession_number=accession,
            study_type_index=study_type_index, device_index=device_index,
            frame_of_reference_uid=frame_uid,
            series_uid=_uid(patient.site.site_id, study_uid, "series", series_number),
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
                device_index = _weighted(rng, range(len(devices)), [d.weight for d in devices])
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
            study_weights = [1] * len(values.MR_STUDY_DESCRIPTIONS)
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
    planner = _Planner(seed)
    patients = planner.plan_radiographs(n_crdx)
    planner.plan_volumes("ct", n_ct_series, ct_slices, patients)
    planner.plan_volumes("mr", n_mr_series, mr_slices, patients)
    return planner.plans


# --- building datasets ---


def _ds(value: float, decimals: int = 1) -> str:
    """A DS string with ``decimals`` decimals (always ≤ 16 characters for our ranges)."""
    return f"{value:.{decimals}f}"


def _code_item(code_value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = code_value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _time_after(hhmmss_frac: str, seconds: int) -> str:
    """``hhmmss_frac`` (TM) plus ``seconds``, wrapped at midnight."""
    total = int(hhmmss_frac[0:2]) * 3600 + int(hhmmss_frac[2:4]) * 60 + int(hhmmss_frac[4:6])
    total = (total + seconds) % (24 * 3600)
    return f"{total // 3600:02d}{total // 60 % 60:02d}{total % 60:02d}{hhmmss_frac[6:]}"


def _names_in(character_set: str | tuple[str, ...]) -> tuple[str, ...]:
    """The person-name pool written with ``character_set``."""
    for pool_character_set, names, _ in values.CHARACTER_SETS:
        if pool_character_set == character_set:
            return names
    raise KeyError(character_set)


def _institution(patient: Patient, rng: random.Random) -> str:
    """An institution name encodable in the patient's character set."""
    if patient.character_set == "ISO_IR 100" or patient.character_set == "ISO_IR 192":
        return rng.choice(values.INSTITUTIONS)
    return rng.choice([name for name in values.INSTITUTIONS if name.isascii()])


def _add_file_meta(ds: Dataset, sop_class_uid: str) -> None:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class_uid
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    for keyword, value in values.GDCM_FILE_META.items():
        setattr(meta, keyword, value)
    ds.file_meta = meta


def _add_patient_and_study(ds: Dataset, plan: SeriesPlan, study_description: str) -> None:
    """Patient, study, de-identification and CTP elements shared by every kind."""
    patient = plan.patient
    study_date = plan.study_day.strftime("%Y%m%d")
    age = patient.age_years + (plan.study_day - patient.first_study_day).days // 365
    ds.SpecificCharacterSet = (list(patient.character_set)
                               if isinstance(patient.character_set, tuple)
                               else patient.character_set)
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.AcquisitionDate = study_date
    ds.ContentDate = study_date
    ds.StudyTime = plan.study_time
    ds.AccessionNumber = plan.accession_number
    ds.StudyDescription = study_description
    ds.PatientName = patient.name
    ds.PatientID = patient.patient_id
    ds.PatientSex = patient.sex
    ds.PatientAge = f"{min(age, 90):03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = patient.site.deid_method
    ds.DeidentificationMethodCodeSequence = DicomSequence(
        [_code_item(code, "DCM", meaning) for code, meaning in values.DEID_METHOD_CODES])
    ctp = ds.private_block(0x0013, "CTP", create=True)
    ctp.add_new(0x10, "LO", patient.site.project)
    ctp.add_new(0x11, "LO", patient.site.project)
    ctp.add_new(0x12, "LO", patient.site.site_id)
    ctp.add_new(0x13, "LO", patient.site.site_id)
    ds.StudyInstanceUID = plan.study_uid
    ds.SeriesInstanceUID = plan.series_uid
    ds.StudyID = ""
    ds.SeriesNumber = plan.series_number
    ds.AcquisitionNumber = 1


def _add_pixel_module(ds: Dataset, rows: int, columns: int, bits_stored: int) -> None:
    """Image pixel description; rows/columns are nominal (the pixel data is a stub)."""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = bits_stored
    ds.HighBit = bits_stored - 1


def _add_pixel_data_stub(ds: Dataset, pixel_bytes: int, rng: random.Random) -> None:
    """OW Pixel Data of ``pixel_bytes`` random bytes (rounded up to even)."""
    ds.add_new(0x7FE00010, "OW", rng.randbytes(pixel_bytes + pixel_bytes % 2))


# CR/DX


def radiograph_template(plan: SeriesPlan, rng: random.Random, pixel_bytes: int) -> Dataset:
    """One CR/DX chest series' dataset, shaped like MIDRC's (≈100 elements)."""
    device = values.RADIOGRAPHY_DEVICES[plan.device_index]
    study_description, _, _ = values.CHEST_STUDY_TYPES[plan.study_type_index]
    view = plan.view or "AP"
    is_cr = device.modality == "CR"
    ds = Dataset()
    ds.ImageType = ["DERIVED", "PRIMARY"] if rng.random() < 0.7 else ["ORIGINAL", "PRIMARY"]
    ds.SOPClassUID = values.SOP_CLASS_CR if is_cr else values.SOP_CLASS_DX
    _add_patient_and_study(ds, plan, study_description)
    ds.SeriesTime = _time_after(plan.study_time, 60 * plan.series_number + rng.randrange(60))
    ds.Modality = device.modality
    if plan.patient.site.keeps_manufacturer:
        ds.Manufacturer = device.manufacturer
        ds.ManufacturerModelName = device.model
        ds.DeviceSerialNumber = str(rng.randrange(10**5, 10**7))
    ds.SeriesDescription = rng.choice(values.VIEW_SERIES_DESCRIPTIONS[view])
    _add_exposure(ds, view, rng)
    ds.ContrastBolusAgent = ""
    ds.BodyPartExamined = "CHEST"
    ds.SoftwareVersions = device.software_version
    ds.DistanceSourceToDetector = _ds(rng.choice((0.0, 1000.0, 1800.0, 1829.0)))
    ds.FieldOfViewShape = "RECTANGLE"
    spacing = _ds(device.pixel_spacing_mm, 3)
    ds.FieldOfViewDimensions = [round(device.rows * device.pixel_spacing_mm * 365),
                                round(device.columns * device.pixel_spacing_mm * 365)]
    ds.RectificationType = "CONST POTENTIAL"
    ds.ImageAndFluoroscopyAreaDoseProduct = _ds(rng.uniform(0, 3), 2)
    ds.ImagerPixelSpacing = [spacing, spacing]
    ds.FocalSpots = _ds(rng.choice((0.6, 1.2, 1.3)))
    ds.AnodeTargetMaterial = "TUNGSTEN"
    ds.PositionerType = ""
    _add_collimator(ds, device, rng)
    ds.ViewPosition = view
    if is_cr:
        _add_cr_plate(ds, device, rng)
    else:
        _add_detector(ds, device, spacing, rng)
    ds.PatientOrientation = ["A", "F"] if view in ("LATERAL", "LL") else ["L", "F"]
    ds.ImageLaterality = "U"
    ds.ImagesInAcquisition = 1
    _add_pixel_module(ds, device.rows, device.columns, 12)
    ds.PixelSpacing = [spacing, spacing]
    ds.PixelAspectRatio = [1, 1]
    ds.PixelRepresentation = 0
    ds.SmallestImagePixelValue = 0
    ds.LargestImagePixelValue = 4095
    ds.BurnedInAnnotation = "NO"
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = -1
    ds.WindowCenter = _ds(rng.choice((2048.0, 2047.0, 1900.0)))
    ds.WindowWidth = _ds(rng.choice((4096.0, 4095.0, 3500.0)))
    ds.RescaleIntercept = "0.0"
    ds.RescaleSlope = "1.0"
    ds.RescaleType = "US"
    ds.LossyImageCompression = "00"
    _add_pixel_data_stub(ds, pixel_bytes, rng)
    return ds


def _add_exposure(ds: Dataset, view: str, rng: random.Random) -> None:
    """KVP (kV), exposure time (ms), tube current (mA) and the derived exposure (mAs)."""
    low, high = values.VIEW_KVP_RANGE[view]
    exposure_time_ms = rng.randint(2, 20)
    tube_current_ma = rng.uniform(100, 500)
    exposure_mas = tube_current_ma * exposure_time_ms / 1000
    ds.KVP = _ds(round(rng.uniform(low, high)))
    ds.ExposureTime = exposure_time_ms
    ds.XRayTubeCurrent = round(tube_current_ma)
    ds.Exposure = max(1, round(exposure_mas))
    ds.ExposureInuAs = round(exposure_mas * 1000)
    ds.ExposureTimeInuS = _ds(exposure_time_ms * 1000.0)
    ds.XRayTubeCurrentInuA = _ds(tube_current_ma * 1000)
    ds.ExposureInmAs = round(exposure_mas, 2)
    ds.ExposureControlMode = rng.choice(("MANUAL", "AUTOMATIC"))


def _add_collimator(ds: Dataset, device: values.RadiographyDevice, rng: random.Random) -> None:
    """Collimator edges in pixels of the nominal matrix."""
    ds.CollimatorShape = "RECTANGULAR"
    ds.CollimatorLeftVerticalEdge = rng.randrange(0, 200)
    ds.CollimatorRightVerticalEdge = device.columns - rng.randrange(0, 200)
    ds.CollimatorUpperHorizontalEdge = rng.randrange(0, 200)
    ds.CollimatorLowerHorizontalEdge = device.rows - rng.randrange(0, 200)


def _add_detector(ds: Dataset, device: values.RadiographyDevice, spacing: str,
                  rng: random.Random) -> None:
    """DX detector module: temperature (°C), exposure counts, element size (mm)."""
    target = rng.choice((200.0, 250.0, 300.0))
    ds.TargetExposureIndex = _ds(target)
    ds.DetectorTemperature = _ds(rng.uniform(24, 36))
    ds.DetectorType = device.detector_type
    ds.DetectorConfiguration = "AREA"
    ds.DetectorDescription = device.detector_description
    ds.DetectorMode = "PatientMode"
    ds.ExposuresOnDetectorSinceLastCalibration = rng.randrange(0, 5000)
    ds.ExposuresOnDetectorSinceManufactured = rng.choice((0, rng.randrange(1000, 200000)))
    ds.DetectorTimeSinceLastExposure = _ds(rng.uniform(0, 600))
    ds.DetectorActiveTime = _ds(rng.choice((200.0, 300.0, 500.0)))
    ds.DetectorElementPhysicalSize = [spacing, spacing]
    ds.DetectorElementSpacing = [spacing, spacing]
    ds.DetectorManufacturerName = device.manufacturer
    ds.DetectorManufacturerModelName = device.model


def _add_cr_plate(ds: Dataset, device: values.RadiographyDevice, rng: random.Random) -> None:
    ds.Sensitivity = _ds(rng.choice((200.0, 400.0)))
    ds.PlateID = f"{rng.randrange(10**6):06d}"
    ds.PlateType = device.detector_description[:16]
    ds.PhosphorType = "BaFBr:Eu"
    ds.TargetExposureIndex = _ds(rng.choice((1800.0, 2000.0)))


def set_radiograph_instance(ds: Dataset, plan: SeriesPlan, index: int,
                            rng: random.Random) -> None:
    """Per-instance values of a CR/DX series; ``index`` is 0-based."""
    _set_instance_identity(ds, plan, index)
    acquisition_time = _time_after(ds.SeriesTime, 5 * index + rng.randrange(5))
    ds.AcquisitionTime = acquisition_time
    ds.ContentTime = acquisition_time
    exposure_index = rng.uniform(100, 600)
    ds.RelativeXRayExposure = round(exposure_index)
    ds.ExposureIndex = _ds(exposure_index, 2)
    ds.DeviationIndex = _ds(rng.uniform(-3, 3), 2)


def _set_instance_identity(ds: Dataset, plan: SeriesPlan, index: int) -> None:
    sop_uid = _uid(plan.patient.site.site_id, plan.series_uid, "instance", index)
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid
    ds.InstanceNumber = index + 1


# CT and MR


def _add_cross_sectional_common(ds: Dataset, plan: SeriesPlan, rng: random.Random,
                                manufacturer: str, model: str, software: str) -> None:
    """Equipment, people, frame of reference and request attributes shared by CT and MR."""
    patient = plan.patient
    ds.InstanceCreationDate = ds.StudyDate
    ds.InstanceCreationTime = ds.StudyTime
    ds.Manufacturer = manufacturer
    ds.ManufacturerModelName = model
    ds.SoftwareVersions = software
    ds.DeviceSerialNumber = str(rng.randrange(10**5, 10**7))
    ds.StationName = f"{model.split()[0].upper()[:10]}{rng.randrange(1, 9)}"
    ds.InstitutionName = _institution(patient, rng)
    ds.InstitutionalDepartmentName = "Radiology"
    ds.ReferringPhysicianName = rng.choice(_names_in(patient.character_set))
    ds.OperatorsName = "Tech^A"
    ds.PatientBirthDate = ""
    ds.PatientSize = _ds(rng.uniform(1.5, 1.95), 2)
    ds.PatientWeight = _ds(rng.uniform(45, 130))
    ds.BodyPartExamined = "CHEST"
    ds.PatientPosition = "HFS"
    ds.SeriesTime = _time_after(plan.study_time, 120 * plan.series_number)
    ds.FrameOfReferenceUID = plan.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.PerformedProcedureStepStartDate = ds.StudyDate
    ds.PerformedProcedureStepStartTime = ds.StudyTime
    ds.PerformedProcedureStepID = str(rng.randrange(10**6))
    ds.PerformedProcedureStepDescription = ds.StudyDescription
    ds.ReferencedImageSequence = DicomSequence(
        [_referenced_localizer(plan, ds.SOPClassUID, number) for number in (1, 2)])
    ds.RequestAttributesSequence = DicomSequence([_request_attributes(plan, ds, rng)])
    _add_pixel_module(ds, 512, 512, 12)
    ds.PixelRepresentation = 1
    ds.LossyImageCompression = "00"


def _referenced_localizer(plan: SeriesPlan, sop_class_uid: str, number: int) -> Dataset:
    """A localizer reference with its purpose code (sequence depth 2)."""
    item = Dataset()
    item.ReferencedSOPClassUID = sop_class_uid
    item.ReferencedSOPInstanceUID = _uid(plan.patient.site.site_id, plan.study_uid,
                                         "localizer", number)
    item.PurposeOfReferenceCodeSequence = DicomSequence(
        [_code_item("121311", "DCM", "Localizer")])
    return item


def _request_attributes(plan: SeriesPlan, ds: Dataset, rng: random.Random) -> Dataset:
    """A RequestAttributesSequence item; its protocol code nests 3 sequences deep.

    RequestAttributes → ScheduledProtocolCode → ProtocolContext → ConceptNameCode.
    """
    protocol = _code_item(f"P{rng.randrange(100, 999)}", "99LOCAL", ds.StudyDescription)
    context = Dataset()
    context.ValueType = "CODE"
    context.ConceptNameCodeSequence = DicomSequence(
        [_code_item("G-C0E8", "SRT", "Contrast Agent")])
    context.ConceptCodeSequence = DicomSequence(
        [_code_item("R-40775", "SRT", "None")])
    protocol.ProtocolContextSequence = DicomSequence([context])
    item = Dataset()
    item.RequestedProcedureID = plan.accession_number
    item.ScheduledProcedureStepID = plan.accession_number
    item.ScheduledProcedureStepDescription = ds.StudyDescription
    item.ScheduledProtocolCodeSequence = DicomSequence([protocol])
    return item


def _add_private_block(ds: Dataset, group: int, creator: str, rng: random.Random) -> None:
    """A vendor private block: three plain elements and a 2-item private sequence."""
    block = ds.private_block(group, creator, create=True)
    block.add_new(0x01, "LO", creator.split()[0][:16])
    block.add_new(0x02, "DS", _ds(rng.uniform(0, 100), 2))
    block.add_new(0x03, "US", rng.randrange(1, 1000))
    items = []
    for number in (1, 2):
        item = Dataset()
        item_block = item.private_block(group, creator, create=True)
        item_block.add_new(0x04, "SH", f"STEP{number}")
        item_block.add_new(0x05, "FD", rng.uniform(0, 10))
        items.append(item)
    block.add_new(0x06, "SQ", DicomSequence(items))


CT_PRIVATE_CREATORS = {
    "GE MEDICAL SYSTEMS": (0x0019, "GEMS_ACQU_01"),
    "SIEMENS": (0x0019, "SIEMENS CT VA0  COAD"),
    "Philips": (0x01F1, "ELSCINT1"),
    "TOSHIBA": (0x7005, "TOSHIBA_MEC_CT3"),
}
MR_PRIVATE_CREATORS = {
    "SIEMENS": (0x0019, "SIEMENS MR HEADER"),
    "GE MEDICAL SYSTEMS": (0x0019, "GEMS_ACQU_01"),
    "Philips Medical Systems": (0x2005, "Philips MR Imaging DD 001"),
}


def ct_template(plan: SeriesPlan, rng: random.Random, pixel_bytes: int) -> Dataset:
    """One axial CT series' dataset (≈190 elements with nested sequences)."""
    manufacturer, model, software, kernels, _ = values.CT_SCANNERS[plan.device_index]
    study_description, procedure_code, procedure_meaning, _ = \
        values.CT_STUDY_TYPES[plan.study_type_index]
    kernel = kernels[(plan.series_number - 1) % len(kernels)]
    thickness_mm = rng.choice((0.625, 1.0, 1.25, 2.5, 5.0))
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = values.SOP_CLASS_CT
    _add_patient_and_study(ds, plan, study_description)
    ds.Modality = "CT"
    ds.SeriesDescription = f"{kernel.split(chr(92))[0]} {thickness_mm:g}mm"
    ds.ProcedureCodeSequence = DicomSequence(
        [_code_item(procedure_code, "CPT4", procedure_meaning)])
    ds.ProtocolName = study_description
    ds.ContrastBolusAgent = "" if "WO" in study_description else "OMNIPAQUE 350"
    _add_cross_sectional_common(ds, plan, rng, manufacturer, model, software)
    ds.ScanOptions = "HELICAL MODE"
    ds.SliceThickness = _ds(thickness_mm, 3)
    ds.SpacingBetweenSlices = _ds(thickness_mm, 3)
    ds.KVP = _ds(rng.choice((80.0, 100.0, 120.0, 140.0)))
    ds.DataCollectionDiameter = "500.0"
    ds.ReconstructionDiameter = _ds(rng.uniform(300, 420))
    ds.DistanceSourceToDetector = "946.7"
    ds.DistanceSourceToPatient = "538.5"
    ds.GantryDetectorTilt = "0.0"
    ds.TableHeight = _ds(rng.uniform(120, 190))
    ds.RotationDirection = "CW"
    ds.ExposureTime = rng.choice((500, 600, 800, 1000))
    ds.FilterType = "BODY FILTER"
    ds.GeneratorPower = rng.randrange(20, 100)
    ds.FocalSpots = _ds(rng.choice((0.7, 1.2)))
    ds.ConvolutionKernel = kernel.split("\\")
    ds.RevolutionTime = rng.choice((0.28, 0.35, 0.5))
    ds.SingleCollimationWidth = 0.625
    ds.TotalCollimationWidth = rng.choice((40.0, 80.0))
    ds.TableSpeed = rng.uniform(40, 160)
    ds.TableFeedPerRotation = rng.uniform(20, 80)
    ds.SpiralPitchFactor = rng.choice((0.516, 0.984, 1.375))
    ds.CTDIvol = round(rng.uniform(2, 20), 2)
    ds.CTDIPhantomTypeCodeSequence = DicomSequence(
        [_code_item("113691", "DCM", "IEC Body Dosimetry Phantom")])
    ds.ExposureModulationType = "Z_EC"
    ds.EstimatedDoseSaving = round(rng.uniform(0, 50), 2)
    center = [rng.uniform(-20, 20), rng.uniform(-200, -150), 0.0]
    ds.DataCollectionCenterPatient = center
    ds.ReconstructionTargetCenterPatient = center
    ds.IrradiationEventUID = _uid(plan.patient.site.site_id, plan.series_uid, "irradiation")
    ds.PixelSpacing = [_ds(float(ds.ReconstructionDiameter) / 512, 6)] * 2
    ds.PixelPaddingValue = -2000
    ds.WindowCenter = ["-600", "40"]
    ds.WindowWidth = ["1500", "400"]
    ds.WindowCenterWidthExplanation = ["LUNG", "MEDIASTINUM"]
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.ImagesInAcquisition = plan.n_instances
    group, creator = CT_PRIVATE_CREATORS[manufacturer]
    _add_private_block(ds, group, creator, rng)
    _add_pixel_data_stub(ds, pixel_bytes, rng)
    return ds


def mr_template(plan: SeriesPlan, rng: random.Random, pixel_bytes: int) -> Dataset:
    """One 2D MR series' dataset (≈170 elements with nested sequences)."""
    manufacturer, model, software, field_t, _ = values.MR_SCANNERS[plan.device_index]
    study_description = values.MR_STUDY_DESCRIPTIONS[plan.study_type_index]
    sequence = values.MR_SEQUENCES[(plan.series_number - 1 + rng.randrange(4)) %
                                    len(values.MR_SEQUENCES)]
    description, sequence_name, scanning, variant, tr_ms, te_ms, flip_deg = sequence
    thickness_mm = rng.choice((3.0, 4.0, 5.0, 6.0))
    ds = Dataset()
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND", "NORM"]
    ds.SOPClassUID = values.SOP_CLASS_MR
    _add_patient_and_study(ds, plan, study_description)
    ds.Modality = "MR"
    ds.SeriesDescription = description
    ds.ProtocolName = description.replace(" ", "_")
    ds.ProcedureCodeSequence = DicomSequence(
        [_code_item("71550", "CPT4", study_description)])
    _add_cross_sectional_common(ds, plan, rng, manufacturer, model, software)
    ds.ScanningSequence = list(scanning) if isinstance(scanning, tuple) else scanning
    ds.SequenceVariant = list(variant)
    ds.ScanOptions = ["PFP", "FS"] if rng.random() < 0.5 else "SAT1"
    ds.MRAcquisitionType = "3D" if "3d" in sequence_name else "2D"
    ds.SequenceName = sequence_name
    ds.AngioFlag = "N"
    ds.SliceThickness = _ds(thickness_mm)
    ds.RepetitionTime = _ds(tr_ms, 2)
    ds.EchoTime = _ds(te_ms, 2)
    ds.NumberOfAverages = "1.0"
    ds.ImagingFrequency = _ds(field_t * 42.577478, 6)
    ds.ImagedNucleus = "1H"
    ds.EchoNumbers = 1
    ds.MagneticFieldStrength = _ds(field_t)
    ds.SpacingBetweenSlices = _ds(thickness_mm * 1.2, 2)
    ds.NumberOfPhaseEncodingSteps = rng.choice((192, 224, 256))
    ds.EchoTrainLength = rng.choice((1, 16, 128))
    ds.PercentSampling = "100.0"
    ds.PercentPhaseFieldOfView = _ds(rng.choice((75.0, 81.25, 100.0)), 2)
    ds.PixelBandwidth = _ds(rng.choice((260.0, 390.0, 781.0)))
    ds.TransmitCoilName = "Body"
    ds.ReceiveCoilName = rng.choice(("Body18", "Spine32", "HeadNeck_20"))
    ds.AcquisitionMatrix = [0, 256, 192, 0]
    ds.InPlanePhaseEncodingDirection = "ROW"
    ds.FlipAngle = _ds(flip_deg)
    ds.VariableFlipAngleFlag = "N"
    ds.SAR = _ds(rng.uniform(0.1, 3.0), 4)
    ds.dBdt = "0.0"
    ds.PixelSpacing = [_ds(rng.choice((0.7813, 1.1719, 1.4063)), 4)] * 2
    ds.WindowCenter = _ds(rng.uniform(200, 800))
    ds.WindowWidth = _ds(rng.uniform(400, 1600))
    ds.ImagesInAcquisition = plan.n_instances
    group, creator = MR_PRIVATE_CREATORS[manufacturer]
    _add_private_block(ds, group, creator, rng)
    _add_pixel_data_stub(ds, pixel_bytes, rng)
    return ds


def set_volume_instance(ds: Dataset, plan: SeriesPlan, index: int, rng: random.Random) -> None:
    """Per-slice values of a CT/MR series: position (mm), slice location, times."""
    _set_instance_identity(ds, plan, index)
    spacing_mm = float(ds.SpacingBetweenSlices)
    z_mm = -50.0 - index * spacing_mm
    x_mm = -float(ds.PixelSpacing[0]) * 256
    ds.ImagePositionPatient = [_ds(x_mm, 3), _ds(x_mm - 20, 3), _ds(z_mm, 3)]
    ds.SliceLocation = _ds(z_mm, 3)
    ds.AcquisitionTime = _time_after(ds.SeriesTime, index // 10)
    ds.ContentTime = ds.AcquisitionTime
    if ds.Modality == "CT":
        tube_current_ma = rng.randrange(80, 400)
        ds.XRayTubeCurrent = tube_current_ma
        ds.Exposure = round(tube_current_ma * ds.ExposureTime / 1000)


TEMPLATES = {"crdx": radiograph_template, "ct": ct_template, "mr": mr_template}
INSTANCE_SETTERS = {"crdx": set_radiograph_instance, "ct": set_volume_instance,
                    "mr": set_volume_instance}


def series_datasets(plan: SeriesPlan, pixel_bytes: int = 2048) -> Iterator[Dataset]:
    """Each instance of ``plan``'s series, in order.

    The same Dataset object is yielded each time with its per-instance elements
    changed: write (or copy) it before asking for the next one.
    """
    rng = random.Random(f"{plan.seed}|{plan.series_uid}")
    ds = TEMPLATES[plan.kind](plan, rng, pixel_bytes)
    ds.SOPInstanceUID = plan.series_uid  # replaced per instance
    _add_file_meta(ds, ds.SOPClassUID)
    for index in range(plan.n_instances):
        INSTANCE_SETTERS[plan.kind](ds, plan, index, rng)
        yield ds


def generate_dataset(kind: str, rng: random.Random, pixel_bytes: int = 64) -> Dataset:
    """One instance of ``kind`` (``crdx``, ``ct``, ``mr``) for a random patient, with file meta."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    planner = _Planner(rng.randrange(2**32))
    if kind == "crdx":
        planner.plan_radiographs(1)
    else:
        planner.plan_volumes(kind, 1, 3, [])
    return next(series_datasets(planner.plans[0], pixel_bytes))


# --- writing ---


UNSHARED_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"})
"""Encoded afresh per series: sequences (nested state) and binary values (large, random)."""


class SeriesEncoder:
    """Encodes the instances of one series to Part 10 bytes, re-encoding only what changed.

    Each top-level element is encoded once with pydicom's own element writer and
    reused while the element still holds the same value object; assigning a value
    (``ds.InstanceNumber = 2``) stores a new object, which is encoded afresh.
    Plain (non-sequence, non-binary) elements are also shared across series by
    value, since most of a header repeats from series to series.
    Output equals ``ds.save_as(..., enforce_file_format=True)`` byte for byte (the
    tests check this) at a fraction of its cost. Values must be assigned, not
    mutated in place (no ``ds.Sequence[0].X = ...`` between instances).
    """

    shared: dict[tuple[Any, ...], bytes] = {}
    """Encoded plain elements by (tag, VR, encodings, value), shared across series."""
    max_shared = 20_000

    def __init__(self) -> None:
        self._encoded: dict[int, tuple[Any, bytes]] = {}
        self._encodings: list[str] | None = None

    def encode(self, ds: Dataset) -> bytes:
        """Preamble, file meta and dataset of ``ds`` (Explicit VR Little Endian)."""
        if self._encodings is None:
            correct_ambiguous_vr(ds, is_little_endian=True)
            self._encodings = convert_encodings(ds.get("SpecificCharacterSet", "ISO_IR 6"))
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        buffer.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(buffer, ds.file_meta, enforce_standard=True)
        parts = [buffer.getvalue()]
        for tag in sorted(ds._dict):
            element = ds[tag]
            cached = self._encoded.get(tag)
            if cached is None or cached[0] is not element.value:
                cached = (element.value, self._encode_element(element))
                self._encoded[tag] = cached
            parts.append(cached[1])
        return b"".join(parts)

    def _encode_element(self, element: DataElement) -> bytes:
        assert self._encodings is not None
        if element.VR in UNSHARED_VRS:
            return self._write_element(element)
        value = element.value
        if isinstance(value, MultiValue | list):
            value_key: Any = tuple((type(item).__name__, str(item)) for item in value)
        else:
            value_key = (type(value).__name__, str(value))
        key = (element.tag, element.VR, tuple(self._encodings), value_key)
        encoded = self.shared.get(key)
        if encoded is None:
            if len(self.shared) >= self.max_shared:
                self.shared.clear()
            encoded = self.shared[key] = self._write_element(element)
        return encoded

    def _write_element(self, element: DataElement) -> bytes:
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        assert self._encodings is not None
        write_data_element(buffer, element, self._encodings)
        return buffer.getvalue()


def series_bytes(plan: SeriesPlan, pixel_bytes: int = 2048) -> Iterator[tuple[str, bytes]]:
    """(SOP Instance UID, Part 10 file bytes) of each instance of ``plan``'s series."""
    encoder = SeriesEncoder()
    for ds in series_datasets(plan, pixel_bytes):
        yield ds.SOPInstanceUID, encoder.encode(ds)


def write_series(plan: SeriesPlan, out_dir: Path, *, zip_series: bool = False,
                 pixel_bytes: int = 2048) -> list[Path]:
    """Write one series; returns the .dcm paths, or the one zip path when ``zip_series``."""
    patient_dir = out_dir / plan.patient.patient_id
    if zip_series:
        patient_dir.mkdir(parents=True, exist_ok=True)
        zip_path = patient_dir / f"{plan.series_uid}.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for sop_uid, data in series_bytes(plan, pixel_bytes):
                member = zipfile.ZipInfo(f"{sop_uid}.dcm", ZIP_DATE_TIME)
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, data)
        return [zip_path]
    series_dir = patient_dir / plan.study_uid / plan.series_uid
    series_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for sop_uid, data in series_bytes(plan, pixel_bytes):
        path = series_dir / f"{sop_uid}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _write_series_task(task: tuple[SeriesPlan, Path, bool, int]) -> list[Path]:
    plan, out_dir, zip_series, pixel_bytes = task
    return write_series(plan, out_dir, zip_series=zip_series, pixel_bytes=pixel_bytes)


def generate_corpus(out_dir: Path, *, n_crdx: int = 200, n_ct_series: int = 2,
                    ct_slices: int = 50, n_mr_series: int = 1, mr_slices: int = 20,
                    seed: int = 0, zip_series: bool = False, pixel_bytes: int = 2048,
                    workers: int | None = None) -> list[Path]:
    """Write a synthetic corpus under ``out_dir``; returns the files written, in plan order.

    Args:
        n_crdx: CR/DX chest instances (files) in total.
        n_ct_series / ct_slices: CT series and slices (files) per CT series.
        n_mr_series / mr_slices: MR series and slices per MR series.
        seed: same seed → byte-identical files.
        zip_series: one ``<patient_id>/<series_uid>.zip`` per series instead of .dcm files.
        pixel_bytes: length of each instance's OW pixel data stub in bytes (rounded up to even).
        workers: processes writing series in parallel; default ``os.cpu_count()``;
            1 writes in this process.
    """
    out_dir = Path(out_dir)
    plans = plan_corpus(n_crdx=n_crdx, n_ct_series=n_ct_series, ct_slices=ct_slices,
                        n_mr_series=n_mr_series, mr_slices=mr_slices, seed=seed)
    tasks = [(plan, out_dir, zip_series, pixel_bytes) for plan in plans]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) < 2:
        results = [_write_series_task(task) for task in tasks]
    else:
        # spawn, not fork: forking a threaded parent warns (an error under pytest's config).
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_write_series_task, tasks,
                               chunksize=max(1, len(tasks) // (workers * 8)))
    return [path for paths in results for path in paths]
