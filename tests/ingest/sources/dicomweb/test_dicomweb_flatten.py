"""DICOM JSON → rows, pure: the value forms of PS3.18 F.2 against the file ingestor's conventions."""

from __future__ import annotations

import base64

import pytest

from ingest.dicom.header import ReadError
from ingest.sources.dicomweb.flatten import BulkValue, bulk_uris, flatten_instance
from tests.ingest.sources.dicomweb import conftest
from tests.orthanc import server as orthanc_server

URI = "http://pacs/dicom-web/studies/1/series/2/instances/3/bulk/00431028"
INSTANCE = {
    "00080005": {"vr": "CS", "Value": ["ISO_IR 100"]},
    "00080008": {"vr": "CS", "Value": ["ORIGINAL", None, "AXIAL"]},
    "00080018": {"vr": "UI", "Value": ["1.2.3"]},
    "00100010": {"vr": "PN", "Value": [{"Alphabetic": "Doe^John", "Ideographic": "", "Phonetic": ""},
                                       {"Alphabetic": "A", "Phonetic": "P"}]},
    "00101030": {"vr": "DS", "Value": [72.5]},
    "00181110": {"vr": "FL", "Value": [0]},
    "00200013": {"vr": "IS", "Value": [7]},
    "00209165": {"vr": "AT", "Value": ["00540010"]},
    "00204000": {"vr": "LT", "Value": ["a", "b"]},
    "00280010": {"vr": "US", "Value": [512]},
    "00430010": {"vr": "LO", "Value": ["GEMS_PARM_01"]},
    "00431028": {"vr": "OB", "BulkDataURI": URI},
    "00431029": {"vr": "OB", "InlineBinary": base64.b64encode(b"\x01\x02").decode()},
    "00400260": {"vr": "SQ", "Value": [{"00080100": {"vr": "SH", "Value": ["X1"]}}, {}]},
    "00100020": {"vr": "LO"},
    "7FE00010": {"vr": "OW", "BulkDataURI": URI.replace("00431028", "7fe00010")},
    "FFFCFFFC": {"vr": "OB", "BulkDataURI": URI.replace("00431028", "fffcfffc")},
}


def _rows() -> dict[str, dict]:
    header = flatten_instance(INSTANCE, bulk={URI: BulkValue(b"\xff" * 3, 3)})
    return {row["tag_path"]: row for row in header.rows.rows()}


def test_values_are_written_as_a_file_row_writes_them() -> None:
    rows = _rows()
    assert rows["(0008,0008)"]["values"] == ["ORIGINAL", "", "AXIAL"] and rows["(0008,0008)"]["vm"] == 3
    assert rows["(0010,0010)"]["values"] == ["Doe^John", "A==P"]
    assert rows["(0010,1030)"]["values"] == ["72.5"] and rows["(0010,1030)"]["value_number"] == 72.5
    assert rows["(0018,1110)"]["values"] == ["0.0"]  # FL printed as Python prints a float
    assert rows["(0020,0013)"]["values"] == ["7"] and rows["(0020,0013)"]["value_number"] == 7.0
    assert rows["(0020,9165)"]["values"] == ["(0054,0010)"]
    assert rows["(0020,4000)"]["values"] == ["a\\b"]  # LT is one value in a file
    assert rows["(0028,0010)"]["value_number"] == 512.0
    assert rows["(0010,0020)"]["values"] == [] and rows["(0010,0020)"]["value_text"] is None
    assert rows["(0040,0260)"]["vm"] == 2 and rows["(0040,0260)"]["value_number"] == 2.0
    assert rows["(0040,0260)__0__(0008,0100)"]["keyword_path"] == "PerformedProtocolCodeSequence[0].CodeValue"
    assert rows["(0040,0260)__0__(0008,0100)"]["depth"] == 1


def test_binary_values_private_creators_and_pixel_data() -> None:
    rows = _rows()
    assert rows["(0043,1028)"]["values"] == ["ffffff"] and rows["(0043,1028)"]["value_length"] == 3
    assert rows["(0043,1029)"]["values"] == ["0102"] and rows["(0043,1029)"]["value_length"] == 2
    assert rows["(0043,1028)"]["private_creator"] == "GEMS_PARM_01"
    assert rows["(0043,0010)"]["private_creator"] is None and rows["(0043,1028)"]["keyword"] == ""
    assert "(7FE0,0010)" not in rows and "(FFFC,FFFC)" not in rows
    assert flatten_instance(INSTANCE).has_pixel_data
    unfetched = {row["tag_path"]: row for row in flatten_instance(INSTANCE).rows.rows()}["(0043,1028)"]
    assert unfetched["values"] == [URI] and unfetched["value_length"] is None and unfetched["vm"] == 1
    assert bulk_uris(INSTANCE) == [URI]  # not the pixel data's, nor what follows it
    assert list(_rows()) == sorted(_rows(), key=lambda path: path)  # tag order, as files


def test_bad_json_is_a_read_error() -> None:
    for bad in ([], {"0008": {"vr": "CS"}}, {"00080008": "CS"}, {}):
        with pytest.raises(ReadError):
            flatten_instance(bad)  # type: ignore[arg-type]


def test_a_missing_orthanc_fails_the_tests_saying_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path
) -> None:
    monkeypatch.setattr(orthanc_server, "ORTHANC", str(tmp_path / "no-orthanc"))
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y orthanc orthanc-dicomweb"):
        conftest.orthanc_or_fail(tmp_path)
