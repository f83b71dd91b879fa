"""Reading sources (files, zip archives) into flattened headers or read errors.

The fast byte-level reader (:mod:`ingest.dicom.fast`) is tried first; pydicom
is the fallback for everything it declines, and the reference for both.
"""

from __future__ import annotations

import hashlib
import io
import os
import struct
import warnings
import zipfile
import zlib
from typing import BinaryIO, NamedTuple

import pydicom
from pydicom.dataelem import RawDataElement

from ingest.dicom import fast
from ingest.dicom.flatten import Nodes, flatten_dataset
from ingest.dicom.header import Header, NeedMore, ReadError, Unsupported

FIRST_READ = 64 * 1024
"""Bytes read before the first parse attempt; most headers fit."""

PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
UNDEFINED_LENGTH = 0xFFFFFFFF
DEFLATED = "1.2.840.10008.1.2.1.99"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_LONG_LENGTH_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT"})


class Source(NamedTuple):
    """One file found on disk (a DICOM file, a zip archive, or anything else).

    ``size`` is in bytes; ``mtime_ns`` is the modification time in nanoseconds
    since the epoch (both of the link itself for a broken symbolic link).
    """

    path: str
    size: int
    mtime_ns: int
    broken_link: bool = False


def file_id(source_path: str, member: str | None) -> str:
    """Stable key of an instance's location: a hash of path and zip member (hex, 20 chars)."""
    return hashlib.sha1(f"{source_path}\0{member or ''}".encode()).hexdigest()[:20]


# ---------------------------------------------------------------- one header

def looks_like_dicom(head: bytes) -> bool:
    """A 'DICM' prefix after the 128-byte preamble, or a plausible first tag without one.

    Files without preamble and meta start directly with a low group (0000–0010),
    little or big endian; text, images and random bytes practically never do.
    """
    if head[128:132] == b"DICM":
        return True
    if len(head) < 8:
        return False
    group_le, group_be = head[0] | head[1] << 8, head[0] << 8 | head[1]
    return any(g in (0x0000, 0x0002, 0x0004, 0x0008, 0x0010) for g in (group_le, group_be))


def _pixel_header(fp: BinaryIO, position: int, size: int, ds: pydicom.Dataset) -> tuple[bool, int | None]:
    """Whether pixel data starts at ``position``, and its declared length (bytes)."""
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
    if position + header_length + length > size:
        raise ReadError("truncated", f"pixel data declares {length} bytes but the file ends before")
    return True, length


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
            if elem.value is not None and len(elem.value) < elem.length:
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
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=True)
            position = fp.tell()
            has_pixels, length = _pixel_header(fp, position, size, ds) if position < size else (False, None)
            deflated = getattr(ds, "file_meta", {}).get("TransferSyntaxUID") == DEFLATED
            _check_complete(ds, size, check_tail=not has_pixels and not deflated)
            rows = flatten_dataset(ds, nodes)
        except ReadError:
            raise
        except (EOFError, struct.error) as exc:
            raise ReadError("truncated", f"file ends inside the header ({exc})") from None
        except Exception as exc:  # noqa: BLE001 - pydicom raises many types on bad input
            message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            lowered = message.lower()
            kind = "truncated" if "end of file" in lowered or "no tag to read" in lowered else "invalid"
            raise ReadError(kind, message) from None
    if len(rows) == 0:
        raise ReadError("not_dicom", "no DICOM elements found")
    return Header(rows, has_pixels, length, reader="pydicom")


def read_header(head: bytes, size: int, fp: BinaryIO, nodes: Nodes | None = None) -> Header:
    """Flatten one DICOM stream of ``size`` bytes whose first bytes are ``head``.

    ``nodes``: the node table the rows share (a new one when None).

    Raises:
        ReadError: empty, not DICOM, truncated or invalid.
    """
    if size == 0:
        raise ReadError("empty", "zero-byte file")
    if not looks_like_dicom(head):
        raise ReadError("not_dicom", "not a DICOM file (no 'DICM' marker and no DICOM tag at the start)")
    try:
        try:
            header = fast.parse(head, size, nodes)
        except NeedMore:
            fp.seek(0)
            header = fast.parse(fp.read(), size, nodes)
    except Unsupported:
        fp.seek(0)
        header = pydicom_header(fp, size, nodes)
    header.size = size
    return header


def read_bytes(data: bytes, nodes: Nodes | None = None) -> Header:
    """:func:`read_header` for a value held in memory (a zip member)."""
    return read_header(data[:FIRST_READ], len(data), io.BytesIO(data), nodes)


# ---------------------------------------------------------------- one source

Outcome = tuple[str | None, Header | ReadError]
"""(zip member name or None, the header or why it could not be read)."""


def _read_zip(path: str, nodes: Nodes | None) -> list[Outcome]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [(None, ReadError("bad_zip", f"corrupted zip archive ({exc})"))]
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            return [(None, ReadError("empty_zip", "zip archive holds no files"))]
        outcomes: list[Outcome] = []
        for info in members:
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError) as exc:
                outcomes.append((info.filename, ReadError("bad_zip", f"cannot extract member ({exc})")))
                continue
            try:
                outcomes.append((info.filename, read_bytes(data, nodes)))
            except ReadError as exc:
                outcomes.append((info.filename, exc))
        return outcomes


def read_source(source: Source, nodes: Nodes | None = None) -> list[Outcome]:
    """Every instance (or error) of one source: one for a file, one per member for a zip.

    ``nodes``: the node table the rows share (a new one when None).
    """
    if source.broken_link:
        target = os.readlink(source.path)
        return [(None, ReadError("broken_symlink", f"symbolic link to missing {target}"))]
    try:
        fp = open(source.path, "rb")  # noqa: SIM115 - closed below, read in two steps
    except OSError as exc:
        return [(None, ReadError("unreadable", exc.strerror or str(exc)))]
    with fp:
        try:
            head = fp.read(FIRST_READ)
        except OSError as exc:
            return [(None, ReadError("unreadable", exc.strerror or str(exc)))]
        if head[:4] in _ZIP_MAGIC:
            return _read_zip(source.path, nodes)
        try:
            return [(None, read_header(head, source.size, fp, nodes))]
        except ReadError as exc:
            return [(None, exc)]


__all__ = ["Source", "file_id", "looks_like_dicom", "read_bytes", "read_header", "read_source"]
