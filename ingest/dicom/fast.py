"""Fast DICOM header reader working on raw bytes (Explicit and Implicit VR Little Endian datasets).

:func:`parse` produces exactly the rows of
``flatten_dataset(dcmread(fp, stop_before_pixels=True, force=True))`` for the inputs
it accepts, and raises :class:`Unsupported` for anything it does not reproduce
exactly (the caller then falls back to pydicom). All offsets are 0-based byte
offsets into the file; lengths are in bytes.

In an implicit VR dataset each element's VR is the one pydicom gives it: the
public dictionary's, LO for private creators, the private dictionary's under a
known creator, UL for unknown group lengths, UN otherwise; 'US or SS' from the
dataset's Pixel Representation and overlay data as OW (as pydicom corrects
them); other ambiguous VRs are declined.
"""

from __future__ import annotations

import codecs
import enum
import struct
import sys
import warnings
from collections.abc import Callable

import pydicom.uid
from pydicom.charset import convert_encodings, decode_bytes
from pydicom.datadict import (
    DicomDictionary,
    RepeatersDictionary,
    dictionary_VR,
    mask_match,
    private_dictionary_VR,
)
from pydicom.filewriter import _AMBIGUOUS_US_SS_TAGS, _OVERLAY_DATA_TAGS
from pydicom.multival import MultiValue
from pydicom.tag import _LUT_DESCRIPTOR_TAGS
from pydicom.valuerep import TEXT_VR_DELIMS
from pydicom.values import convert_PN

from ingest.dicom.flatten import MAX_STORED_BYTES, MAX_VALUE_BYTES, ElementRows, Nodes, tag_string
from ingest.dicom.header import MAX_DEPTH, MAX_ELEMENTS, Header, NeedMore, ReadError, Unsupported

_HEAD = struct.Struct("<LHH").unpack_from
"""(tag bytes as uint32: element << 16 | group, VR bytes as uint16, 16-bit length)."""
_ITEM = struct.Struct("<HHL").unpack_from
_TAG_LENGTH = struct.Struct("<LL").unpack_from
_U32 = struct.Struct("<L").unpack_from

_UNDEFINED = 0xFFFFFFFF
_ITEM_TAG = 0xFFFEE000
_ITEM_TAG_LE = 0xE000FFFE
"""The item tag as its bytes read as one uint32 (as :data:`_HEAD` reads tags)."""
_ITEM_END = 0xFFFEE00D
_SEQ_END = 0xFFFEE0DD
_EMPTY_ITEM_END = (0xE00DFFFE, 0)
"""An item delimiter as :data:`_TAG_LENGTH` reads it (tag bytes as one uint32, length)."""
_CHARSET_TAG = 0x00080005
_PIXEL_REPRESENTATION = 0x00280103
_PIXEL_REPRESENTATION8 = "00280103"
_LUT_DESCRIPTOR = "00283002"
_LUT_DATA = 0x00283006
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})

_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
_KNOWN_VRS = _LONG_VRS | {
    "AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "PN",
    "SH", "SL", "SS", "ST", "TM", "UI", "UL", "US",
}
_VR_NAMES: dict[int, tuple[str, bool]] = {
    int.from_bytes(vr.encode("ascii"), "little"): (vr, vr in _LONG_VRS) for vr in _KNOWN_VRS
}
"""VR bytes (as a little-endian uint16) → (VR, has a 4-byte length)."""
_BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q"}
_DEFAULT_STRING_VRS = frozenset({"AS", "CS", "DA", "DT", "TM"})
_MULTI_TEXT_VRS = frozenset({"SH", "LO", "UC"})
_SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT"})
_CHARSET_VRS = _MULTI_TEXT_VRS | _SINGLE_TEXT_VRS | {"PN", "SQ"}
_CREATOR_VRS = frozenset({"LO", "SH", "CS", "ST", "LT", "UT", "UC"})
_SIMPLE_PN_CODECS = frozenset({"iso8859-1", "utf-8"})
_UNSUPPORTED_SYNTAXES = frozenset({
    pydicom.uid.ExplicitVRBigEndian,
    pydicom.uid.DeflatedExplicitVRLittleEndian,
})

class _Complex(enum.Enum):
    COMPLEX = 0


_COMPLEX = _Complex.COMPLEX
"""Marks a possible private-creator element whose value is not a plain string."""
_UNSURE = object()
"""A Pixel Representation pydicom may use that this reader does not know
(see :meth:`_Reader.pixel_representation`)."""

_TAG_INFO: dict[int, tuple[str, str, str]] = {}
"""tag → (``(GGGG,EEEE)``, ``GGGGEEEE``, keyword or '')."""


