"""Memory is bounded by the reader, not by the file: values over the limit are not read (their
length and offset are kept), zip members are read only as far as their headers, empty sequence
items cost nothing, and a header of millions of elements is an error row.

Peak memory is measured in a subprocess (``VmHWM``), against the same process before reading.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

import ingest.sources.files.read as files_read
from ingest.dicom import flatten
from ingest.dicom.header import ReadError
from ingest.dicom.read import pydicom_header
from ingest.lake import part_files
from ingest.settings import Settings
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.read import Source, read_source

REPO = Path(__file__).resolve().parents[4]
MIB = 1 << 20


def _element(group: int, element: int, vr: bytes, value: bytes | None = None, length: int | None = None) -> bytes:
    """One explicit VR little endian element (a 4-byte length for the long VRs); ``length``
    without ``value``: the header only (the value follows, written by the caller)."""
    n = len(value) if value is not None else length
    assert n is not None
    if vr in (b"OB", b"OW", b"UN", b"UT", b"SQ", b"UC"):
        head = struct.pack("<HH", group, element) + vr + b"\0\0" + struct.pack("<L", n)
    else:
        head = struct.pack("<HH", group, element) + vr + struct.pack("<H", n)
    return head + (value or b"")


def _meta_and_start(uid: str = "1.2.3.4") -> bytes:
    """File meta and (0008,0016)/(0008,0018)/(0008,0060) of an explicit VR little endian instance."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = uid
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = uid
    ds.Modality = "OT"
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


_PRIVATE_CREATOR = _element(0x0009, 0x0010, b"LO", b"ACME")
_AFTER = _element(0x0010, 0x0020, b"LO", b"BIG ") + _element(0x0020, 0x0013, b"IS", b"7 ")
_PIXELS = _element(0x7FE0, 0x0010, b"OW", bytes(16))


def _big_value_file(path: Path, n: int) -> int:
    """A file with a private OB value of ``n`` bytes (a hole: no disk space) before more elements;
    the value's offset."""
    with open(path, "wb") as f:
        f.write(_meta_and_start() + _PRIVATE_CREATOR + _element(0x0009, 0x1001, b"OB", length=n))
        offset = f.tell()
        f.seek(n, os.SEEK_CUR)
        f.write(_AFTER + _PIXELS)
    return offset


