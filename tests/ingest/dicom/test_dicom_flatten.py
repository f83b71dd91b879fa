"""The pure flattener: tag paths, keyword paths, values, typed instance attributes."""

from __future__ import annotations

import datetime as dt
import warnings

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence

from ingest.dicom.flatten import (
    MAX_STORED_BYTES,
    flatten_dataset,
    instance_attributes,
    parse_date,
    parse_datetime,
    parse_time,
)


def _code(value: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "DCM"
    item.CodeMeaning = meaning
    return item


def _dataset() -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["DERIVED", "PRIMARY"]
    ds.PatientName = "Müller^Jürgen"
    ds.StudyDate = "20110508"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pydicom warns on the invalid value we want
        ds.SeriesDate = "20111341"  # invalid month: null when typed, text kept
    ds.KVP = "90.0"
    ds.Rows = 2518
    ds.PixelSpacing = ["0.139", "0.139"]
    ds.DeidentificationMethodCodeSequence = Sequence([
        _code("113100", "Basic Application Confidentiality Profile"),
        _code("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ])
    block = ds.private_block(0x0013, "CTP", create=True)
    block.add_new(0x10, "LO", "MIDRC-RICORD")
    ds.add_new(0x00091001, "OB", b"\x00\x01")
    ds.add_new(0x00091002, "OB", bytes(MAX_STORED_BYTES + 1))
    nested = Dataset()
    nested.ReferencedSOPInstanceUID = "1.2.3"
    inner = Dataset()
    inner.CodeValue = "X"
    nested.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([nested])
    return ds


def _by_path(ds: Dataset) -> dict[str, dict]:
    return {row["tag_path"]: row for row in flatten_dataset(ds).rows()}


def test_tag_paths_follow_deid_format_at_every_depth() -> None:
    rows = _by_path(_dataset())
    assert rows["(0002,0010)"]["depth"] == 0
    seq = rows["(0012,0064)"]
    assert (seq["vr"], seq["value_number"], seq["vm"], seq["values"]) == ("SQ", 2.0, 2, [])
    code = rows["(0012,0064)__1__(0008,0100)"]
    assert code["keyword_path"] == "DeidentificationMethodCodeSequence[1].CodeValue"
    assert (code["tag"], code["keyword"], code["depth"], code["value_text"]) == ("00080100", "CodeValue", 1, "113107")
    deep = rows["(0008,1140)__0__(0040,A170)__0__(0008,0100)"]
    assert deep["depth"] == 2
    assert deep["keyword_path"] == "ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue"


def test_private_elements_carry_their_creator_and_tag_as_keyword_path() -> None:
    rows = _by_path(_dataset())
    private = rows["(0013,1010)"]
    assert (private["private_creator"], private["keyword"], private["keyword_path"]) == ("CTP", "", "(0013,1010)")
    assert private["value_text"] == "MIDRC-RICORD"
    assert rows["(0013,0010)"]["value_text"] == "CTP"
    assert rows["(0010,0010)"]["private_creator"] is None


def test_values_text_lists_numbers_and_binary_lengths() -> None:
    rows = _by_path(_dataset())
    assert rows["(0008,0008)"]["values"] == ["DERIVED", "PRIMARY"]
    assert rows["(0008,0008)"]["value_text"] == "DERIVED\\PRIMARY"
    assert rows["(0008,0008)"]["vm"] == 2
    assert rows["(0010,0010)"]["value_text"] == "Müller^Jürgen"
    assert rows["(0018,0060)"]["value_number"] == 90.0
    assert rows["(0028,0010)"]["value_number"] == 2518.0
    assert rows["(0028,0030)"]["value_number"] == 0.139
    assert rows["(0010,0010)"]["value_number"] is None  # not a numeric VR
    small, large = rows["(0009,1001)"], rows["(0009,1002)"]
    assert (small["value_text"], small["value_length"]) == ("0001", 2)
    assert (large["value_text"], large["values"], large["value_length"]) == (None, [], MAX_STORED_BYTES + 1)


def test_instance_attributes_are_typed_and_invalid_dates_are_null() -> None:
    rows = flatten_dataset(_dataset())
    record = instance_attributes(rows)
    assert record["study_date"] == dt.date(2011, 5, 8)
    assert record["series_date"] is None
    assert _by_path(_dataset())["(0008,0021)"]["value_text"] == "20111341"
    assert record["kvp"] == 90.0
    assert record["rows"] == 2518
    assert record["pixel_spacing"] == [0.139, 0.139]
    assert record["image_type"] == ["DERIVED", "PRIMARY"]
    assert record["transfer_syntax_uid"] == "1.2.840.10008.1.2.1"
    assert record["max_depth"] == 2
    assert record["n_elements"] == len(rows)


def test_date_and_time_parsing_edge_cases() -> None:
    assert parse_date("2011.05.08") == dt.date(2011, 5, 8)
    assert parse_date("") is None and parse_date("2011") is None and parse_date("20110230") is None
    assert parse_time("203127.524391") == dt.time(20, 31, 27, 524391)
    assert parse_time("2031") == dt.time(20, 31)
    assert parse_time("20:31:27") == dt.time(20, 31, 27)
    assert parse_time("235960") == dt.time(23, 59, 59)  # leap second
    assert parse_time("25") is None and parse_time("abc") is None
    assert parse_datetime("20110508203127.5+0100") == dt.datetime(2011, 5, 8, 20, 31, 27, 500000)
    assert parse_datetime("2011") == dt.datetime(2011, 1, 1)
    assert parse_datetime("nonsense") is None
