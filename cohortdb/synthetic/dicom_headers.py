"""Headers of synthetic CR/DX, CT and MR instances, built once per series.

Each kind has a template builder (the whole header of a series) and an
instance setter (the few elements that change per instance); values come from
:mod:`cohortdb.synthetic.dicom_values` and a per-series ``random.Random``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian

from cohortdb.synthetic import dicom_values as values
from cohortdb.synthetic.dicom_plan import KINDS, Patient, Planner, SeriesPlan, midrc_uid


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
    if patient.character_set in ("ISO_IR 100", "ISO_IR 192"):
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
    if patient.site.utc_offset is not None:
        ds.TimezoneOffsetFromUTC = patient.site.utc_offset
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
    sop_uid = midrc_uid(plan.patient.site.site_id, plan.series_uid, "instance", index)
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
    item.ReferencedSOPInstanceUID = midrc_uid(plan.patient.site.site_id, plan.study_uid,
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
    agent = ds.get("ContrastBolusAgent")
    context.ConceptCodeSequence = DicomSequence(
        [_code_item(agent.replace(" ", ""), "99LOCAL", agent) if agent
         else _code_item("R-40775", "SRT", "None")])
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
    study_description, procedure_code, procedure_meaning, contrast_agent, _ = \
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
    ds.ContrastBolusAgent = contrast_agent
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
    ds.IrradiationEventUID = midrc_uid(plan.patient.site.site_id, plan.series_uid, "irradiation")
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
    study_description, body_part, procedure_code, procedure_meaning, sequences, _ = \
        values.MR_STUDY_TYPES[plan.study_type_index]
    wanted = sequences[(plan.series_number - 1) % len(sequences)]
    sequence = next(s for s in values.MR_SEQUENCES if s[0] == wanted)
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
        [_code_item(procedure_code, "CPT4", procedure_meaning)])
    _add_cross_sectional_common(ds, plan, rng, manufacturer, model, software)
    ds.BodyPartExamined = body_part
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
    planner = Planner(rng.randrange(2**32))
    if kind == "crdx":
        planner.plan_radiographs(1)
    else:
        planner.plan_volumes(kind, 1, 3, [])
    return next(series_datasets(planner.plans[0], pixel_bytes))
