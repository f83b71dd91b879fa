"""JSON parsing and compact serialisation: orjson when installed, else the stdlib.

orjson is much faster on large dumps. It refuses integers beyond
64 bits and the non-standard ``NaN``/``Infinity`` literals; those inputs fall
back to the stdlib, so results never depend on which one is installed.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from ingest.collector import gc_paused

try:
    import orjson
except ImportError:  # pragma: no cover - a core dependency; tolerated if missing
    orjson = None

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON text.

    Raises:
        json.JSONDecodeError: not JSON.
    """
    with gc_paused():
        if orjson is not None:
            try:
                return orjson.loads(text)
            except orjson.JSONDecodeError:
                pass  # big ints, NaN, or invalid: let the stdlib decide and explain
        return json.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON text with non-ASCII characters kept (``{"a":1,"b":"é"}``)."""
    return dump_bytes(value).decode()


def dump_bytes(value: Any) -> bytes:
    """:func:`dumps` as UTF-8 bytes."""
    if orjson is not None:
        try:
            return orjson.dumps(value)
        except TypeError:
            pass  # integers beyond 64 bits
    return _ENCODER.encode(value).encode()


def dump_lines(values: Sequence[Any]) -> bytes | memoryview:
    """NDJSON: :func:`dumps` of each value, one a line (``\\n`` between, none at the end).

    Compact JSON never holds a raw newline (inside strings it is escaped), so
    the lines split back into the values' texts unambiguously. Returns a
    memoryview where that saves copying the text.
    """
    fragment = getattr(orjson, "Fragment", None)  # orjson >= 3.10
    if fragment is not None and values:
        separator = fragment(b"\n")
        interleaved = [item for value in values for item in (separator, value)][1:]
        try:  # "[v0,\n,v1,\n,v2]": one C call instead of one per value
            text = orjson.dumps(interleaved).replace(b",\n,", b"\n")
        except TypeError:
            pass  # integers beyond 64 bits
        else:
            return memoryview(text)[1:-1]
    return b"\n".join(map(dump_bytes, values))