def _implicit_head(buf: bytes, pos: int) -> tuple[int, int, int]:
    """An implicit VR element header at ``pos`` as :data:`_HEAD` gives explicit ones:
    (tag bytes as uint32, 0 for the absent VR, 32-bit length)."""
    tag_le, length = _TAG_LENGTH(buf, pos)
    return tag_le, 0, length


_PUBLIC_VRS: dict[int, str] = {}
"""Public tag → VR pydicom gives its defined-length element in an implicit VR dataset."""


def _public_vr(tag: int) -> str:
    """The dictionary VR (repeaters included; maybe ambiguous), UL for a group length, else UN."""
    vr = _PUBLIC_VRS.get(tag)
    if vr is None:
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = "UL" if not tag & 0xFFFF else "UN"
        _PUBLIC_VRS[tag] = vr
    return vr


def _undefined_length_vr(tag: int) -> str | None:
    """The VR pydicom's reader looks up for an implicit undefined-length element
    (public dictionary and repeaters only); None when not found."""
    entry = DicomDictionary.get(tag)
    if entry is None and not tag >> 16 & 1:
        mask = mask_match(tag)
        entry = RepeatersDictionary[mask] if mask else None
    return entry[0] if entry else None


def _tag_info(tag: int) -> tuple[str, str, str]:
    info = _TAG_INFO.get(tag)
    if info is None:
        entry = DicomDictionary.get(tag)
        group, element = tag >> 16, tag & 0xFFFF
        info = (tag_string(group, element), f"{group:04X}{element:04X}", entry[4] if entry else "")
        _TAG_INFO[tag] = info
    return info


class _Charset:
    """A dataset's Specific Character Set: pydicom's Python encodings plus a fast codec."""

    __slots__ = ("encodings", "codec", "simple_pn", "key", "fast")

    def __init__(self, encodings: list[str]) -> None:
        self.encodings = encodings
        try:
            self.codec: str | None = codecs.lookup(encodings[0]).name
        except LookupError:
            self.codec = None
        self.simple_pn = len(encodings) == 1 and self.codec in _SIMPLE_PN_CODECS
        self.key = (self.codec, *encodings[1:]) if self.codec else tuple(encodings)
        self.fast: dict[int, _FastInfo] = {}
        """Short-path entries of the elements met so far with this charset (see :data:`_FastInfo`)."""

    def decode(self, raw: bytes) -> str:
        """Text as ``pydicom.charset.decode_bytes`` gives it (undecodable bytes replaced)."""
        if self.codec is not None and 0x1B not in raw:
            try:
                return raw.decode(self.codec)
            except UnicodeDecodeError:
                pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return decode_bytes(raw, self.encodings, TEXT_VR_DELIMS)


_CHARSETS: dict[tuple[str, ...], _Charset] = {}


def _charset(value: tuple[str, ...]) -> _Charset:
    """The charset for a (0008,0005) value (its values as pydicom splits them)."""
    charset = _CHARSETS.get(value)
    if charset is None:
        # a value with a NUL is an unknown encoding (pydicom's default instead), not a lookup crash
        names = [name if "\0" not in name else "INVALID" for name in value]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            encodings = convert_encodings(names[0] if len(names) == 1 else names)
        charset = _Charset(list(encodings))
        _CHARSETS[value] = charset
    return charset


_DEFAULT_CHARSET = _charset(("",))


# ------------------------------------------------------------------ value texts

Values = tuple[list[str], float | None]
"""Text values of one element and its first value as a double (None for non-numeric VRs)."""


def _redispatch(vr: str) -> str:
    """A dictionary VR to read a UN value as; raises for SQ and ambiguous VRs."""
    if vr not in _KNOWN_VRS or vr == "SQ":
        raise Unsupported(f"UN element re-read by pydicom as {vr}")
    return vr


def _split(text: str) -> list[str]:
    """A pydicom multi-value: one empty value means no values."""
    parts = text.split("\\")
    return parts if len(parts) > 1 or parts[0] else []


def _strings(raw: bytes, charset: _Charset, tag: int) -> Values:
    """AS, CS, DA, DT, TM (``convert_string``), default encoding."""
    return _split(raw.decode("latin-1").rstrip(" \x00")), None


def _ae(raw: bytes, charset: _Charset, tag: int) -> Values:
    parts = [part.strip() for part in raw.decode("latin-1").split("\\")]
    return (parts if len(parts) > 1 or parts[0] else []), None


def _ui(raw: bytes, charset: _Charset, tag: int) -> Values:
    return _split(raw.decode("latin-1").rstrip("\0 ")), None


