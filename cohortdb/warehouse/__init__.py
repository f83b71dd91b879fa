"""Warehouse targets: load the lake, read it (read-only), export from it.

:func:`open_target` is the one place a target is chosen; each engine lives in
a module of its own with the same names (``duckdb.py``; ``bigquery.py`` next).
"""

from __future__ import annotations

import os
from typing import assert_never

from cohortdb.warehouse.base import Dialect, Relation, Target, WarehouseReader, WarehouseTarget
from ingest.errors import UserError
from ingest.settings import Settings, resolve_settings

__all__ = ["Dialect", "Relation", "Target", "WarehouseReader", "WarehouseTarget", "open_directory", "open_target"]


def open_target(settings: Settings, target: Target | str = Target.DUCKDB) -> WarehouseTarget:
    """The warehouse of ``settings``' directory on ``target``.

    Raises:
        ValueError: an unknown target name (the CLI's typed choice rules it out).
    """
    chosen = Target(target)
    if chosen is Target.DUCKDB:
        from cohortdb.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(settings)
    if chosen is Target.BIGQUERY:
        raise UserError("on BigQuery only `cohortdb load --target bigquery` works so far "
                        "(build, queries and exports are not written yet)")
    assert_never(chosen)


def open_directory(path: str | os.PathLike[str] | None = None, target: Target | str = Target.DUCKDB) -> WarehouseTarget:
    """The warehouse of a directory (default ``$COHORTDB_WAREHOUSE``, else ``./warehouse``), as
    ``--warehouse`` resolves it: for readers above ``cohortdb`` (the dashboard) that know a path."""
    return open_target(resolve_settings(path), target)
