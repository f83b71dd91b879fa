"""The DICOMweb ingest of every instance Orthanc stores equals the file ingest of the same files,
element for element, but for the differences docs/tables.md documents, named here one by one."""

from __future__ import annotations

import collections
from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from ingest.dicom.schema import ELEMENTS, ERRORS, INSTANCES
from ingest.lake import read_table
from ingest.settings import Settings, resolve_settings
from ingest.sources.dicomweb.client import Auth, DicomWebClient
from ingest.sources.dicomweb.ingest import ingest_dicomweb
from ingest.sources.files.ingest import ingest_dicom
from tests.ingest.sources.dicomweb.conftest import Stored, copy_files
from tests.orthanc.server import PASSWORD, USER

DOCUMENTED = {
    "file_meta": "group 0002 is not in DICOM JSON",
    "group_length": "group lengths (gggg,0000) are not in DICOM JSON",
    "number_text": "DS/IS/FL/FD are JSON numbers: the same double, another text",
    "bulk_uri": "a binary value above --bulk-max-bytes keeps its BulkDataURI as its value",
    "ambiguous_vr": "a US-or-SS element of an implicit VR file is left out by Orthanc",
    "explicit_un": "a standard element encoded as explicit UN is left out by Orthanc",
    "charset": "ISO 2022 multi-byte character sets: Orthanc's decoding differs from pydicom's",
    "padding": "Orthanc strips the padding of each value of a multi-valued string, or keeps it on explicit UN",
    "empty_item": "Orthanc leaves out an empty sequence item",
    "float_text": "Orthanc prints FL/FD with fewer digits (denormals as 0)",
    "sequence_creator": "a private sequence read by pydicom (not the fast reader) has no private_creator in a file row",
}
"""Every kind of element difference: its name and why (docs/tables.md has the same list)."""
INSTANCE_COLUMNS_DIFFERING = {
    "file_id", "source_path", "source_member", "file_size", "file_mtime", "transfer_syntax_uid",
    "has_pixel_data", "pixel_data_length", "n_elements", "ingested_at", "truncated", "truncated_at",
}
"""Instance columns a DICOMweb row may not share with the file's (docs/tables.md says why)."""

_NUMBER_VRS = {"DS", "IS", "FL", "FD"}
FLOAT_VRS = {"FL", "FD"}
_BINARY_VRS = {"OB", "OD", "OF", "OL", "OV", "OW", "UN"}
_ISO_2022 = "ISO 2022"


def _floats(values: list[str]) -> list[float] | None:
    try:
        return [float(v) for v in values]
    except ValueError:
        return None


KNOWN_FILES = {
    "bad_sequence.dcm": "explicit_un",  # an SQ and an FL encoded as explicit UN
    "OT-PAL-8-face.dcm": "ambiguous_vr",  # (0028,1101-1103), US or SS, implicit VR
    "gdcm-US-ALOKA-16.dcm": "ambiguous_vr",
}
"""Corpus files whose elements Orthanc leaves out, and why (the kind)."""


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-6 * max(abs(a), abs(b)) or max(abs(a), abs(b)) < 1e-20


def _kind(file_row: dict[str, Any] | None, web_row: dict[str, Any] | None, charsets: list[str],
          name: str) -> str | None:
    """Which documented difference explains this pair of rows of file ``name`` (None: unexplained)."""
    if any(_ISO_2022 in c for c in charsets):
        return "charset"
    if web_row is None:
        assert file_row is not None
        path = file_row["tag_path"]
        if path.startswith("(0002,"):
            return "file_meta"
        if path.endswith(",0000)"):
            return "group_length"
        return KNOWN_FILES.get(name)
    if file_row is None:
        return None
    changed = {c for c in file_row if file_row[c] != web_row[c]}
    vr = file_row["vr"]
    if changed <= {"values", "value_text"} and vr in _NUMBER_VRS:
        file_numbers, web_numbers = _floats(file_row["values"]), _floats(web_row["values"])
        if file_numbers is not None and file_numbers == web_numbers:
            return "number_text"
    if vr in FLOAT_VRS and changed <= {"values", "value_text", "value_number"}:
        file_numbers, web_numbers = _floats(file_row["values"]), _floats(web_row["values"])
        if file_numbers and web_numbers and len(file_numbers) == len(web_numbers) and \
                all(_close(a, b) for a, b in zip(file_numbers, web_numbers, strict=True)):
            return "float_text"
    if changed <= {"values", "value_text"} and [v.strip() for v in file_row["values"]] == \
            [v.strip() for v in web_row["values"]]:
        return "padding"
    if vr == "SQ" and changed == {"private_creator"} and file_row["private_creator"] is None:
        return "sequence_creator"
    if vr == "SQ" and changed <= {"vm", "value_number"} and web_row["vm"] < file_row["vm"]:
        return "empty_item"
    if vr in _BINARY_VRS and changed <= {"values", "value_text", "value_length"} and \
            len(web_row["values"]) == 1 and web_row["values"][0].startswith("http"):
        return "bulk_uri"
    return None


def _stripped(value: Any) -> Any:
    """A typed attribute with its texts stripped (the ``padding`` difference reaches them)."""
    if isinstance(value, list):
        return [_stripped(v) for v in value]
    return value.strip() if isinstance(value, str) else value


