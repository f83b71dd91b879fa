"""A DICOM header as a collapsible tree, pure: the rows of ``raw.dicom_elements`` of one
instance in, HTML out (``<details>`` for each sequence and item). Every text from the
header is escaped; nothing here reads files or the warehouse."""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

MAX_VALUE_CHARS = 160
_STEP = re.compile(r"__(\d+)__")

STYLE = """
<style>
.dicom-tree { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px;
              line-height: 1.55; color: #1d2430; }
.dicom-tree .el, .dicom-tree summary { display: grid; grid-template-columns: 8.2em 19em 2.6em 1fr;
              gap: .6em; padding: 1px 4px; border-bottom: 1px solid #f0f2f5; }
.dicom-tree summary { cursor: pointer; list-style: none; font-weight: 600; background: #f6f8fb; }
.dicom-tree summary::-webkit-details-marker { display: none; }
.dicom-tree details > summary .tag::before { content: "▸ "; color: #1f5fa6; }
.dicom-tree details[open] > summary .tag::before { content: "▾ "; }
.dicom-tree details details { margin-left: 1.4em; border-left: 2px solid #dbe4f0; }
.dicom-tree .item > summary { background: #fbfcfe; font-weight: 500; color: #4a5568; }
.dicom-tree .tag { color: #1f5fa6; white-space: nowrap; }
.dicom-tree .vr { color: #8a5a00; }
.dicom-tree .kw { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.dicom-tree .private { color: #9b2c6f; font-style: italic; }
.dicom-tree .val { overflow-wrap: anywhere; }
.dicom-tree .none { color: #9aa3ae; }
</style>
"""


@dataclass
class Node:
    """One element; a sequence's ``items`` hold their elements by item index (0-based)."""

    row: Mapping[str, Any]
    items: dict[int, list[Node]] = field(default_factory=dict)


def _sort_key(tag_path: str) -> tuple[Any, ...]:
    """(0008,0005) < (0012,0064) < its item 0 < item 2 < item 10 (numeric item order)."""
    parts = _STEP.split(tag_path)
    return tuple(int(p) if i % 2 else p for i, p in enumerate(parts))


def build(rows: Iterable[Mapping[str, Any]]) -> list[Node]:
    """The tree of an instance's element rows (``tag_path``, ``keyword``, ``vr``, …)."""
    ordered = sorted(rows, key=lambda r: _sort_key(str(r["tag_path"])))
    top: list[Node] = []
    by_path: dict[str, Node] = {}
    for row in ordered:
        path = str(row["tag_path"])
        node = Node(row)
        by_path[path] = node
        found = list(_STEP.finditer(path))
        if not found:
            top.append(node)
            continue
        last = found[-1]
        parent = by_path.get(path[:last.start()])
        if parent is None:  # an item whose sequence row is missing: keep it visible at the top
            top.append(node)
            continue
        parent.items.setdefault(int(last.group(1)), []).append(node)
    return top


def _tag(tag: str) -> str:
    return f"({tag[:4]},{tag[4:]})" if len(tag) == 8 else tag


def _value(row: Mapping[str, Any]) -> str:
    vr = row.get("vr")
    text = row.get("value_text")
    if vr == "SQ":
        count = int(row.get("value_number") or 0)
        return f"<span class='none'>{count} item{'s' if count != 1 else ''}</span>"
    if text is None:
        length = row.get("value_length")
        if length:
            return f"<span class='none'>binary, {int(length):,} bytes</span>"
        return "<span class='none'>(empty)</span>"
    shown = text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + " …"
    return f"<span title='{html.escape(text[:2000], quote=True)}'>{html.escape(shown)}</span>"


def _keyword(row: Mapping[str, Any]) -> str:
    keyword = row.get("keyword") or ""
    creator = row.get("private_creator")
    if creator:
        name = html.escape(keyword) + " " if keyword else ""
        return f"<span class='private'>{name}private · {html.escape(str(creator))}</span>"
    if not keyword:
        tag = str(row.get("tag") or "")
        if len(tag) == 8 and int(tag[3], 16) % 2 == 1 and 0x10 <= int(tag[4:], 16) <= 0xFF:
            return "<span class='private'>private creator</span>"  # (gggg,00xx) of an odd group, PS3.5 7.8.1
        return "<span class='none'>(unknown)</span>"
    return html.escape(keyword)


def _cells(row: Mapping[str, Any]) -> str:
    return (f"<span class='tag'>{html.escape(_tag(str(row.get('tag') or '')))}</span>"
            f"<span class='kw'>{_keyword(row)}</span><span class='vr'>{html.escape(str(row.get('vr') or ''))}</span>"
            f"<span class='val'>{_value(row)}</span>")


def _render(nodes: list[Node], out: list[str], open_depth: int, depth: int) -> None:
    for node in nodes:
        if node.row.get("vr") != "SQ":
            out.append(f"<div class='el'>{_cells(node.row)}</div>")
            continue
        opened = " open" if depth < open_depth else ""
        out.append(f"<details class='seq'{opened}><summary>{_cells(node.row)}</summary>")
        for index in sorted(node.items):
            out.append(f"<details class='item'{opened}><summary><span class='tag'>item {index}</span>"
                       f"<span></span><span></span><span></span></summary>")
            _render(node.items[index], out, open_depth, depth + 1)
            out.append("</details>")
        out.append("</details>")


def render(nodes: list[Node], *, open_depth: int = 0) -> str:
    """The tree as HTML (with its style); sequences deeper than ``open_depth`` start closed."""
    out = [STYLE, "<div class='dicom-tree'>"]
    _render(nodes, out, open_depth, 0)
    out.append("</div>")
    return "".join(out)


def matches(row: Mapping[str, Any], text: str) -> bool:
    """Whether an element's tag, keyword or value contains ``text`` (case-insensitive)."""
    needle = text.strip().lower()
    haystack = " ".join(str(row.get(k) or "") for k in ("tag_path", "keyword_path", "value_text", "private_creator"))
    return needle in haystack.lower() or needle.replace("(", "").replace(")", "").replace(",", "") in \
        str(row.get("tag") or "").lower()


def filtered(rows: list[Mapping[str, Any]], text: str) -> list[Mapping[str, Any]]:
    """The rows matching ``text`` and the sequences and items that hold them."""
    if not text.strip():
        return rows
    keep: set[str] = set()
    for row in rows:
        if matches(row, text):
            path = str(row["tag_path"])
            keep.add(path)
            for step in _STEP.finditer(path):
                keep.add(path[:step.start()])
    return [row for row in rows if str(row["tag_path"]) in keep]
