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

from ingest.dicom.fast import parse
from ingest.dicom.flatten import ElementRows, flatten_dataset
from ingest.dicom.header import NeedMore, ReadError, Unsupported

EXPLICIT_LE_FAMILY_EXCLUDED = {
    "1.2.840.10008.1.2",  # implicit VR little endian
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
                isinstance(b, list) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
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
}


@pytest.mark.slow
def test_pydicom_corpus_equivalence() -> None:
    outcomes: dict[str, list[Path]] = {}
    for path in pydicom_corpus():
        outcomes.setdefault(check_file(path), []).append(path)
    fast = len(outcomes.get("fast", []))
    explicit_le = [
        p for p in outcomes.get("unsupported", [])
        if p.read_bytes()[128:132] == b"DICM"
        and (ts := transfer_syntax(p.read_bytes())) is not None
        and ts not in EXPLICIT_LE_FAMILY_EXCLUDED
    ]
    assert not [p.name for p in explicit_le if not exotic(p)]
    assert fast >= 150, {k: len(v) for k, v in outcomes.items()}


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


@pytest.mark.parametrize("name", TRUNCATION_FILES)
def test_truncated_header(name: str) -> None:
    data = corpus_file(name).read_bytes()
    end = header_end(data) - 12  # before the pixel data element (all these are OB/OW)
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
        # the cut fell between two elements: a shorter but valid file
        ref = reference(part)
        assert ref is not None
        assert_equal_rows(header.rows, ref, f"{name}[:{cut}]")
        assert not header.has_pixel_data


@pytest.mark.parametrize("name", ("CT_small.dcm", "MR_small.dcm"))
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
