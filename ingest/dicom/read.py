"""Reading one DICOM header (a file's bytes, or a value in memory) into flattened rows.

The fast byte-level reader (:mod:`ingest.dicom.fast`) is tried first; pydicom
is the fallback for everything it declines, and the reference for both. Where
the bytes come from (files, zip members) is the sources' business
(:mod:`ingest.sources.files.read`).
"""

from __future__ import annotations

import io
import mmap
import struct
import warnings
from typing import BinaryIO

import pydicom
import pydicom.charset
from pydicom.dataelem import RawDataElement

from ingest.dicom import fast
from ingest.dicom.flatten import MAX_VALUE_BYTES, Nodes, flatten_dataset
from ingest.dicom.header import Header, NeedMore, ReadError, Unsupported, describe_failure

FIRST_READ = 64 * 1024
"""Bytes read before the first parse attempt; most headers fit."""

PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
UNDEFINED_LENGTH = 0xFFFFFFFF
DEFLATED = "1.2.840.10008.1.2.1.99"
_LONG_LENGTH_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})


def _patch_pydicom_encodings() -> None:
    """Make pydicom take a Specific Character Set value holding a NUL byte for an unknown
    encoding (its default, as for any other unknown value) instead of raising ``ValueError:
    embedded null character`` from ``codecs.lookup`` (the fast reader does the same)."""
    lookup = getattr(pydicom.charset, "_python_encoding_for_corrected_encoding", None)
    if lookup is None or getattr(lookup, "nul_safe", False):
        return

    def nul_safe(encoding: str) -> str:
        return pydicom.charset.default_encoding if "\0" in encoding else lookup(encoding)

    nul_safe.nul_safe = True  # type: ignore[attr-defined]
    pydicom.charset._python_encoding_for_corrected_encoding = nul_safe


_patch_pydicom_encodings()


# ---------------------------------------------------------------- one header

def looks_like_dicom(head: bytes) -> bool:
    """A 'DICM' prefix after the 128-byte preamble, or a plausible first tag without one.

    Files without preamble and meta start directly with a low group (0000–0010),
    little or big endian; text, images and random bytes practically never do.
    """
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8 or not any(head[:8]):  # (0000,0000) of length 0: zeros, not a header
        return False
    group_le, group_be = head[0] | head[1] << 8, head[0] << 8 | head[1]
    return any(g in (0x0000, 0x0002, 0x0004, 0x0008, 0x0010) for g in (group_le, group_be))


def _pixel_header(
    fp: BinaryIO, position: int, size: int, ds: pydicom.Dataset, *, check: bool = True
) -> tuple[bool, int | None]:
    """Whether pixel data starts at ``position``, and its declared length (bytes);
    ``check``: raise when the file ends before it does."""
    fp.seek(position)
    head = fp.read(12)
    if len(head) < 8:
        return False, None
    little = getattr(ds, "is_little_endian", None) is not False
    order = "<" if little else ">"
    group, element = struct.unpack_from(order + "HH", head)
    if (group << 16 | element) not in PIXEL_TAGS:
        return False, None
    # Some files declare explicit VR but encode implicitly; trust the bytes.
    explicit = head[4:6].isalpha() and head[4:6].isupper()
    if explicit and head[4:6] in _LONG_LENGTH_VRS and len(head) == 12:
        header_length, length = 12, struct.unpack_from(order + "L", head, 8)[0]
    elif explicit:
        header_length, length = 8, struct.unpack_from(order + "H", head, 6)[0]
    else:
        header_length, length = 8, struct.unpack_from(order + "L", head, 4)[0]
    if length == UNDEFINED_LENGTH:
        return True, None
    if check and position + header_length + length > size:
        raise ReadError("truncated", f"pixel data declares {length} bytes but the file ends before")
    return True, length


def _cut_short(elem: RawDataElement, size: int) -> bool:
    """Whether a defined-length raw element ends past the stream's ``size`` bytes (a value too long
    to read was skipped, not read: its end is checked against the size)."""
    if elem.value is None:
        return elem.value_tell + elem.length > size
    return len(elem.value) < elem.length


def _check_complete(ds: pydicom.Dataset, size: int, *, check_tail: bool) -> None:
    """Raise if an element is cut short, or (``check_tail``) if the file ends in a partial tag.

    pydicom silently drops a partial trailing tag and keeps a short last value.
    Call before converting elements: only raw elements can be checked.
    """
    last_end = 0
    for dataset in (getattr(ds, "file_meta", None), ds):
        for elem in (dataset._dict.values() if dataset is not None else ()):
            if not isinstance(elem, RawDataElement) or elem.length == UNDEFINED_LENGTH:
                continue
            if _cut_short(elem, size):
                raise ReadError("truncated", f"element {elem.tag} is cut short (file ends early)")
            if dataset is ds:
                last_end = max(last_end, elem.value_tell + elem.length)
    if check_tail and last_end and 0 < size - last_end < 8:
        raise ReadError("truncated", f"file ends inside an element header at byte {size}")


