"""Pure flattening of a pydicom Dataset into element rows and one instance row.

This is the reference: whatever faster reader produces element rows must
produce exactly these (the tests compare them over the whole pydicom corpus).

Conventions (the contract of ``raw.dicom_elements``, docs/tables.md):

* ``tag_path`` is deid's ``get_identifiers`` key: ``(0010,0010)`` at the top,
  ``(0012,0064)__0__(0008,0100)`` inside item 0 (0-based) of a sequence.
* ``keyword_path`` is ``DeidentificationMethodCodeSequence[0].CodeValue``;
  an element without a keyword (private, unknown) appears as its tag, ``(0013,1010)``.
* File meta elements (group 0002) come first, at depth 0.
* ``values`` holds each value as text: strings as pydicom decodes them with the
  dataset's Specific Character Set (undecodable bytes replaced), numbers as
  Python prints them. ``value_text`` joins them with ``\\`` (null when there
  are none). Binary values (OB, OW, UN, …) are stored as lowercase hex only
  up to :data:`MAX_STORED_BYTES` bytes; ``value_length`` always has their size.
- A value of any VR longer than :data:`MAX_VALUE_BYTES` (a 300 MB UT, a 2 GB private OB)
  is never read: its row keeps ``value_length`` and ``value_offset`` (where its bytes start
  in the source, 0-based), no values.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Hashable, Iterator
from itertools import compress
from typing import Any

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from ingest.dicom.schema import INSTANCE_ATTRIBUTES

MAX_STORED_BYTES = 64
"""Binary values up to this many bytes are kept (as hex text); larger ones only by length."""

MAX_VALUE_BYTES = 1 << 20
"""Values longer than this many bytes (any VR but SQ) are not read: their row keeps the value's
length and offset. A reader's memory is then bounded by the headers' structure, not their values."""

NUMERIC_VRS = frozenset({"DS", "IS", "US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"})


_ATTRIBUTES = {keyword: (column, kind) for column, keyword, kind in INSTANCE_ATTRIBUTES}
"""keyword → (instance column, kind)."""


class Nodes:
    """Where element rows sit, each distinct place once: a node id (0-based) per
    (tag_path, keyword_path, tag, keyword, vr, depth).

    Rows hold a node id instead of these six texts: a batch's files share them,
    so they are stored (and converted to Arrow) once per batch, not per row.
    One table serves every instance of a batch; its size is bounded by the
    batch's distinct tag paths.
    """

    COLUMNS = ("tag_path", "keyword_path", "tag", "keyword", "vr", "depth")

    __slots__ = (*COLUMNS, "attribute", "_ids", "_item_maps")

    def __init__(self) -> None:
        self.tag_path: list[str] = []
        self.keyword_path: list[str] = []
        self.tag: list[str] = []
        self.keyword: list[str] = []
        self.vr: list[str] = []
        self.depth: list[int] = []
        self.attribute: list[tuple[str, str] | None] = []
        """(instance column, kind) of a top-level node whose keyword is in ``INSTANCE_ATTRIBUTES``."""
        self._ids: dict[tuple[str, str, str, str, str, int], int] = {}
        self._item_maps: dict[Hashable, dict[int, Any]] = {}

    def __len__(self) -> int:
        return len(self.tag_path)

    def intern(self, tag_path: str, keyword_path: str, tag: str, keyword: str, vr: str, depth: int) -> int:
        """The node id of this place, added if new."""
        key = (tag_path, keyword_path, tag, keyword, vr, depth)
        node = self._ids.get(key)
        if node is None:
            node = self._ids[key] = len(self.tag_path)
            self.tag_path.append(tag_path)
            self.keyword_path.append(keyword_path)
            self.tag.append(tag)
            self.keyword.append(keyword)
            self.vr.append(vr)
            self.depth.append(depth)
            self.attribute.append(None if depth else _ATTRIBUTES.get(keyword))
        return node

    def item_map(self, key: Hashable) -> dict[int, Any]:
        """A reader's own cache for the elements of one kind of dataset, e.g. the datasets
        at one tag path prefix (what it keys and holds is the reader's business)."""
        found = self._item_maps.get(key)
        if found is None:
            found = self._item_maps[key] = {}
        return found


def _node_column(name: str) -> property:
    def column(self: ElementRows) -> list[Any]:
        values = getattr(self.nodes, name)
        return [values[node] for node in self.node]

    column.__doc__ = f"``{name}`` of every row (a new list)."
    return property(column)


class ElementRows:
    """Element rows of one instance, column by column (0-based ``depth``).

    Each row stores its node (see :class:`Nodes`: tag path, keyword path, tag,
    keyword, VR, depth), its ``values`` and ``value_number``. The rare columns
    are sparse: ``vm`` is ``len(values)`` unless :attr:`vm_of` says otherwise
    (sequences, large binary values), ``private_creator``, ``value_length`` and
    ``value_offset`` are None unless :attr:`creator_of` / :attr:`length_of` /
    :attr:`offset_of` hold them (row index 0-based). The full columns and ``value_text`` (``\\``-joined values, None
    when there are none) are derived on access, here for tests and by Arrow
    for the lake.
    """

    COLUMNS = (
        "tag_path", "keyword_path", "tag", "keyword", "vr", "vm", "depth",
        "private_creator", "value_text", "values", "value_number", "value_length", "value_offset",
    )
    STORED = ("node", "values", "value_number")
    """The columns held as lists, one item per row."""
    SPARSE = {"vm": "vm_of", "private_creator": "creator_of", "value_length": "length_of",
              "value_offset": "offset_of"}
    """Sparse column → the dict of its exceptions (row index → value)."""

    __slots__ = (*STORED, *SPARSE.values(), "nodes")

    def __init__(self, nodes: Nodes | None = None) -> None:
        self.nodes = Nodes() if nodes is None else nodes
        self.node: list[int] = []
        self.values: list[list[str]] = []
        self.value_number: list[float | None] = []
        self.vm_of: dict[int, int] = {}
        self.creator_of: dict[int, str] = {}
        self.length_of: dict[int, int] = {}
        self.offset_of: dict[int, int] = {}
        """Row index → byte offset (0-based, in the source) of a value too long to read."""

    def __len__(self) -> int:
        return len(self.node)

    tag_path = _node_column("tag_path")
    keyword_path = _node_column("keyword_path")
    tag = _node_column("tag")
    keyword = _node_column("keyword")
    vr = _node_column("vr")
    depth = _node_column("depth")

    @property
    def vm(self) -> list[int]:
        vm_of = self.vm_of
        return [vm_of.get(index, len(values)) for index, values in enumerate(self.values)]

    @property
    def private_creator(self) -> list[str | None]:
        return [self.creator_of.get(index) for index in range(len(self))]

    @property
    def value_length(self) -> list[int | None]:
        return [self.length_of.get(index) for index in range(len(self))]

    @property
    def value_offset(self) -> list[int | None]:
        return [self.offset_of.get(index) for index in range(len(self))]

    @property
    def value_text(self) -> list[str | None]:
        return ["\\".join(values) if values else None for values in self.values]

    def add(
        self,
        tag_path: str,
        keyword_path: str,
        tag: str,
        keyword: str,
        vr: str,
        vm: int,
        depth: int,
        private_creator: str | None,
        values: list[str],
        value_number: float | None,
        value_length: int | None,
    ) -> None:
        """Append one row given its place as texts."""
        self.add_row(
            self.nodes.intern(tag_path, keyword_path, tag, keyword, vr, depth),
            vm, private_creator, values, value_number, value_length,
        )

    def add_row(
        self,
        node: int,
        vm: int,
        private_creator: str | None,
        values: list[str],
        value_number: float | None,
        value_length: int | None,
    ) -> None:
        """Append one row at a node of :attr:`nodes`."""
        index = len(self.node)
        self.node.append(node)
        self.values.append(values)
        self.value_number.append(value_number)
        if vm != len(values):
            self.vm_of[index] = vm
        if private_creator is not None:
            self.creator_of[index] = private_creator
        if value_length is not None:
            self.length_of[index] = value_length

    def too_long(self, node: int, offset: int, length: int) -> None:
        """Append the row of a value longer than :data:`MAX_VALUE_BYTES`, not read: its length and
        ``offset`` (bytes, 0-based in the source), no values."""
        self.offset_of[len(self.node)] = offset
        self.add_row(node, 1, None, [], None, length)

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows as dicts (for tests and small outputs)."""
        columns = [getattr(self, name) for name in self.COLUMNS]
        for values in zip(*columns, strict=True):
            yield dict(zip(self.COLUMNS, values, strict=True))


def tag_string(group: int, element: int) -> str:
    """``(GGGG,EEEE)`` in uppercase hex, as deid and pydicom 3 print tags."""
    return f"({group:04X},{element:04X})"


def first_number(vr: str, values: list[str]) -> float | None:
    """The first value as a double for numeric VRs; None if absent or not a number."""
    if vr not in NUMERIC_VRS or not values:
        return None
    try:
        return float(values[0])
    except ValueError:
        return None


def _value_texts(value: Any) -> list[str]:
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list | tuple):
        return ["" if v is None else str(v) for v in value]
    return [str(value)]


def _binary(value: bytes) -> tuple[list[str], int]:
    return ([value.hex()] if 0 < len(value) <= MAX_STORED_BYTES else []), len(value)


def _creator_text(creator: object) -> str | None:
    """A private creator as text: a multi-valued one (invalid, but seen) joined with backslashes."""
    if creator is None or isinstance(creator, str):
        return creator
    if isinstance(creator, bytes | bytearray):
        return bytes(creator).decode("latin-1").rstrip("\0 ")
    try:
        return "\\".join(map(str, creator))  # type: ignore[call-overload]
    except TypeError:
        return str(creator)


def _element_row(
    rows: ElementRows, elem: DataElement, path: str, kw_path: str, depth: int
) -> None:
    vr = elem.VR
    value = elem.value
    length: int | None = None
    number: float | None
    if vr == "SQ":
        values: list[str] = []
        number = float(len(value))
        vm = len(value)
    else:
        if isinstance(value, bytes | bytearray):
            values, length = _binary(bytes(value))
        else:
            values = _value_texts(value)
        number = first_number(vr, values)
        vm = len(values) if length is None else int(length > 0)
    rows.add(
        path,
        kw_path,
        f"{elem.tag.group:04X}{elem.tag.element:04X}",
        elem.keyword or "",
        vr,
        vm,
        depth,
        _creator_text(elem.private_creator) if elem.tag.is_private else None,
        values,
        number,
        length,
    )


MAX_DEPTH = 128
"""Sequences nested deeper than this are not read (``too_deep``): real headers nest a few
levels; a file nesting hundreds is broken or hostile, and would exhaust the stack."""


def _deferred(rows: ElementRows, dataset: Dataset, tag: BaseTag, prefix: str, kw_prefix: str, depth: int) -> bool:
    """Add the row of a value pydicom did not read (read with ``defer_size=MAX_VALUE_BYTES``) unless
    it is a sequence (whose items are read); whether a row was added."""
    raw = dataset._dict[tag]
    if not isinstance(raw, RawDataElement) or raw.value is not None or raw.length <= MAX_VALUE_BYTES:
        return False
    empty = convert_raw_data_element(raw._replace(value=b"", length=0), ds=dataset)
    if empty.VR == "SQ":
        return False
    creator = None
    if tag.is_private and tag.element > 0xFF:
        found = dataset.get(BaseTag(tag.group << 16 | tag.element >> 8))
        creator = _creator_text(found.value if found is not None else None)
    tag_text = tag_string(tag.group, tag.element)
    rows.offset_of[len(rows)] = raw.value_tell
    rows.add(prefix + tag_text, kw_prefix + (empty.keyword or tag_text), f"{tag:08X}", empty.keyword or "",
             empty.VR, 1, depth, creator, [], None, raw.length)
    return True


MAX_ELEMENTS = 2_000_000
"""Headers with more elements than this (sequence items included) are not read (``too_large``):
a worker holds one header's rows at once, and a few bytes of items can make millions of them."""


def _read_error(error_type: str, message: str) -> Exception:
    from ingest.dicom.header import ReadError  # noqa: PLC0415 - header imports this module

    return ReadError(error_type, message)


def _walk(dataset: Dataset, rows: ElementRows, prefix: str, kw_prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise _read_error("too_deep", f"sequences nested more than {MAX_DEPTH} levels deep")
    if len(rows) > MAX_ELEMENTS:
        raise _read_error("too_large", f"more than {MAX_ELEMENTS} elements in one header")
    for tag in sorted(dataset.keys()):
        if _deferred(rows, dataset, tag, prefix, kw_prefix, depth):
            continue
        try:
            elem = dataset[tag]
        except Exception:  # noqa: BLE001 - a value pydicom cannot convert is kept raw
            raw = dataset.get_item(tag)
            values, length = _binary(raw.value or b"")
            tag_text = tag_string(tag.group, tag.element)
            rows.add(prefix + tag_text, kw_prefix + tag_text, f"{tag:08X}", "", raw.VR or "UN",
                     int(length > 0), depth, None, values, None, length)
            continue
        tag_text = tag_string(tag.group, tag.element)
        path = prefix + tag_text
        kw_path = kw_prefix + (elem.keyword or tag_text)
        _element_row(rows, elem, path, kw_path, depth)
        if elem.VR == "SQ":
            for index, item in enumerate(elem.value):
                _walk(item, rows, f"{path}__{index}__", f"{kw_path}[{index}].", depth + 1)


def flatten_dataset(ds: Dataset, nodes: Nodes | None = None) -> ElementRows:
    """Every element of ``ds`` and its file meta, sequences expanded, in tag order.

    ``nodes``: the node table to share (a new one when None).
    Edge cases: a dataset without file meta simply has no group-0002 rows; an
    element pydicom cannot convert is kept with its raw bytes (as binary).
    """
    rows = ElementRows(nodes)
    meta = getattr(ds, "file_meta", None)
    if meta is not None:
        _walk(meta, rows, "", "", 0)
    _walk(ds, rows, "", "", 0)
    return rows


# ---------------------------------------------------------------- instance row

def parse_date(text: str | None) -> dt.date | None:
    """DA ``YYYYMMDD`` (or ACR-NEMA ``YYYY.MM.DD``) → date; None when invalid."""
    if not text:
        return None
    digits = text.strip().replace(".", "")
    if len(digits) != 8 or not digits.isdigit():
        return None
    try:
        return dt.date(int(digits[:4]), int(digits[4:6]), int(digits[6:8]))
    except ValueError:
        return None


def parse_time(text: str | None) -> dt.time | None:
    """TM ``HH[MM[SS[.FFFFFF]]]`` (or ``HH:MM:SS``) → time; None when invalid."""
    if not text:
        return None
    text = text.strip().replace(":", "")
    whole, _, fraction = text.partition(".")
    if not whole.isdigit() or len(whole) not in (2, 4, 6) or (fraction and not fraction.isdigit()):
        return None
    try:
        return dt.time(
            int(whole[0:2]),
            int(whole[2:4] or 0),
            min(int(whole[4:6] or 0), 59),  # 60 is a leap second in DICOM
            int((fraction + "000000")[:6]) if fraction else 0,
        )
    except ValueError:
        return None


def parse_datetime(text: str | None) -> dt.datetime | None:
    """DT ``YYYYMMDDHHMMSS.FFFFFF[&ZZXX]`` → naive datetime (offset dropped); None when invalid."""
    if not text:
        return None
    text = text.strip()
    for sign in "+-":
        if sign in text[4:]:
            text = text[: 4 + text[4:].index(sign)]
    day = parse_date(text[:8] if len(text) >= 8 else (text + "0101")[:8] if len(text) in (4, 6) else None)
    if day is None:
        return None
    moment = parse_time(text[8:]) if len(text) > 8 else dt.time()
    return None if moment is None else dt.datetime.combine(day, moment)


def _float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _typed(kind: str, values: list[str]) -> Any:
    first = values[0] if values else None
    if kind == "text":
        return first
    if kind == "texts":
        return values or None
    if kind == "date":
        return parse_date(first)
    if kind == "time":
        return parse_time(first)
    if kind == "datetime":
        return parse_datetime(first)
    if kind == "int":
        number = _float(first) if first else None
        return int(number) if number is not None and number.is_integer() else None
    if kind == "float":
        return _float(first) if first else None
    if kind == "floats":
        numbers = [_float(v) for v in values]
        return None if not numbers or None in numbers else numbers
    raise ValueError(kind)


_NO_ATTRIBUTES = dict.fromkeys(column for column, _, _ in INSTANCE_ATTRIBUTES)
TYPED_MEMO_SIZE = 8192
"""Typed values remembered per worker (dates, numbers… repeat across a study's files)."""
_typed_memo: dict[tuple[str, ...], Any] = {}


def _typed_memoized(kind: str, values: list[str]) -> Any:
    """:func:`_typed` of non-empty ``values``, remembered (the memo is emptied when full)."""
    if kind == "text":
        return values[0]
    if kind == "texts":
        return values
    key = (kind, *values)
    try:
        return _typed_memo[key]
    except KeyError:
        pass
    if len(_typed_memo) >= TYPED_MEMO_SIZE:
        _typed_memo.clear()
    typed = _typed_memo[key] = _typed(kind, values)
    return typed


def instance_attributes(rows: ElementRows) -> dict[str, Any]:
    """Typed common attributes from the top-level rows (``INSTANCE_ATTRIBUTES``).

    Missing or invalid values are None (the element row keeps the text); of a
    keyword present twice at the top (file meta and dataset), the later wins.
    Also returns ``n_elements`` and ``max_depth`` (0 when there are no sequences).
    """
    attribute = rows.nodes.attribute
    record = _NO_ATTRIBUTES.copy()
    at_attributes = map(attribute.__getitem__, rows.node)  # None where the row is no attribute
    for node, values in compress(zip(rows.node, rows.values, strict=True), at_attributes):
        column, kind = attribute[node]  # type: ignore[misc]  # (compress kept attribute rows only)
        record[column] = _typed_memoized(kind, values) if values else None  # None for no values, any kind
    record["n_elements"] = len(rows)
    record["max_depth"] = max(map(rows.nodes.depth.__getitem__, rows.node), default=0)
    return record


__all__ = [
    "MAX_DEPTH",
    "MAX_ELEMENTS",
    "MAX_STORED_BYTES",
    "MAX_VALUE_BYTES",
    "ElementRows",
    "Nodes",
    "first_number",
    "flatten_dataset",
    "instance_attributes",
    "parse_date",
    "parse_datetime",
    "parse_time",
    "tag_string",
]