def _ur(raw: bytes, charset: _Charset, tag: int) -> Values:
    text = raw.decode("latin-1").rstrip()
    return ([text] if text else []), None


def _ds(raw: bytes, charset: _Charset, tag: int) -> Values:
    """DS as ``str(DSfloat)`` keeps it: each value stripped; blank values kept as is."""
    text = raw.decode("latin-1").strip().rstrip(" \x00")
    if "\\" not in text:  # one value
        stripped = text.strip()
        if not stripped:  # blank: kept as is
            return ([text] if text else []), None
        try:
            return [stripped], float(stripped)
        except ValueError:
            raise Unsupported("DS value is not a number") from None
    texts: list[str] = []
    number = None
    for part in text.split("\\"):
        stripped = part.strip()
        if stripped:
            try:
                value = float(part)
            except ValueError:
                raise Unsupported("DS value is not a number") from None
            if not texts:
                number = value
            texts.append(stripped)
        else:
            texts.append(part)
    return texts, number


def _is(raw: bytes, charset: _Charset, tag: int) -> Values:
    """IS as ``str(IS)`` keeps it; non-integer values (ISfloat) are not handled."""
    parts = raw.decode("latin-1").rstrip(" \x00").split("\\")
    texts: list[str] = []
    number = None
    for part in parts:
        stripped = part.strip()
        if stripped:
            try:
                value = int(part)
            except ValueError:
                raise Unsupported("IS value is not an integer") from None
            if not -(2**53) < value < 2**53:
                raise Unsupported("IS value beyond float precision")
            if not texts:
                number = float(value)
            texts.append(stripped)
        else:
            texts.append(part)
    return (texts, number) if len(texts) > 1 or texts[0] else ([], None)


def _text(raw: bytes, charset: _Charset, tag: int) -> Values:
    """SH, LO, UC: each value right-stripped of NUL and space."""
    parts = [part.rstrip("\0 ") for part in charset.decode(raw).split("\\")]
    return (parts if len(parts) > 1 or parts[0] else []), None


def _single_text(raw: bytes, charset: _Charset, tag: int) -> Values:
    """ST, LT, UT: one value, right-stripped of NUL and space."""
    text = charset.decode(raw).rstrip("\0 ")
    return ([text] if text else []), None


def _pn(raw: bytes, charset: _Charset, tag: int) -> Values:
    text = charset.decode(raw.rstrip(b"\x00 "))
    if "=" in text or not (charset.simple_pn or text.isascii()) or 0x1B in raw:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            value = convert_PN(raw, charset.encodings)
        if isinstance(value, MultiValue):
            return [str(name) for name in value], None
        text = str(value)
        return ([text] if text else []), None
    return _split(text), None


def _at(raw: bytes, charset: _Charset, tag: int) -> Values:
    if len(raw) % 4:
        raise Unsupported("AT length not a multiple of 4")
    words = struct.unpack_from(f"<{len(raw) // 2}H", raw)
    return [tag_string(words[i], words[i + 1]) for i in range(0, len(words), 2)], None


def _number_converter(vr: str) -> Callable[[bytes, _Charset, int], Values]:
    size = struct.calcsize("<" + _NUMBER_FORMATS[vr])
    code = _NUMBER_FORMATS[vr]
    one = struct.Struct("<" + code).unpack

    def convert(raw: bytes, charset: _Charset, tag: int) -> Values:
        length = len(raw)
        if length == size:
            number = one(raw)[0]
            return [str(number)], float(number)
        if length % size:
            raise Unsupported(f"{vr} length {length} not a multiple of {size}")
        numbers = list(struct.unpack(f"<{length // size}{code}", raw))
        if tag in _LUT_DESCRIPTOR_TAGS and numbers[0] < 0:
            numbers[0] += 65536
        return [str(number) for number in numbers], float(numbers[0])

    return convert


_CONVERTERS: dict[str, Callable[[bytes, _Charset, int], Values]] = {
    **{vr: _number_converter(vr) for vr in _NUMBER_FORMATS},
    **{vr: _strings for vr in _DEFAULT_STRING_VRS},
    **{vr: _text for vr in _MULTI_TEXT_VRS},
    **{vr: _single_text for vr in _SINGLE_TEXT_VRS},
    "UI": _ui,
    "DS": _ds,
    "IS": _is,
    "PN": _pn,
    "AE": _ae,
    "UR": _ur,
    "AT": _at,
}
"""VR → values of a non-empty value (raw bytes, the dataset's charset, the tag)."""