def _changes(file_row: dict[str, Any] | None, web_row: dict[str, Any] | None) -> str:
    """What differs, for a failure message."""
    if file_row is None or web_row is None:
        return f"only in {'files' if web_row is None else 'DICOMweb'}: {file_row or web_row}"
    return ", ".join(f"{c} {file_row[c]!r} != {web_row[c]!r}" for c in file_row if file_row[c] != web_row[c])


def _by_instance(settings: Settings) -> dict[str, tuple[dict[str, Any], dict[str, dict[str, Any]]]]:
    """SOP Instance UID → (its instance row, its element rows by tag path); SOPs read once only."""
    instances = read_table(settings.dicom_lake / "instances", INSTANCES).to_pylist()
    elements = read_table(settings.dicom_lake / "elements", ELEMENTS)
    counts = collections.Counter(row["sop_instance_uid"] for row in instances)
    rows_of: dict[str, dict[str, dict[str, Any]]] = collections.defaultdict(dict)
    for row in elements.to_pylist():
        rows_of[row["file_id"]][row["tag_path"]] = row
    return {row["sop_instance_uid"]: (row, rows_of[row["file_id"]]) for row in instances
            if counts[row["sop_instance_uid"]] == 1}


@pytest.mark.slow
def test_dicomweb_rows_equal_file_rows_but_for_documented_differences(
    stored: Stored, tmp_path: Path, copies: Path
) -> None:
    files_lake = resolve_settings(tmp_path / "files")
    ingest_dicom(files_lake, [copy_files(stored.corpus + stored.generated, copies)], workers=1)
    web_lake = resolve_settings(tmp_path / "web")
    client = DicomWebClient(stored.server.dicomweb, Auth(USER, PASSWORD))
    summary = ingest_dicomweb(web_lake, client)
    assert summary.n_instances >= len(stored.corpus) + len(stored.generated) - 4  # (duplicated-UID studies)
    from_files, from_web = _by_instance(files_lake), _by_instance(web_lake)
    shared = sorted(from_files.keys() & from_web.keys())
    assert len(shared) >= 0.9 * len(from_web), (len(shared), len(from_web))

    kinds: collections.Counter[str] = collections.Counter()
    unexplained: list[str] = []
    n_equal = 0
    for sop in shared:
        (file_instance, file_rows), (web_instance, web_rows) = from_files[sop], from_web[sop]
        charsets = file_instance["specific_character_set"] or []
        name = file_instance["source_path"].rsplit("/", 1)[-1].split("_", 1)[1]
        for path in sorted(file_rows.keys() | web_rows.keys()):
            file_row, web_row = file_rows.get(path), web_rows.get(path)
            if file_row is not None and web_row is not None:
                file_row = {k: v for k, v in file_row.items() if k not in ("file_id",)}
                web_row = {k: v for k, v in web_row.items() if k not in ("file_id",)}
                if file_row == web_row:
                    n_equal += 1
                    continue
            kind = _kind(file_row, web_row, charsets, name)
            if kind is None:
                unexplained.append(f"{name} {path}: {_changes(file_row, web_row)}")
            else:
                kinds[kind] += 1
        comparable = not any(_ISO_2022 in c for c in charsets)
        for column, file_value in file_instance.items():
            web_value = web_instance[column]
            if comparable and column not in INSTANCE_COLUMNS_DIFFERING and web_value != file_value \
                    and _stripped(web_value) != _stripped(file_value):
                unexplained.append(f"instance {sop} {column}: file {file_value!r} web {web_value!r}")
        assert web_instance["source_path"] == client.url
        assert web_instance["source_member"].startswith(f"studies/{web_instance['study_instance_uid']}/series/")
        assert web_instance["transfer_syntax_uid"] is None and web_instance["file_size"] is None
    assert not unexplained, f"{len(unexplained)} unexplained differences:\n" + "\n".join(unexplained[:40])
    assert set(kinds) <= set(DOCUMENTED)
    assert {"file_meta", "number_text", "bulk_uri"} <= set(kinds), kinds
    assert n_equal > 10 * (sum(kinds.values()) - kinds["file_meta"]), (n_equal, kinds)
    docs = (Path(__file__).parents[4] / "docs" / "tables.md").read_text()
    for kind in kinds:
        assert f"`{kind}`" in docs, f"docs/tables.md does not document the difference {kind}"


def test_a_study_listed_but_not_retrievable_is_an_error_row(stored: Stored, settings: Settings) -> None:
    """Orthanc lists the StudyInstanceUID of badVR.dcm and rtdose_rle.dcm twice (their PatientIDs
    differ) and answers 404 for its metadata: an error row, the run goes on."""
    client = DicomWebClient(stored.server.dicomweb, Auth(USER, PASSWORD))
    summary = ingest_dicomweb(settings, client, bulk_max_bytes=0)
    errors = read_table(settings.dicom_lake / "errors", ERRORS)
    not_found = errors.filter(pc.equal(errors["error_type"], "not_found"))
    assert not_found.num_rows >= 1 and summary.n_errors >= 1
    assert all(member.startswith("studies/") and member.count("/") == 1
               for member in not_found["source_member"].to_pylist())
