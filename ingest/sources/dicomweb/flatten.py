"""DICOM JSON (PS3.18 F.2, as WADO-RS ``/metadata`` returns it) → the file ingestor's rows. Pure.

One instance's JSON object becomes a :class:`~ingest.dicom.header.Header` whose rows
follow the conventions of :mod:`ingest.dicom.flatten` (the reference): the same tag
paths, keyword paths, VRs, depths, private creators, values as text, ``value_number``,
``value_length``. It does not go through ``pydicom.Dataset.from_json`` (much
slower). Where DICOM JSON cannot carry what a file holds, rows differ; docs/tables.md
lists each difference and why. In short:

* no file meta (group 0002) and no group lengths: DICOM JSON has neither;
* DS, IS, FL, FD arrive as JSON numbers: ``"5.000000"`` in a file is ``5`` here
  (``value_number`` is the same double; the text in ``values`` may differ);
* binary values (OB, OW, UN, …) arrive as ``InlineBinary`` (base64, decoded here) or as a
  ``BulkDataURI``: the caller fetches the small ones beforehand and passes them in
  ``bulk``; a value not fetched keeps its URI as its one value and its length when known;
* top-level Pixel Data and every element after it are not rows, as a file's reader stops
  there; whether the JSON had Pixel Data is ``has_pixel_data``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import DicomDictionary

from ingest.dicom.flatten import (
    MAX_DEPTH,
    MAX_ELEMENTS,
    MAX_STORED_BYTES,
    NUMERIC_VRS,
    ElementRows,
    Nodes,
    first_number,
    tag_string,
)
from ingest.dicom.header import Header, ReadError

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})
SINGLE_TEXT_VRS = frozenset({"ST", "LT", "UT"})
"""One value in a file (a backslash is text); some servers split them at backslashes anyway."""
INTEGER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV"})
FLOAT_VRS = frozenset({"FL", "FD"})
PIXEL_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})


@dataclass(frozen=True)
class BulkValue:
    """What fetching a BulkDataURI gave: the bytes when at most the fetch limit, else
    only their length (None: not fetched, length unknown)."""

    data: bytes | None
    length: int | None


_TAG_INFO: dict[str, tuple[int, str, str, str]] = {}
"""JSON tag key → (tag as int, ``(GGGG,EEEE)``, ``GGGGEEEE``, keyword or '')."""


def _tag_info(key: str) -> tuple[int, str, str, str]:
    info = _TAG_INFO.get(key)
    if info is None:
        if len(key) != 8:
            raise ValueError(key)
        tag = int(key, 16)
        entry = DicomDictionary.get(tag)
        info = (tag, tag_string(tag >> 16, tag & 0xFFFF), f"{tag:08X}", entry[4] if entry else "")
        _TAG_INFO[key] = info
    return info


def _person_name(value: Any) -> str:
    """A PN value object as the file's text: ``Alphabetic=Ideographic=Phonetic``, trailing
    empty groups dropped."""
    if not isinstance(value, dict):
        return "" if value is None else str(value)
    groups = [(value.get(group) or "").rstrip("\0 ") for group in ("Alphabetic", "Ideographic", "Phonetic")]
    while groups and not groups[-1]:
        groups.pop()
    return "=".join(groups)


def _number_text(vr: str, value: Any) -> str:
    """A JSON number as the file's text would be where it can be: FL/FD as Python prints a
    float (``0`` → ``0.0``), integers as integers; DS/IS as the JSON gave them."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if vr in FLOAT_VRS:
        return str(float(value))
    if vr in INTEGER_VRS or vr == "IS":
        return str(int(value)) if float(value).is_integer() else str(value)
    return str(value)


def _at_text(value: Any) -> str:
    text = str(value)
    if len(text) == 8:
        return tag_string(int(text[:4], 16), int(text[4:], 16))
    return text


_NUMBER_TEXT_VRS = INTEGER_VRS | FLOAT_VRS | {"DS", "IS"}
_SPECIAL_VRS = _NUMBER_TEXT_VRS | {"PN", "AT"}


def _texts(vr: str, raw: list[Any]) -> list[str]:
    """The ``Value`` array of a non-sequence, non-binary element as the file's ``values``."""
    if len(raw) == 1 and vr not in _SPECIAL_VRS and type(raw[0]) is str:  # most elements: one string
        text = raw[0].rstrip("\0 ")
        return [text] if text else []
    if vr == "PN":
        values = [_person_name(v) for v in raw]
    elif vr == "AT":
        values = ["" if v is None else _at_text(v) for v in raw]
    elif vr in _NUMBER_TEXT_VRS:
        values = [_number_text(vr, v) for v in raw]
    else:
        values = ["" if v is None else str(v).rstrip("\0 ") for v in raw]
        if vr in SINGLE_TEXT_VRS and len(values) > 1:
            values = ["\\".join(values)]
    if len(values) == 1 and not values[0]:
        return []
    return values


