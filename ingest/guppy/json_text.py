"""JSON parsing and compact serialisation: orjson when installed, else the stdlib.

orjson is several times faster on large dumps. It refuses integers beyond
64 bits and the non-standard ``NaN``/``Infinity`` literals; those inputs fall
back to the stdlib, so results never depend on which one is installed.
"""

from __future__ import annotations

import json
from typing import Any

try:
    import orjson
except ImportError:  # pragma: no cover - the guppy extra installs it
    orjson = None

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def loads(text: str | bytes) -> Any:
    """Parse JSON text.

    Raises:
        json.JSONDecodeError: not JSON.
    """
    if orjson is not None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass  # big ints, NaN, or invalid: let the stdlib decide and explain
    return json.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON text with non-ASCII characters kept (``{"a":1,"b":"é"}``)."""
    if orjson is not None:
        try:
            return orjson.dumps(value).decode()
        except TypeError:
            pass  # integers beyond 64 bits
    return _ENCODER.encode(value)