def _peak_mib(code: str) -> dict[str, int]:
    """Run ``code`` in a fresh interpreter; its ``out`` dict with the peak resident memory
    before (``before``) and after (``after``) it, in MiB."""
    script = (  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent through exec
        "import json, re\n"
        "import ingest.sources.files.read, ingest.dicom.read\n"
        "def peak(): return int(re.search(r'VmHWM:\\s*(\\d+)', open('/proc/self/status').read())[1]) >> 10\n"
        "before = peak()\n"
        f"{code}\n"
        "print(json.dumps({**locals().get('out', {}), 'before': before, 'after': peak()}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_a_value_over_the_limit_keeps_its_length_and_offset_and_both_readers_agree(tmp_path: Path) -> None:
    text = ("report " * (3 * MIB // 7 + 1)).encode()
    blob = bytes(range(256)) * (2 * MIB // 256)
    head = _meta_and_start() + _PRIVATE_CREATOR
    data = (head + _element(0x0009, 0x1001, b"OB", blob) + _element(0x0010, 0x0020, b"LO", b"BIG ")
            + _element(0x0018, 0x9074, b"UT", text) + _element(0x0020, 0x0013, b"IS", b"7 ") + _PIXELS)
    path = tmp_path / "big.dcm"
    path.write_bytes(data)
    size = len(data)

    [(_, fast)] = read_source(Source(str(path), size, 0))
    with open(path, "rb") as fp:
        reference = pydicom_header(fp, size)
    assert fast.reader == "fast"
    assert list(fast.rows.rows()) == list(reference.rows.rows())
    rows = {row["tag"]: row for row in fast.rows.rows()}
    for tag, value in (("00091001", blob), ("00189074", text)):
        row = rows[tag]
        assert (row["values"], row["vm"], row["value_length"]) == ([], 1, len(value))
        assert data[row["value_offset"]:row["value_offset"] + len(value)] == value
    assert rows["00091001"]["private_creator"] == "ACME"
    assert rows["00200013"]["values"] == ["7"] and rows["00200013"]["value_offset"] is None
    assert rows["00100020"]["values"] == ["BIG"]


def test_a_2_gib_element_is_never_read(tmp_path: Path) -> None:
    path = tmp_path / "huge.dcm"
    offset = _big_value_file(path, 2 * 1024 * MIB - 2)
    assert os.stat(path).st_blocks * 512 < 64 * MIB, "the test needs a file system with sparse files"
    measured = _peak_mib(
        "import os\n"
        f"p = {str(path)!r}\n"
        "[(_, h)] = ingest.sources.files.read.read_source(ingest.sources.files.read.Source(p, os.path.getsize(p), 0))\n"
        "ref = ingest.dicom.read.pydicom_header(open(p, 'rb'), os.path.getsize(p))\n"
        "rows = {r['tag']: r for r in h.rows.rows()}\n"
        "out = {'reader': h.reader, 'length': rows['00091001']['value_length'],"
        " 'offset': rows['00091001']['value_offset'], 'after': rows['00200013']['values'],"
        " 'same': list(h.rows.rows()) == list(ref.rows.rows())}\n"
    )
    assert measured["reader"] == "fast" and measured["same"]
    assert (measured["length"], measured["offset"]) == (2 * 1024 * MIB - 2, offset)
    assert measured["after"] - measured["before"] < 64, measured  # was the whole 2 GiB


def _zip_with(path: Path, members: dict[str, bytes | tuple[bytes, int]]) -> None:
    """A deflated zip; a member given as (header, n) is the header then ``n`` zero bytes of pixel data."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for name, content in members.items():
            with archive.open(name, "w", force_zip64=True) as member:
                if isinstance(content, bytes):
                    member.write(content)
                    continue
                header, n = content
                member.write(header + _element(0x7FE0, 0x0010, b"OW", length=n))
                chunk = bytes(16 * MIB)
                for start in range(0, n, len(chunk)):
                    member.write(chunk[: n - start])


def test_a_zip_member_is_read_only_as_far_as_its_header(tmp_path: Path) -> None:
    archive = tmp_path / "bomb.zip"
    _zip_with(archive, {"a.dcm": (_meta_and_start("1.2.3.1") + _AFTER, 512 * MIB),
                        "b.dcm": (_meta_and_start("1.2.3.2") + _AFTER, 16)})
    assert archive.stat().st_size < 4 * MIB
    measured = _peak_mib(
        "import os\n"
        f"p = {str(archive)!r}\n"
        "outcomes = ingest.sources.files.read.read_source(ingest.sources.files.read.Source(p, os.path.getsize(p), 0))\n"
        "out = {'read': [[m, h.pixel_data_length] for m, h in outcomes]}\n"
    )
    assert measured["read"] == [["a.dcm", 512 * MIB], ["b.dcm", 16]]
    assert measured["after"] - measured["before"] < 64, measured  # was the member, twice


def test_a_long_zip_member_header_spools_to_disk_and_a_hostile_one_is_capped(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(files_read, "SPOOL_MEMORY_BYTES", 256 * 1024)
    long_header = (_meta_and_start("1.2.3.3") + _PRIVATE_CREATOR
                   + _element(0x0009, 0x1001, b"OB", bytes(range(256)) * 4096) + _AFTER + _PIXELS)
    archive = tmp_path / "long.zip"
    _zip_with(archive, {"long.dcm": long_header, "capped.dcm": (_meta_and_start("1.2.3.4") + _AFTER, 16)})
    [(member, header), _] = read_source(Source(str(archive), archive.stat().st_size, 0))
    assert member == "long.dcm"
    assert {row["tag"]: row["values"] for row in header.rows.rows()}["00200013"] == ["7"]

    monkeypatch.setattr(files_read, "MAX_MEMBER_BYTES", 512 * 1024)
    [(_, error), (_, small)] = read_source(Source(str(archive), archive.stat().st_size, 0))
    assert error.error_type == "too_large" and "extract it" in error.message
    assert small.pixel_data_length == 16  # the member after it is read


def _lake(settings: Settings, name: str) -> list[dict]:
    return pa.concat_tables(pq.read_table(f) for f in part_files(settings.dicom_lake / name)).to_pylist()


def _items_file(path: Path, n: int, *, undefined: bool) -> None:
    if undefined:  # undefined-length items, each closed by an item delimiter
        items = (struct.pack("<HHL", 0xFFFE, 0xE000, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE00D, 0)) * n
    else:
        items = struct.pack("<HHL", 0xFFFE, 0xE000, 0) * n
    path.write_bytes(_meta_and_start() + _element(0x0008, 0x1115, b"SQ", items) + _AFTER + _PIXELS)


@pytest.mark.parametrize("undefined", [False, True])
def test_empty_sequence_items_cost_no_memory(tmp_path: Path, undefined: bool) -> None:
    path = tmp_path / "items.dcm"
    _items_file(path, 2_000_000, undefined=undefined)
    measured = _peak_mib(
        "import os\n"
        f"p = {str(path)!r}\n"
        "[(_, h)] = ingest.sources.files.read.read_source(ingest.sources.files.read.Source(p, os.path.getsize(p), 0))\n"
        "out = {'items': [r['vm'] for r in h.rows.rows() if r['tag'] == '00081115'], 'reader': h.reader}\n"
    )
    assert measured["items"] == [2_000_000] and measured["reader"] == "fast"
    file_mib = path.stat().st_size / MIB
    assert measured["after"] - measured["before"] < 2 * file_mib + 16, (measured, file_mib)  # was ~45×


def test_a_header_of_too_many_elements_is_one_error_row(
        tmp_path: Path, settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(flatten, "MAX_ELEMENTS", 1000)
    monkeypatch.setattr("ingest.dicom.fast.MAX_ELEMENTS", 1000)
    item = struct.pack("<HHL", 0xFFFE, 0xE000, 10) + _element(0x0008, 0x0100, b"SH", b"CODE")
    source = tmp_path / "src"
    source.mkdir()
    (source / "many.dcm").write_bytes(
        _meta_and_start("1.2.3.5") + _element(0x0008, 0x1115, b"SQ", item * 2000) + _AFTER + _PIXELS)
    (source / "few.dcm").write_bytes(
        _meta_and_start("1.2.3.6") + _element(0x0008, 0x1115, b"SQ", item * 10) + _AFTER + _PIXELS)
    ingest_dicom(settings, [source], workers=1)
    errors = _lake(settings, "errors")
    assert [(Path(e["source_path"]).name, e["error_type"], e["severity"]) for e in errors] == [
        ("many.dcm", "too_large", "error")]
    instances = _lake(settings, "instances")
    assert [i["sop_instance_uid"] for i in instances] == ["1.2.3.6"]
    with open(source / "many.dcm", "rb") as fp, pytest.raises(ReadError, match="too_large"):
        pydicom_header(fp, (source / "many.dcm").stat().st_size)  # the pydicom reader stops there too
