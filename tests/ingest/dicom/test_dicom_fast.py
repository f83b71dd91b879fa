"""The fast reader against the reference (pydicom + flatten_dataset) on real corpora."""

from __future__ import annotations

import math
import os
import warnings
from functools import cache
from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.data.download
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ImplicitVRLittleEndian, generate_uid

from ingest.dicom.fast import parse
from ingest.dicom.flatten import ElementRows, flatten_dataset
from ingest.dicom.header import NeedMore, ReadError, Unsupported

LITTLE_ENDIAN_FAMILY_EXCLUDED = {
    "1.2.840.10008.1.2.2",  # explicit VR big endian
    "1.2.840.10008.1.2.1.99",  # deflated
}


@cache
def pydicom_corpus() -> tuple[Path, ...]:
    """pydicom's test files (regular files only), without network access."""
    pydicom.data.download._SIMULATE_NETWORK_OUTAGE = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = pydicom.data.get_testdata_files()
    return tuple(sorted(Path(f) for f in files if os.path.isfile(f)))


@cache
def deid_corpus() -> tuple[Path, ...]:
    """deid-data's DICOM files (every dataset it ships)."""
    from deid.data import get_dataset

    found: list[Path] = []
    for name in ("dicom-cookies", "humans", "ultrasounds", "animals"):
        try:
            root = Path(get_dataset(name))
        except Exception:  # noqa: BLE001 - a dataset missing from this deid-data version
            continue
        found.extend(p for p in sorted(root.rglob("*")) if p.is_file())
    return tuple(found)


