"""Reading a test warehouse's DuckDB file."""

from __future__ import annotations

from typing import Any

import duckdb

from cohortdb.warehouse.duckdb import database_path
from ingest.settings import Settings


def rows(settings: Settings, query: str) -> list[dict[str, Any]]:
    """A query's result on the warehouse file (read-only), as dicts."""
    con = duckdb.connect(str(database_path(settings)), read_only=True)
    try:
        result = con.execute(query)
        columns = [d[0] for d in result.description]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    finally:
        con.close()