class _Flattener:
    """Walks one instance's DICOM JSON into :class:`ElementRows`."""

    def __init__(self, rows: ElementRows, bulk: Mapping[str, BulkValue]) -> None:
        self.rows = rows
        self.bulk = bulk
        self.has_pixel_data = False

    def walk(self, dataset: dict[str, Any], prefix: str, kw_prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ReadError("too_deep", f"sequences nested more than {MAX_DEPTH} levels deep")
        if len(self.rows) > MAX_ELEMENTS:
            raise ReadError("too_large", f"more than {MAX_ELEMENTS} elements in one header")
        rows = self.rows
        places = rows.nodes.item_map(("dicomweb", prefix))  # tag → (vr, node, tag path, keyword path)
        for key in sorted(dataset):  # (PS3.18 F.2: keys are uppercase hex, so this is tag order)
            tag, tag_text, tag8, keyword = _tag_info(key)
            if depth == 0 and tag >= 0x7FE00008:
                # a file's reader stops at the pixel data: what follows (padding) is no row either
                self.has_pixel_data = self.has_pixel_data or tag in PIXEL_TAGS
                continue
            if not tag & 0xFFFF or tag >> 16 == 0x0002:
                continue  # group lengths and file meta: not in DICOM JSON by the standard; dropped if sent
            element = dataset[key]
            if not isinstance(element, dict):
                raise ReadError("invalid", f"element {tag_text} is not a DICOM JSON object")
            vr = str(element.get("vr") or "UN")
            place = places.get(tag)
            if place is None or place[0] != vr:
                path, kw_path = prefix + tag_text, kw_prefix + (keyword or tag_text)
                place = places[tag] = (vr, rows.nodes.intern(path, kw_path, tag8, keyword, vr, depth), path, kw_path)
            node = place[1]
            creator = self.creator(dataset, tag) if tag >> 16 & 1 else None
            if vr == "SQ":
                items = element.get("Value") or []
                rows.add_row(node, len(items), creator, [], float(len(items)), None)
                for index, item in enumerate(items):
                    self.walk(item or {}, f"{place[2]}__{index}__", f"{place[3]}[{index}].", depth + 1)
                continue
            if vr in BINARY_VRS and "Value" not in element:
                values, length = self.binary(element)
                rows.add_row(node, 1 if values or length else 0, creator, values, None, length)
                continue
            values = _texts(vr, element.get("Value") or [])
            number = first_number(vr, values) if vr in NUMERIC_VRS else None
            rows.add_row(node, len(values), creator, values, number, None)

    @staticmethod
    def creator(dataset: dict[str, Any], tag: int) -> str | None:
        """The private creator of an odd-group element, as pydicom sets it (None for the creator itself)."""
        block = tag >> 16 << 16 | (tag & 0xFFFF) >> 8
        if block == tag:
            return None
        element = dataset.get(f"{block:08X}") or dataset.get(f"{block:08x}")
        if not isinstance(element, dict):
            return None
        values = element.get("Value") or []
        return "\\".join("" if v is None else str(v) for v in values)

    def binary(self, element: dict[str, Any]) -> tuple[list[str], int | None]:
        """``values`` and ``value_length`` of a binary element: its hex up to
        :data:`MAX_STORED_BYTES` bytes, as a file's; the BulkDataURI when not fetched."""
        if "InlineBinary" in element:
            try:
                data = base64.b64decode(element["InlineBinary"], validate=False)
            except (binascii.Error, ValueError):
                raise ReadError("invalid", "an InlineBinary value is not base64") from None
            return ([data.hex()] if 0 < len(data) <= MAX_STORED_BYTES else []), len(data)
        uri = element.get("BulkDataURI")
        if not uri:
            return [], 0
        fetched = self.bulk.get(uri)
        if fetched is None or fetched.data is None:
            return [uri], None if fetched is None else fetched.length
        data = fetched.data
        return ([data.hex()] if 0 < len(data) <= MAX_STORED_BYTES else []), len(data)


def bulk_uris(instance: dict[str, Any], *, depth: int = 0) -> list[str]:
    """Every BulkDataURI of an instance's JSON, at every depth, but the top-level pixel data's
    (never read) and what follows it."""
    found: list[str] = []
    for key, element in instance.items():
        if not isinstance(element, dict):
            continue
        if depth == 0 and int(key, 16) >= 0x7FE00008:
            continue
        if element.get("vr") == "SQ":
            for item in element.get("Value") or []:
                if isinstance(item, dict):
                    found += bulk_uris(item, depth=depth + 1)
        elif uri := element.get("BulkDataURI"):
            found.append(uri)
    return found


def flatten_instance(
    instance: dict[str, Any], nodes: Nodes | None = None, bulk: Mapping[str, BulkValue] | None = None
) -> Header:
    """One instance's DICOM JSON as a :class:`Header` of the file ingestor's rows.

    ``nodes``: the node table to share (a new one when None). ``bulk``: fetched
    BulkDataURIs (see :func:`bulk_uris`); a URI missing there keeps its URI as its value.
    ``size`` is None (a server gives no file size); ``pixel_data_length`` is None.

    Raises:
        ReadError: not a JSON object, an element that is not one, too deep or too large.
    """
    if not isinstance(instance, dict):
        raise ReadError("invalid", "an instance's metadata is not a DICOM JSON object")
    flattener = _Flattener(ElementRows(nodes), bulk or {})
    try:
        flattener.walk(instance, "", "", 0)
    except ValueError:
        raise ReadError("invalid", "a tag is not 8 hex digits") from None
    if len(flattener.rows) == 0:
        raise ReadError("not_dicom", "no DICOM elements found")
    return Header(flattener.rows, has_pixel_data=flattener.has_pixel_data, reader="dicomweb")


__all__ = ["BulkValue", "bulk_uris", "flatten_instance"]