def pydicom_header(fp: BinaryIO, size: int, nodes: Nodes | None = None) -> Header:
    """Read and flatten with pydicom (the reference path), checking for truncation.

    ``nodes``: the node table the rows share (a new one when None).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True, defer_size=MAX_VALUE_BYTES)
            position = fp.tell()
            has_pixels, length = _pixel_header(fp, position, size, ds) if position < size else (False, None)
            deflated = getattr(ds, "file_meta", {}).get("TransferSyntaxUID") == DEFLATED
            _check_complete(ds, size, check_tail=not has_pixels and not deflated)
            rows = flatten_dataset(ds, nodes)
        except ReadError:
            raise
        except (EOFError, struct.error) as exc:
            raise ReadError("truncated", f"file ends inside the header ({exc})") from None
        except RecursionError:
            raise ReadError("too_deep", "sequences nested too deeply to read") from None
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad input
            message = describe_failure(exc)
            lowered = message.lower()
            kind = "truncated" if "end of file" in lowered or "no tag to read" in lowered else "invalid"
            raise ReadError(kind, message) from None
    if len(rows) == 0:
        raise ReadError("not_dicom", "no DICOM elements found")
    return Header(rows, has_pixels, length, reader="pydicom")


def _complete_elements(ds: pydicom.Dataset, size: int, *, check_tail: bool) -> int | None:
    """Drop the elements of ``ds`` from the first one cut short on (pydicom keeps a short last
    value); the byte offset where the complete elements end, None when none was cut short."""
    last_end = 0
    items = sorted(ds._dict.items())
    for index, (_, elem) in enumerate(items):
        if isinstance(elem, RawDataElement) and elem.length != UNDEFINED_LENGTH:
            if _cut_short(elem, size):
                for later, _ in items[index:]:
                    del ds._dict[later]
                return last_end
            last_end = max(last_end, elem.value_tell + elem.length)
    if items and isinstance(last := items[-1][1], RawDataElement) and last.length == UNDEFINED_LENGTH:
        value = last.value or b""
        if last.value_tell + len(value) >= size and not value.endswith(_SEQUENCE_END):
            del ds._dict[items[-1][0]]  # an undefined-length value cut by the end of the file
            return last_end
    if check_tail and last_end and 0 < size - last_end < 8:
        return last_end
    return None


_SEQUENCE_END = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


def partial_header(fp: BinaryIO, size: int, nodes: Nodes | None, error: ReadError) -> Header | None:
    """What a truncated stream holds: every element before it was cut (pydicom reads them),
    with ``truncated_at`` and a ``warning`` saying why; None when nothing can be kept."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            fp.seek(0)
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True, defer_size=MAX_VALUE_BYTES)
            position = fp.tell()
            has_pixels, length = (_pixel_header(fp, position, size, ds, check=False) if position < size
                                  else (False, None))
            stop = _complete_elements(ds, size, check_tail=not has_pixels)
            if stop is None:
                if not has_pixels:
                    return None  # not cut inside the header, nor in the pixel data: the error stands
                stop = position
            else:
                has_pixels, length = False, None
            rows = flatten_dataset(ds, nodes)
        except Exception:  # noqa: BLE001 - pydicom raises many types on bad input: the error stands
            return None
    if len(rows) == 0:
        return None
    warning = ReadError("truncated", f"{error.message}; the elements before byte {stop} were read",
                        severity="warning")
    return Header(rows, has_pixels, length, reader="pydicom", size=size, truncated_at=stop, warning=warning)


def read_header(head: bytes, size: int, fp: BinaryIO, nodes: Nodes | None = None) -> Header:
    """Flatten one DICOM stream of ``size`` bytes whose first bytes are ``head``. A truncated
    stream gives the elements read completely (:func:`partial_header`) when there are any.

    ``nodes``: the node table the rows share (a new one when None).

    Raises:
        ReadError: empty, not DICOM, truncated (nothing kept) or invalid.
    """
    try:
        return _read_header(head, size, fp, nodes)
    except ReadError as exc:
        if exc.error_type != "truncated" or (header := partial_header(fp, size, nodes, exc)) is None:
            raise
        return header


def _read_header(head: bytes, size: int, fp: BinaryIO, nodes: Nodes | None = None) -> Header:
    if size == 0:
        raise ReadError("empty", "zero-byte file")
    if not looks_like_dicom(head):
        raise ReadError("not_dicom", "not a DICOM file (no 'DICM' marker and no DICOM tag at the start)")
    try:
        header = _fast_header(head, size, fp, nodes)
    except Unsupported:
        fp.seek(0)
        header = pydicom_header(fp, size, nodes)
    header.size = size
    return header


def _fast_header(head: bytes, size: int, fp: BinaryIO, nodes: Nodes | None) -> Header:
    """:func:`fast.parse` given more of the stream each time the header runs past what it has."""
    buf: Buffer = head
    maps: list[mmap.mmap] = []
    try:
        while True:
            try:
                return fast.parse(buf, size, nodes)  # type: ignore[arg-type]  # bytes or a map of them
            except NeedMore as more:
                bigger = _bytes_until(fp, max(more.args[0], 2 * len(buf)))
                if isinstance(bigger, mmap.mmap):
                    maps.append(bigger)
                if len(bigger) <= len(buf):
                    raise ReadError("truncated", f"the stream ends at byte {len(buf)}, "
                                                 f"before the {size} bytes it declares") from None
                buf = bigger
    finally:
        for mapped in maps:
            mapped.close()


Buffer = bytes | mmap.mmap


def _bytes_until(fp: BinaryIO, end: int) -> Buffer:
    """At least the first ``end`` bytes of ``fp`` (all of it when shorter): a file is mapped, not
    read, so a value the reader skips (a 2 GB element before the pixel data) is never in memory;
    a stream that is spooled as it is read (a zip member) gives its own; else the whole stream."""
    until = getattr(fp, "bytes_until", None)
    if until is not None:
        return until(end)  # type: ignore[no-any-return]
    try:
        return mmap.mmap(fp.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError, io.UnsupportedOperation):
        fp.seek(0)
        return fp.read()


def read_bytes(data: bytes, nodes: Nodes | None = None) -> Header:
    """:func:`read_header` for a value held in memory (a zip member)."""
    return read_header(data[:FIRST_READ], len(data), io.BytesIO(data), nodes)


__all__ = ["looks_like_dicom", "partial_header", "pydicom_header", "read_bytes", "read_header"]
