"""Explicit Arrow schemas of the DICOM lake tables (their contracts: docs/tables.md)."""

from __future__ import annotations

import pyarrow as pa

TS = pa.timestamp("us", tz="UTC")

ELEMENTS = pa.schema([
    ("file_id", pa.string()),
    ("sop_instance_uid", pa.string()),
    ("tag_path", pa.string()),
    ("keyword_path", pa.string()),
    ("tag", pa.string()),
    ("keyword", pa.string()),
    ("vr", pa.string()),
    ("vm", pa.int32()),
    ("depth", pa.int16()),
    ("private_creator", pa.string()),
    ("value_text", pa.string()),
    ("values", pa.list_(pa.string())),
    ("value_number", pa.float64()),
    ("value_length", pa.int64()),
    ("value_offset", pa.int64()),
])
"""One row per data element, sequence items included, at every depth."""

# Typed common attributes of ``dicom_instances``: (column, keyword, kind).
# kind: "text" (first value), "date", "time", "datetime", "int", "float",
# "floats" (all values as doubles), "texts" (all values).
INSTANCE_ATTRIBUTES: list[tuple[str, str, str]] = [
    ("sop_instance_uid", "SOPInstanceUID", "text"),
    ("sop_class_uid", "SOPClassUID", "text"),
    ("series_instance_uid", "SeriesInstanceUID", "text"),
    ("study_instance_uid", "StudyInstanceUID", "text"),
    ("patient_id", "PatientID", "text"),
    ("modality", "Modality", "text"),
    ("transfer_syntax_uid", "TransferSyntaxUID", "text"),
    ("specific_character_set", "SpecificCharacterSet", "texts"),
    ("study_date", "StudyDate", "date"),
    ("study_time", "StudyTime", "time"),
    ("series_date", "SeriesDate", "date"),
    ("series_time", "SeriesTime", "time"),
    ("acquisition_date", "AcquisitionDate", "date"),
    ("content_date", "ContentDate", "date"),
    ("acquisition_datetime", "AcquisitionDateTime", "datetime"),
    ("patient_birth_date", "PatientBirthDate", "date"),
    ("patient_sex", "PatientSex", "text"),
    ("patient_age", "PatientAge", "text"),
    ("accession_number", "AccessionNumber", "text"),
    ("study_id", "StudyID", "text"),
    ("study_description", "StudyDescription", "text"),
    ("series_description", "SeriesDescription", "text"),
    ("series_number", "SeriesNumber", "int"),
    ("instance_number", "InstanceNumber", "int"),
    ("body_part_examined", "BodyPartExamined", "text"),
    ("view_position", "ViewPosition", "text"),
    ("image_type", "ImageType", "texts"),
    ("manufacturer", "Manufacturer", "text"),
    ("manufacturer_model_name", "ManufacturerModelName", "text"),
    ("institution_name", "InstitutionName", "text"),
    ("station_name", "StationName", "text"),
    ("software_versions", "SoftwareVersions", "texts"),
    ("protocol_name", "ProtocolName", "text"),
    ("kvp", "KVP", "float"),
    ("exposure", "Exposure", "float"),
    ("slice_thickness", "SliceThickness", "float"),
    ("spacing_between_slices", "SpacingBetweenSlices", "float"),
    ("magnetic_field_strength", "MagneticFieldStrength", "float"),
    ("rows", "Rows", "int"),
    ("columns", "Columns", "int"),
    ("number_of_frames", "NumberOfFrames", "int"),
    ("bits_allocated", "BitsAllocated", "int"),
    ("bits_stored", "BitsStored", "int"),
    ("photometric_interpretation", "PhotometricInterpretation", "text"),
    ("pixel_spacing", "PixelSpacing", "floats"),
    ("imager_pixel_spacing", "ImagerPixelSpacing", "floats"),
    ("image_position_patient", "ImagePositionPatient", "floats"),
    ("image_orientation_patient", "ImageOrientationPatient", "floats"),
    ("patient_identity_removed", "PatientIdentityRemoved", "text"),
    ("deidentification_method", "DeidentificationMethod", "texts"),
]

_KIND_TYPES = {
    "text": pa.string(),
    "texts": pa.list_(pa.string()),
    "date": pa.date32(),
    "time": pa.time64("us"),
    "datetime": pa.timestamp("us"),
    "int": pa.int64(),
    "float": pa.float64(),
    "floats": pa.list_(pa.float64()),
}

INSTANCES = pa.schema(
    [
        ("file_id", pa.string()),
        ("source_path", pa.string()),
        ("source_member", pa.string()),
        ("file_size", pa.int64()),
        ("file_mtime", TS),
    ]
    + [(column, _KIND_TYPES[kind]) for column, _, kind in INSTANCE_ATTRIBUTES]
    + [
        ("has_pixel_data", pa.bool_()),
        ("pixel_data_length", pa.int64()),
        ("truncated", pa.bool_()),
        ("truncated_at", pa.int64()),
        ("n_elements", pa.int32()),
        ("max_depth", pa.int16()),
        ("ingested_at", TS),
    ]
)
"""One row per DICOM instance read. ``pixel_data_length`` is in bytes, null when
the pixel data is encapsulated (undefined length) or absent. ``truncated``: the source
ends early; only the elements before byte ``truncated_at`` were read (a ``warning`` error row says why)."""

ERRORS = pa.schema([
    ("source_path", pa.string()),
    ("source_member", pa.string()),
    ("error_type", pa.string()),
    ("severity", pa.string()),
    ("message", pa.string()),
    ("ingested_at", TS),
])
"""One row per source (file or zip member) that could not be read (``severity`` ``error``),
or was read only in part (``warning``: a truncated instance, also in ``instances``)."""

SOURCES = pa.schema([
    ("source_path", pa.string()),
    ("file_size", pa.int64()),
    ("file_mtime_ns", pa.int64()),
    ("part", pa.string()),
])
"""Lake state: which version of each source was read, and the part holding its rows."""

TABLES = {"instances": INSTANCES, "elements": ELEMENTS, "errors": ERRORS}