_FastInfo = tuple[
    int, str, str, str, str, str, bool, Callable[[bytes, _Charset, int], Values], int,
    "dict[bytes, Values] | None",
]
"""What the short path needs for one element with a value converter (public, or a private
data element in explicit VR), keyed by ``VR bytes as uint16 << 32 | tag bytes as uint32``
in :attr:`_Charset.fast`: (tag, ``(GGGG,EEEE)``, ``GGGGEEEE``, keyword, keyword or tag
text, VR, 4-byte length, converter, private block ``gggg00bb`` (0 when public), memo).
A private element's creator is looked up in each dataset. The memo maps raw values
(≤ :data:`MEMO_MAX_BYTES`) to their converted values; it is dropped (None) once it holds
:data:`MEMO_SIZE` distinct values, so unique values (UIDs, times) cost one failed lookup
per element only until then.
Converted values are shared between rows and must not be mutated."""

_META_FAST: dict[int, _FastInfo] = {}
"""The short-path entries of file meta elements (group 0002 only; see ``_Charset.fast``)."""
MEMO_SIZE = 1024
"""Distinct values memoized per element tag, VR and charset before the memo is dropped."""
MEMO_MAX_BYTES = 64
"""Longer values are converted every time."""


def _fast_info(
    tag: int, tag_text: str, tag8: str, keyword: str, vr: str, long: bool, block: int
) -> _FastInfo:
    return (tag, tag_text, tag8, keyword, keyword or tag_text, vr, long, _CONVERTERS[vr], block, {})


# ---------------------------------------------------------------------- reader