def reference(data: bytes) -> ElementRows | None:
    """The reference rows, or None when pydicom cannot read the bytes."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return flatten_dataset(pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True))
        except Exception:  # noqa: BLE001 - not DICOM for pydicom either
            return None


def transfer_syntax(data: bytes) -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            meta = pydicom.dcmread(BytesIO(data), stop_before_pixels=True, force=True).file_meta
        except Exception:  # noqa: BLE001
            return None
    value = meta.get("TransferSyntaxUID")
    return None if value is None else str(value)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_equal_rows(fast: ElementRows, ref: ElementRows, label: str) -> None:
    assert len(fast) == len(ref), f"{label}: {len(fast)} rows vs {len(ref)}"
    for column in ElementRows.COLUMNS:
        mine, theirs = getattr(fast, column), getattr(ref, column)
        for i, (a, b) in enumerate(zip(mine, theirs, strict=True)):
            if column in ("vr", "tag_path", "keyword_path", "tag", "keyword"):
                a, b = str(a), str(b)  # pydicom's VR is a str enum
            ok = same(a, b) if not isinstance(a, list) else (
                isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
            )
            assert ok, f"{label}: row {i} ({ref.tag_path[i]}) {column}: {a!r} != {b!r}"


def check_file(path: Path) -> str:
    """Compare one file; returns 'fast', 'unsupported' or 'skipped'."""
    data = path.read_bytes()
    ref = reference(data)
    if data[128:132] != b"DICM":
        with pytest.raises(Unsupported):
            parse(data, len(data))
        return "skipped"
    try:
        header = parse(data, len(data))
    except Unsupported:
        return "unsupported"
    except ReadError as exc:
        if ref is None:
            return "skipped"
        # a file the fast reader calls truncated must really be cut short
        assert exc.error_type == "truncated", f"{path.name}: {exc}"
        return "truncated"
    assert ref is not None, f"{path.name}: fast parsed what pydicom cannot read"
    assert header.reader == "fast"
    assert_equal_rows(header.rows, ref, path.name)
    return "fast"


def exotic(path: Path) -> bool:
    """Files whose dataset legitimately needs the pydicom fallback."""
    return path.name in KNOWN_FALLBACKS


KNOWN_FALLBACKS = {
    "SC_rgb_jpeg.dcm",  # implicit VR dataset despite a JPEG transfer syntax
    "UN_sequence.dcm",  # UN sequence with implicit VR items
    "bad_sequence.dcm",  # UN element pydicom re-reads as SQ
    "rtdose_rle.dcm",  # idem
    "rtdose_rle_1frame.dcm",  # idem
    "badVR.dcm",  # IS value "1.5" (ISfloat)
    "meta_missing_tsyntax.dcm",  # no Transfer Syntax UID: pydicom guesses
    "DICOMDIR-nooffset",  # an item declares 24 bytes more than its sequence holds: pydicom reads what is there
}


@pytest.mark.slow
def test_pydicom_corpus_equivalence() -> None:
    outcomes: dict[str, list[Path]] = {}
    for path in pydicom_corpus():
        outcomes.setdefault(check_file(path), []).append(path)
    fast = len(outcomes.get("fast", []))
    little_endian = [
        p for p in outcomes.get("unsupported", [])
        if p.read_bytes()[128:132] == b"DICM"
        and (ts := transfer_syntax(p.read_bytes())) is not None
        and ts not in LITTLE_ENDIAN_FAMILY_EXCLUDED
    ]
    assert not [p.name for p in little_endian if not exotic(p)]
    assert fast >= 195, {k: len(v) for k, v in outcomes.items()}


@pytest.mark.slow
def test_deid_corpus_equivalence() -> None:
    outcomes: dict[str, int] = {}
    for path in deid_corpus():
        outcome = check_file(path)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    dicom = sum(n for outcome, n in outcomes.items() if outcome != "skipped")
    assert outcomes.get("fast", 0) == dicom >= 10, outcomes


TRUNCATION_FILES = (
    "CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "liver_1frame.dcm", "test-SR.dcm",
    "MR_small_implicit.dcm", "rtplan.dcm",
)


def corpus_file(name: str) -> Path:
    matches = [p for p in pydicom_corpus() if p.name == name]
    assert matches, name
    return matches[0]


def header_end(data: bytes) -> int:
    """The shortest prefix (bytes) the fast reader needs: just past the pixel data header."""
    low, high = 132, len(data)
    while low < high:
        middle = (low + high) // 2
        try:
            parse(data[:middle], len(data))
        except NeedMore:
            low = middle + 1
        else:
            high = middle
    return low


def check_truncations(data: bytes, label: str) -> None:
    """Every 3rd prefix of the header: NeedMore while the file goes on; cut there,
    truncated or (between two elements) the reference rows of the shorter file."""
    end = header_end(data) - 12  # before the pixel data element (OB/OW, or implicit VR)
    assert end > 200
    for cut in range(133, end, 3):
        part = data[:cut]
        with pytest.raises(NeedMore):
            parse(part, len(data))
        try:
            header = parse(part, cut)
        except ReadError as exc:
            assert exc.error_type == "truncated"
            continue
        ref = reference(part)
        assert ref is not None
        assert_equal_rows(header.rows, ref, f"{label}[:{cut}]")
        assert not header.has_pixel_data


@pytest.mark.parametrize("name", TRUNCATION_FILES)
def test_truncated_header(name: str) -> None:
    check_truncations(corpus_file(name).read_bytes(), name)


@pytest.mark.parametrize("name", ("CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm"))
def test_truncated_pixel_data(name: str) -> None:
    data = corpus_file(name).read_bytes()
    full = parse(data, len(data))
    assert full.has_pixel_data and full.pixel_data_length
    start = header_end(data)
    length = full.pixel_data_length
    for cut in (start, start + 1, start + length // 2, start + length - 1):
        with pytest.raises(ReadError) as info:
            parse(data[:cut], cut)
        assert info.value.error_type == "truncated"
        # the caller's usual 64 KiB-style prefix of a complete file is fine
        header = parse(data[:cut], len(data))
        assert header.pixel_data_length == full.pixel_data_length
        assert_equal_rows(header.rows, full.rows, name)


def test_need_more_then_success() -> None:
    data = corpus_file("CT_small.dcm").read_bytes()
    with pytest.raises(NeedMore):
        parse(data[:400], len(data))
    assert parse(data[:65536], len(data)).rows.tag == parse(data, len(data)).rows.tag


# ------------------------------------------------------------------ implicit VR

IMPLICIT_CORPUS_FILES = (
    "MR_small_implicit.dcm", "rtplan.dcm", "rtdose.dcm", "nested_priv_SQ.dcm", "priv_SQ.dcm",
    "empty_charset_LEI.dcm", "DICOMDIR-implicit", "gdcm-US-ALOKA-16.dcm",
)


@pytest.mark.parametrize("name", IMPLICIT_CORPUS_FILES)
def test_implicit_corpus_files_take_the_fast_path(name: str) -> None:
    path = corpus_file(name)
    assert transfer_syntax(path.read_bytes()) == ImplicitVRLittleEndian
    assert check_file(path) == "fast"


def _sequence(items: list[Dataset], *, undefined: bool) -> Sequence:
    for item in items:
        item.is_undefined_length_sequence_item = undefined
    return Sequence(items)


def implicit_file(pixel_representation: int | None, *, undefined: bool) -> bytes:
    """An implicit VR file with nested sequences (of ``undefined`` length, items too),
    private elements with known and unknown creators, 'US or SS' elements, overlay data,
    and 8 bytes of pixel data unless ``pixel_representation`` is None."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.SOPInstanceUID = generate_uid()
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = "113100", "DCM", "Basic Profile"
    inner = Dataset()
    inner.ReferencedSOPInstanceUID = generate_uid()
    inner.PurposeOfReferenceCodeSequence = _sequence([code], undefined=not undefined)
    outer = Dataset()
    outer.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    outer.ReferencedImageSequence = _sequence([inner, Dataset()], undefined=undefined)
    outer["ReferencedImageSequence"].is_undefined_length = undefined
    ds.ReferencedSeriesSequence = _sequence([outer], undefined=undefined)
    ds["ReferencedSeriesSequence"].is_undefined_length = undefined
    ds.PatientName = "Müller^Hans"
    ds.PatientID = "ID\\2"
    ds.add_new(0x00090010, "LO", "GEMS_IDEN_01")  # a creator pydicom knows
    ds.add_new(0x00091002, "SH", "suite ")
    ds.add_new(0x0009101A, "US", 7)
    ds.add_new(0x00090011, "LO", "")
    ds.add_new(0x00091101, "LO", "no creator")
    ds.add_new(0x00130010, "LO", "UNKNOWN CREATOR")
    private_item = Dataset()
    private_item.PatientID = "in a private sequence"
    private_item.add_new(0x00130010, "LO", "UNKNOWN CREATOR")
    private_item.add_new(0x00131001, "SH", "nested")
    ds.add_new(0x00131001, "LO", "unknown")
    ds.add_new(0x00131010, "SQ", _sequence([private_item], undefined=True))
    ds[0x00131010].is_undefined_length = True
    ds.add_new(0x00131011, "SQ", _sequence([Dataset()], undefined=False))  # read back as UN
    ds.add_new(0x00710010, "LO", "AGFA-AG_HPState")  # (0071,xx18) is SQ in the private dictionary
    ds.add_new(0x00711018, "SQ", _sequence([Dataset()], undefined=undefined))
    ds[0x00711018].is_undefined_length = undefined
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 2, 2, 16, 12, 11
    if pixel_representation is not None:
        ds.PixelRepresentation = pixel_representation
    ds.SmallestImagePixelValue = 0
    ds.LargestImagePixelValue = 300
    ds.PixelPaddingValue = -5 if pixel_representation else 4095
    mapping = Dataset()  # 'US or SS' values: Pixel Representation only in a defined-length sequence
    mapping.RealWorldValueFirstValueMapped = 0
    mapping.RealWorldValueLastValueMapped = -1 if pixel_representation else 65535
    ds.RealWorldValueMappingSequence = _sequence([mapping], undefined=undefined)
    ds["RealWorldValueMappingSequence"].is_undefined_length = undefined
    ds.add_new(0x60003000, "OW", b"\x01\x02" * 4)
    if pixel_representation is not None:  # pydicom cannot write 'US or SS' beside it without one
        ds.PixelData = b"\x00\x01" * 4
    return _implicit_bytes(ds)


