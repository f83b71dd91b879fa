"""Reading guppy records from a JSON dump: a JSON array, or NDJSON (one object a line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ingest.errors import UserError
from ingest.sources.guppy.json_text import loads


def read_dump(path: Path, index: str) -> tuple[list[dict[str, Any]], list[bytes] | None]:
    """The records of a dump, and their source texts (UTF-8 lines) when the dump is NDJSON.

    A JSON array is returned as parsed (texts ``None``: the flattener re-serialises).
    A GraphQL response ``{"data": {"<index>": [...]}}`` is accepted too. NDJSON
    lines that are blank are skipped.

    Raises:
        UserError: the file is missing, not JSON/NDJSON, or holds something
            other than JSON objects.
    """
    try:
        with path.open("rb") as handle:
            first = handle.read(4096).lstrip()
            handle.seek(0)
            if first.startswith(b"["):
                return require_records(loads(handle.read()), path), None
            if first.startswith(b"{") and not _looks_like_ndjson(path):
                return require_records(_unwrap(json.load(handle), index, path), path), None
            records, texts = _read_ndjson(handle, path)
    except FileNotFoundError:
        raise UserError(f"dump file not found: {path}") from None
    except IsADirectoryError:
        raise UserError(f"dump path is a directory, not a file: {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise UserError(f"{path} is not valid JSON or NDJSON: {_where(error)}") from None
    if len(records) == 1 and isinstance(records[0].get("data"), dict):
        return require_records(_unwrap(records[0], index, path), path), None
    return records, texts


def _looks_like_ndjson(path: Path) -> bool:
    with path.open("rb") as handle:
        first_line = handle.readline()
    try:
        json.loads(first_line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return False
    return True


def _read_ndjson(handle: Any, path: Path) -> tuple[list[dict[str, Any]], list[bytes]]:
    records: list[dict[str, Any]] = []
    texts: list[bytes] = []
    for number, line in enumerate(handle, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            value = loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} line {number} is not JSON: {error.msg}") from None
        if type(value) is not dict:
            raise UserError(f"{path} line {number} is not a JSON object")
        records.append(value)
        texts.append(text)
    return records, texts


def _unwrap(document: Any, index: str, path: Path) -> Any:
    data = document.get("data") if isinstance(document, dict) else None
    if isinstance(data, dict) and index in data:
        return data[index]
    raise UserError(
        f"{path} holds one JSON object; expected an array of records, NDJSON, "
        f'or a guppy response {{"data": {{"{index}": [...]}}}}'
    )


def require_records(value: Any, source: object) -> list[dict[str, Any]]:
    """``value`` if it is a list of JSON objects; else a UserError naming ``source``.

    Positions in the message are 0-based.
    """
    if not isinstance(value, list):
        raise UserError(f"{source} does not hold a JSON array of records")
    for position, record in enumerate(value):
        if type(record) is not dict:
            raise UserError(f"{source}: record {position} is not a JSON object")
    return value


def _where(error: json.JSONDecodeError | UnicodeDecodeError) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} at line {error.lineno} column {error.colno}"
    return "not UTF-8 text"