class _Reader:
    """One parse: the buffer, the rows so far and the pixel data found (if any).

    ``implicit``: the datasets after the file meta are implicit VR (the meta is always explicit).
    """

    __slots__ = (
        "buf", "size", "file_size", "rows", "nodes", "appends", "pixel_length", "has_pixels",
        "implicit",
    )

    def __init__(self, buf: bytes, file_size: int, nodes: Nodes | None) -> None:
        self.buf = buf
        self.size = min(len(buf), file_size)
        self.file_size = file_size
        self.rows = ElementRows(nodes)
        self.nodes = self.rows.nodes
        self.appends = tuple(getattr(self.rows, name).append for name in ElementRows.STORED)
        self.has_pixels = False
        self.pixel_length: int | None = None
        self.implicit = False

    def need(self, end: int) -> None:
        """Raise for a read up to byte ``end`` (exclusive) past the buffer."""
        if end > self.file_size:
            raise ReadError("truncated", f"header extends to byte {end}, file has {self.file_size}")
        raise NeedMore(end)

    def pixel_data(self, pos: int, long: bool, length: int) -> None:
        """Record the top-level pixel data element starting at ``pos``.

        ``long``: an explicit VR with its 4-byte length at ``pos + 8`` (else ``length`` is it).
        """
        header = 8
        if long:
            header = 12
            if pos + 12 > self.size:
                self.need(pos + 12)
            length = _U32(self.buf, pos + 8)[0]
        self.has_pixels = True
        if length != _UNDEFINED:
            if pos + header + length > self.file_size:
                raise ReadError(
                    "truncated",
                    f"pixel data of {length} bytes at byte {pos} extends beyond the file "
                    f"({self.file_size} bytes)",
                )
            self.pixel_length = length

    def encapsulated(self, pos: int) -> tuple[int, int]:
        """Items of an undefined-length OB/OW value from ``pos``: (delimiter offset, next offset)."""
        buf = self.buf
        while True:
            if pos + 8 > self.size:
                self.need(pos + 8)
            group, element, length = _ITEM(buf, pos)
            tag = group << 16 | element
            if tag == _SEQ_END:
                if length:
                    raise Unsupported("sequence delimiter with a length")
                return pos, pos + 8
            if tag != _ITEM_TAG:
                raise Unsupported("undefined-length value that is not encapsulated")
            pos += 8 + length

    def sequence(
        self, pos: int, end: int, path: str, kw_path: str, depth: int, charset: _Charset,
        pixel_rep: object = None,
    ) -> tuple[int, int]:
        """Items from ``pos`` to ``end`` (-1: up to the delimiter); (next offset, item count).

        ``pixel_rep``: what its items inherit (see :meth:`dataset`).
        """
        if depth > MAX_DEPTH:
            raise ReadError("too_deep", f"sequences nested more than {MAX_DEPTH} levels deep")
        buf = self.buf
        count = 0
        while True:
            if end >= 0 and pos >= end:
                if pos != end:
                    raise Unsupported("item overruns its sequence")
                return pos, count
            if pos + 8 > self.size:
                self.need(pos + 8)
            group, element, length = _ITEM(buf, pos)
            tag = group << 16 | element
            if tag == _SEQ_END and end < 0:
                return pos + 8, count
            if tag != _ITEM_TAG:
                raise Unsupported(f"unexpected tag {tag:08X} in a sequence")
            start = pos + 8
            if length == _UNDEFINED:
                item_end = -1
            else:
                item_end = start + length
                if end >= 0 and item_end > end:  # before the file's end: pydicom reads what is there
                    raise Unsupported("item overruns its sequence")
                if item_end > self.size:
                    self.need(item_end)
            pos = self.dataset(
                start, item_end, f"{path}__{count}__", f"{kw_path}[{count}].", depth, charset, 2,
                pixel_rep,
            )
            if item_end >= 0 and pos != item_end:
                raise Unsupported("element overruns its item")
            count += 1
            if len(self.rows.node) > MAX_ELEMENTS:
                raise ReadError("too_large", f"more than {MAX_ELEMENTS} elements in one header")

    def dataset(
        self,
        pos: int,
        end: int,
        prefix: str,
        kw_prefix: str,
        depth: int,
        charset: _Charset,
        mode: int,
        pixel_rep: object = None,
    ) -> int:
        """Elements from ``pos``; returns the offset after the dataset (0-based bytes).

        ``mode``: 0 file meta (stops at the first non-0002 group), 1 top-level
        dataset (stops at pixel data or end of file), 2 sequence item (ends at
        ``end``, or at the item delimiter when ``end`` is -1). ``pixel_rep``
        (implicit VR only): the Pixel Representation pydicom gives an item
        without its own: an int, None (none), or :data:`_UNSURE`. Public elements
        with a value converter take the short path (cached per tag and VR, or
        per tag in implicit VR); everything else (meta, private, sequences,
        binary, UN, ambiguous VRs, the character set, pixel data) the general one.
        """
        implicit = self.implicit and mode != 0
        head = _implicit_head if implicit else _HEAD
        buf = self.buf
        size = self.size
        rows = self.rows
        add_node, add_values, add_number = self.appends
        nodes = self.nodes
        # file meta has maps of its own: a dataset element must not take the short path there
        fast = charset.fast if mode else _META_FAST
        # short-path entries with their node ids at this prefix:
        # (node, tag, VR, 4-byte length, converter, private block, memo)
        if mode == 2 and (pos == end or end < 0 and pos + 8 <= size and _TAG_LENGTH(buf, pos) == _EMPTY_ITEM_END):
            return pos if end >= 0 else pos + 8  # an empty item: no cache for its prefix
        here = nodes.item_map((prefix, kw_prefix, charset) if mode else "file meta")
        first_row = len(rows)
        last = -1
        creators: dict[int, str | _Complex] = {}  # private creators of this dataset by block gggg00bb
        # the offset where the dataset ends (0-based bytes; sys.maxsize: at a delimiter)
        limit = self.file_size if mode == 1 else end if end >= 0 else sys.maxsize
        while True:
            if pos >= limit:
                return pos
            if pos + 8 > size:
                if mode == 0 and pos == size == self.file_size:
                    return pos
                self.need(pos + 8)
            tag_le, vr_code, length = head(buf, pos)
            key = vr_code << 32 | tag_le
            entry = here.get(key)
            if entry is None:
                info = fast.get(key)
                if info is not None:
                    tag, tag_text, tag8, keyword, kw_text, vr, long, convert, block, memo = info
                    node = nodes.intern(prefix + tag_text, kw_prefix + kw_text, tag8, keyword, vr, depth)
                    entry = here[key] = (node, tag, vr, long, convert, block, memo)
            if entry is not None:
                node, tag, vr, long, convert, block, memo = entry
                if block:
                    creator = creators.get(block)
                    if creator is _COMPLEX:
                        raise Unsupported("private creator value is not a string")
                    if creator is not None:
                        rows.creator_of[len(rows.node)] = creator
            else:
                group = tag_le & 0xFFFF
                element = tag_le >> 16
                tag = group << 16 | element
                if mode == 0 and group != 2:
                    return pos
                if tag == _ITEM_END:
                    if mode == 2 and end < 0:
                        return pos + 8
                    raise Unsupported("item delimiter outside an undefined-length item")
                if implicit:
                    vr, long = "", False  # found below
                else:
                    vr_info = _VR_NAMES.get(vr_code)
                    if vr_info is None:
                        vr_bytes = vr_code.to_bytes(2, "little")
                        raise Unsupported(f"VR {vr_bytes!r} of {tag:08X} (implicit VR switch?)")
                    vr, long = vr_info
                if mode == 1 and tag in _PIXEL_TAGS:
                    self.pixel_data(pos, long, length)
                    return pos
            if tag <= last:
                raise Unsupported("elements out of order or repeated")
            last = tag
            if long:
                if pos + 12 > size:
                    self.need(pos + 12)
                length = _U32(buf, pos + 8)[0]
                start = pos + 12
            else:
                start = pos + 8

            if entry is not None:  # the short path
                if length == _UNDEFINED:
                    raise Unsupported(f"undefined length {vr}")
                pos = start + length
                if pos > size:
                    self.need(pos)
                if pos > limit:
                    raise Unsupported("element overruns its item")
                values: list[str]
                if not length:
                    values, number = [], None
                elif length > MAX_VALUE_BYTES:
                    rows.too_long(node, start, length)
                    continue
                elif memo is not None and length <= MEMO_MAX_BYTES:
                    raw = buf[start:pos]
                    cached = memo.get(raw)
                    if cached is None:
                        cached = convert(raw, charset, tag)
                        if len(memo) < MEMO_SIZE:
                            memo[raw] = cached
                        else:
                            here[key] = (*entry[:-1], None)
                            fast[key] = (*fast[key][:-1], None)
                    values, number = cached
                else:
                    values, number = convert(buf[start:pos], charset, tag)
                add_node(node)
                add_values(values)
                add_number(number)
                continue

            tag_text, tag8, keyword = _TAG_INFO.get(tag) or _tag_info(tag)
            path = prefix + tag_text
            kw_path = kw_prefix + (keyword or tag_text)
            private = group & 1
            if implicit and not private and length != _UNDEFINED:
                vr = _public_vr(tag)
            if vr in _CONVERTERS and group != 0xFFFE and tag != _CHARSET_TAG and tag not in _PIXEL_TAGS:
                if not private:
                    fast[key] = _fast_info(tag, tag_text, tag8, keyword, vr, long, 0)
                elif element > 0xFF and not implicit:
                    fast[key] = _fast_info(tag, tag_text, tag8, keyword, vr, long, group << 16 | element >> 8)
            creator = None
            if private and element > 0xFF:
                found = creators.get(group << 16 | element >> 8)
                if found is _COMPLEX:
                    raise Unsupported("private creator value is not a string")
                creator = found
            elif private and (group << 16 | element >> 8) != tag and (group << 16) in creators:
                raise Unsupported("private tag below 0x100 with a group length present")

            if implicit:
                if length == _UNDEFINED:
                    vr = self.undefined_length_vr(tag, start)
                elif private:
                    vr = self.private_vr(tag, element, creator)
                elif " or " in vr:
                    vr = self.ambiguous_vr(tag, depth, first_row, pixel_rep)
            elif vr == "UN" and length != _UNDEFINED:
                vr = self.un_vr(tag, element, private, creator, length)
            add = rows.add

            if length == _UNDEFINED:
                if vr == "SQ" or vr == "UN":
                    index = len(rows)
                    add(path, kw_path, tag8, keyword, "SQ", 0, depth, None, [], 0.0, None)
                    pos, count = self.sequence(start, -1, path, kw_path, depth + 1, charset)
                    rows.vm_of[index] = count
                    rows.value_number[index] = float(count)
                    continue
                if vr != "OB" and vr != "OW":
                    raise Unsupported(f"undefined length {vr}")
                value_end, pos = self.encapsulated(start)
                n = value_end - start
                if n > MAX_VALUE_BYTES:
                    rows.offset_of[len(rows)] = start
                add(path, kw_path, tag8, keyword, vr, 1 if n else 0, depth, creator,
                    [buf[start:value_end].hex()] if 0 < n <= MAX_STORED_BYTES else [], None, n)
                continue

            value_end = start + length
            if value_end > size:
                self.need(value_end)
            if value_end > limit:
                raise Unsupported("element overruns its item")
            pos = value_end

            if vr == "SQ":
                index = len(rows)
                add(path, kw_path, tag8, keyword, vr, 0, depth, creator, [], 0.0, None)
                if length:
                    inherited = None
                    if implicit:
                        inherited = self.pixel_representation(tag, depth, first_row, pixel_rep)
                    _, count = self.sequence(
                        start, value_end, path, kw_path, depth + 1, charset, inherited
                    )
                    rows.vm_of[index] = count
                    rows.value_number[index] = float(count)
                continue
            if length == 0:
                add(path, kw_path, tag8, keyword, vr, 0, depth, creator, [], None, None)
                if private and element <= 0xFF:
                    creators[tag] = "" if vr in _CREATOR_VRS else _COMPLEX
                elif tag == _CHARSET_TAG:
                    charset = self.new_charset(vr, [], charset, rows.vr[first_row:])
                    fast = charset.fast
                    here = nodes.item_map((prefix, kw_prefix, charset))
                continue
            if vr in _BINARY_VRS or length > MAX_VALUE_BYTES:
                if length > MAX_VALUE_BYTES:
                    rows.offset_of[len(rows)] = start
                add(path, kw_path, tag8, keyword, vr, 1, depth, creator,
                    [buf[start:value_end].hex()] if length <= MAX_STORED_BYTES else [], None, length)
                if private and element <= 0xFF:
                    creators[tag] = _COMPLEX
                continue

            converter = _CONVERTERS.get(vr)
            if converter is None:
                raise Unsupported(f"VR {vr}")
            values, number = converter(buf[start:value_end], charset, tag)
            add(path, kw_path, tag8, keyword, vr, len(values), depth, creator, values, number, None)
            if private and element <= 0xFF:
                simple = vr in _CREATOR_VRS and len(values) <= 1
                creators[tag] = (values[0] if values else "") if simple else _COMPLEX
            elif tag == _CHARSET_TAG:
                charset = self.new_charset(vr, values, charset, rows.vr[first_row:])
                fast = charset.fast
                here = nodes.item_map((prefix, kw_prefix, charset))

    def undefined_length_vr(self, tag: int, start: int) -> str:
        """SQ for an implicit undefined-length element whose value starts at ``start``,
        as pydicom's reader decides (dictionary VR, else an item tag first); raises otherwise."""
        vr = _undefined_length_vr(tag)
        if vr is None:
            if start + 4 > self.size:
                self.need(start + 4)
            if _U32(self.buf, start)[0] == _ITEM_TAG_LE:
                return "SQ"
        if vr != "SQ":
            raise Unsupported(f"implicit undefined length {vr or 'value'} of {tag:08X}")
        return vr

    @staticmethod
    def private_vr(tag: int, element: int, creator: object) -> str:
        """The VR pydicom gives a defined-length private element of an implicit VR dataset."""
        if 0x10 <= element <= 0xFF:
            return "LO"
        if element > 0xFF and creator:
            try:
                vr = private_dictionary_VR(tag, str(creator))
            except KeyError:
                return "UN"
            if vr not in _KNOWN_VRS:
                raise Unsupported(f"private VR {vr} of {tag:08X}")
            return vr
        return "UN"

    def ambiguous_vr(self, tag: int, depth: int, first_row: int, pixel_rep: object) -> str:
        """The VR pydicom corrects an ambiguous one to, for an element of the implicit VR
        dataset at ``depth`` whose rows start at ``first_row``; raises where unsure.

        Overlay data is OW; 'US or SS' is US or SS by :meth:`pixel_representation`
        (0 when there is none); LUT Data is US after a LUT Descriptor whose first
        value is 1, else OW.
        """
        if tag in _OVERLAY_DATA_TAGS:
            return "OW"
        if tag == _LUT_DATA:
            index = self.find(_LUT_DESCRIPTOR, depth, first_row)
            if index is None or len(self.rows.values[index]) != 3:
                raise Unsupported("LUT Data without a three-valued LUT Descriptor")
            return "US" if self.rows.values[index][0] == "1" else "OW"
        if tag not in _AMBIGUOUS_US_SS_TAGS:
            raise Unsupported(f"ambiguous VR of {tag:08X}")
        representation = self.pixel_representation(tag, depth, first_row, pixel_rep)
        if representation is _UNSURE:
            raise Unsupported("'US or SS' with an unsure Pixel Representation")
        if not representation:
            return "US"
        if tag in _LUT_DESCRIPTOR_TAGS:
            raise Unsupported("signed LUT descriptor (pydicom keeps its first value)")
        return "SS"

    def pixel_representation(
        self, tag: int, depth: int, first_row: int, pixel_rep: object
    ) -> object:
        """The Pixel Representation pydicom uses for element ``tag`` (a 'US or SS' one, or a
        defined-length sequence whose items inherit it) of the dataset at ``depth``:
        its own when read before ``tag`` (:data:`_UNSURE` unless one value), else
        the inherited ``pixel_rep`` when ``tag`` follows its place, else :data:`_UNSURE`.

        pydicom passes it down to the items of defined-length sequences only (read
        later than the dataset holding them); items of undefined-length ones inherit None.
        """
        if tag < _PIXEL_REPRESENTATION:
            return _UNSURE
        index = self.find(_PIXEL_REPRESENTATION8, depth, first_row)
        if index is None:
            return pixel_rep
        values = self.rows.values[index]
        return int(values[0]) if len(values) == 1 else _UNSURE

    def find(self, tag8: str, depth: int, first_row: int) -> int | None:
        """The row of element ``tag8`` (``GGGGEEEE``) among the rows of the dataset at
        ``depth`` whose rows start at ``first_row`` (0-based); None when absent."""
        rows, nodes = self.rows, self.nodes
        node_tag, node_depth = nodes.tag, nodes.depth
        for index in range(len(rows) - 1, first_row - 1, -1):
            node = rows.node[index]
            if node_depth[node] == depth and node_tag[node] <= tag8:
                return index if node_tag[node] == tag8 else None
        return None

    def un_vr(self, tag: int, element: int, private: int, creator: object, length: int) -> str:
        """The VR pydicom gives an explicit defined-length UN element (it looks known tags up)."""
        if private:
            if 0x10 <= element <= 0xFF:
                return "LO"
            if element > 0xFF and creator:
                try:
                    return _redispatch(private_dictionary_VR(tag, str(creator)))
                except KeyError:
                    return "UN"
            return "UN"
        if length < 0xFFFF:
            try:
                return _redispatch(dictionary_VR(tag))
            except KeyError:
                return "UN"
        return "UN"

    @staticmethod
    def new_charset(vr: str, values: list[str], current: _Charset, before: list[str]) -> _Charset:
        """The charset (0008,0005) sets for the rest of its dataset and nested items.

        ``before``: VRs of the rows read before it in its dataset (nested rows
        included). Text or a sequence among them was decoded (by pydicom) with
        either charset; that is only fine when both decode alike.
        """
        if vr != "CS":
            raise Unsupported("Specific Character Set with a VR other than CS")
        charset = _charset(tuple(values) if values else ("",))
        if charset.key != current.key and any(v in _CHARSET_VRS for v in before):
            raise Unsupported("text or sequence before a Specific Character Set that changes it")
        return charset