@pytest.mark.parametrize("undefined", (False, True), ids=("defined", "undefined"))
@pytest.mark.parametrize("pixel_representation", (0, 1, None))
def test_implicit_file_equals_reference(pixel_representation: int | None, undefined: bool) -> None:
    data = implicit_file(pixel_representation, undefined=undefined)
    header = parse(data, len(data))
    ref = reference(data)
    assert ref is not None and header.reader == "fast"
    assert_equal_rows(header.rows, ref, "implicit")
    assert header.pixel_data_length == (None if pixel_representation is None else 8)
    vrs = dict(zip(header.rows.tag_path, header.rows.vr, strict=True))
    assert vrs["(0028,0120)"] == ("SS" if pixel_representation else "US")
    signed = pixel_representation and not undefined
    assert vrs["(0040,9096)__0__(0040,9211)"] == ("SS" if signed else "US")
    assert vrs["(6000,3000)"] == "OW"
    assert vrs["(0013,1010)"] == vrs["(0071,1018)"] == "SQ"
    assert vrs["(0013,1011)"] == "UN"
    assert "(0013,1010)__0__(0013,1001)" in vrs
    assert max(header.rows.depth) == 3


def test_implicit_file_truncated() -> None:
    check_truncations(implicit_file(1, undefined=True), "implicit")


