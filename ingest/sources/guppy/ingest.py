"""Guppy ingestion: fetch each index's records, flatten them, replace the lake table.

Every index named in one command is staged, then committed in one
:class:`~ingest.lake.Transaction` that also deletes the index's previous part
files, so a re-ingest replaces an index atomically and a failure part-way
leaves the lake as it was.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from ingest.collector import gc_paused
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, new_part_id, part_files
from ingest.settings import Settings, make_warehouse_dir
from ingest.sources.guppy.flatten import flatten

INDEX_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")

Records = tuple[list[dict[str, Any]], list[str] | list[bytes] | None]
"""Records of one index, and their source JSON texts (one line each) if the source kept them."""

Fetch = Callable[[str], Records]
"""Returns the records of the named index."""


@dataclass(frozen=True)
class IndexReport:
    """What happened to one index: rows written (0 when left unchanged) and where."""

    index: str
    rows: int
    columns: int
    table_dir: Path
    replaced_parts: int


def check_index_name(index: str) -> str:
    """``index`` if it is usable as a directory and as ``raw.guppy_<index>``.

    Raises:
        UserError: otherwise.
    """
    if not INDEX_NAME.match(index):
        raise UserError(
            f"invalid index name {index!r}: use letters, digits and underscores "
            "(e.g. case, imaging_study, data_file)"
        )
    return index


def build_table(records: Records, *, commons: str, ingested_at: datetime) -> pa.Table:
    """Flatten ``records`` into one Arrow table with an explicit schema.

    Raises:
        UserError: a record is not a JSON object or uses a reserved name.
    """
    objects, texts = records
    try:
        schema, columns = flatten(objects, commons=commons, ingested_at=ingested_at,
                                  raw_texts=texts)
    except ValueError as error:
        raise UserError(f"cannot ingest these records: {error}") from None
    return pa.Table.from_arrays(columns, schema=schema)


def ingest_indices(
    settings: Settings,
    indices: Sequence[str],
    fetch: Fetch,
    *,
    commons: str,
    warn: Callable[[str], None],
    live: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> list[IndexReport]:
    """Fetch, flatten and write each index; commit all of them together.

    An index whose fetch returns no records is left unchanged (with a warning).
    ``live``: ``fetch`` queries a commons' API, whose empty answer on a private
    tier usually means missing access, not an empty index; the warning says so
    then, and only then (otherwise ``fetch`` reads a dump, which simply held none).

    Raises:
        UserError: bad index name, bad records, or whatever ``fetch`` raises.
    """
    for index in indices:
        check_index_name(index)
    if len(set(indices)) != len(indices):
        raise UserError("each --index may be given only once")
    make_warehouse_dir(settings)
    ingested_at = now()
    reports: list[IndexReport] = []
    lake_dir = settings.lake_dir
    with LakeLock(lake_dir):
        transaction = Transaction(lake_dir)
        try:
            for index in indices:
                reports.append(_stage_index(transaction, settings, index, fetch,
                                            commons=commons, ingested_at=ingested_at,
                                            warn=warn, live=live))
            transaction.commit()
        except BaseException:
            transaction.abort()
            raise
    return reports


def _stage_index(
    transaction: Transaction,
    settings: Settings,
    index: str,
    fetch: Fetch,
    *,
    commons: str,
    ingested_at: datetime,
    warn: Callable[[str], None],
    live: bool,
) -> IndexReport:
    table_dir = settings.guppy_lake / index
    with gc_paused():
        records = fetch(index)
        table = build_table(records, commons=commons, ingested_at=ingested_at) \
            if records[0] else None
        del records
    if table is None:
        if live:
            warn(f"no {index} records returned by {commons}; lake/guppy/{index} left unchanged. "
                 "On a private-tier commons (e.g. MIDRC) an empty answer usually means your "
                 "account lacks access or the filter matches nothing.")
        else:
            warn(f"no {index} records in the dump given for {index}; lake/guppy/{index} left unchanged")
        return IndexReport(index, 0, 0, table_dir, 0)
    old_parts = part_files(table_dir)
    transaction.add(table, table_dir / f"{new_part_id()}.parquet")
    transaction.delete(old_parts)
    return IndexReport(index, table.num_rows, table.num_columns, table_dir, len(old_parts))