def _transfer_syntax(rows: ElementRows) -> str | None:
    for tag8, values in zip(rows.tag, rows.values, strict=True):
        if tag8 == "00020010":
            if len(values) != 1:
                raise Unsupported("Transfer Syntax UID without exactly one value")
            return values[0]
    return None


def parse(buf: bytes, file_size: int, nodes: Nodes | None = None) -> Header:
    """Header rows of a DICOM file from its first ``len(buf)`` bytes (``file_size`` in bytes).

    ``nodes``: the node table the rows share (a new one when None).

    Raises:
        NeedMore: the header runs past ``buf`` and the file is longer than ``buf``.
        ReadError: ``truncated`` when an element (or the defined-length pixel data)
            extends beyond ``file_size``.
        Unsupported: anything this reader does not reproduce exactly (no 'DICM'
            prefix, big endian or deflated transfer syntaxes, ...).
    """
    reader = _Reader(buf, file_size, nodes)
    if reader.size < 132:
        if len(buf) < file_size:
            raise NeedMore(132)
        raise Unsupported("shorter than preamble and prefix")
    if buf[128:132] != b"DICM":
        raise Unsupported("no DICM prefix")
    pos = reader.dataset(132, -1, "", "", 0, _DEFAULT_CHARSET, 0)
    if pos == 132:
        raise Unsupported("no file meta")
    if pos >= file_size:
        return Header(rows=reader.rows, reader="fast")
    syntax = _transfer_syntax(reader.rows)
    if syntax is None or syntax in _UNSUPPORTED_SYNTAXES:
        raise Unsupported(f"transfer syntax {syntax}")
    if syntax in pydicom.uid.PrivateTransferSyntaxes:
        raise Unsupported("private transfer syntax")
    if pos + 8 > reader.size:
        reader.need(pos + 8)
    if buf[pos] | buf[pos + 1] << 8 == 0:
        raise Unsupported("command set elements")
    if syntax == pydicom.uid.ImplicitVRLittleEndian:
        if 0x40 < buf[pos + 4] < 0x5B and 0x40 < buf[pos + 5] < 0x5B:
            raise Unsupported("explicit VR dataset under an implicit VR transfer syntax")
        reader.implicit = True
    reader.dataset(pos, -1, "", "", 0, _DEFAULT_CHARSET, 1)
    return Header(
        rows=reader.rows,
        has_pixel_data=reader.has_pixels,
        pixel_data_length=reader.pixel_length,
        reader="fast",
    )


__all__ = ["parse"]