def _implicit_bytes(ds: Dataset) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ImplicitVRLittleEndian
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _with(tag: int, vr: str, value: object, *, creator: str | None = None) -> Dataset:
    ds = Dataset()
    ds.PatientID = "x"
    if creator is not None:
        ds.add_new(tag >> 16 << 16 | 0x10, "LO", creator)
    ds.add_new(tag, vr, value)
    return ds


def _in_item(ds: Dataset) -> Dataset:
    parent = Dataset()
    parent.ReferencedImageSequence = Sequence([ds])
    parent.PixelRepresentation = 0
    return parent


@pytest.mark.parametrize(
    "ds",
    (
        _with(0x00189810, "US", 1),  # 'US or SS' before where the Pixel Representation would be
        _with(0x00283006, "US", [1, 2]),  # 'US or OW' LUT Data without a LUT Descriptor
        _with(0x002710A3, "US", [1, 2], creator="FDMS 1.0"),  # private 'US or SS'
        _in_item(_with(0x00280106, "US", 1)),  # the parent's Pixel Representation comes later
    ),
    ids=("before-pixel-representation", "lut-data", "private-ambiguous", "item"),
)
def test_implicit_declines_ambiguous_vrs(ds: Dataset) -> None:
    data = _implicit_bytes(ds)
    assert reference(data) is not None
    with pytest.raises(Unsupported):
        parse(data, len(data))


def _voi_lut(first: int, data: list[int] | bytes) -> Dataset:
    item = Dataset()
    item.LUTDescriptor = [first, 0, 16]
    item.add_new(0x00283006, "OW" if isinstance(data, bytes) else "US", data)
    return item


def test_implicit_lut_data_follows_its_descriptor() -> None:
    ds = Dataset()
    ds.PixelRepresentation = 0
    ds.VOILUTSequence = Sequence([_voi_lut(1, [7]), _voi_lut(2, b"\x07\x00\x08\x00")])
    data = _implicit_bytes(ds)
    header = parse(data, len(data))
    assert_equal_rows(header.rows, reference(data), "VOI LUT")
    vrs = dict(zip(header.rows.tag_path, header.rows.vr, strict=True))
    assert vrs["(0028,3010)__0__(0028,3006)"] == "US"
    assert vrs["(0028,3010)__1__(0028,3006)"] == "OW"
