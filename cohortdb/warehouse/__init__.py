"""Warehouse targets: load the lake, read it (read-only), export from it.

:func:`open_target` is the one place a target is chosen; each engine lives in
a module of its own with the same names (``duckdb.py``, ``bigquery.py``).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, assert_never

from cohortdb.warehouse.base import Dialect, Relation, Target, WarehouseReader, WarehouseTarget
from ingest.errors import requires
from ingest.settings import Settings, resolve_settings

if TYPE_CHECKING:
    from cohortdb.warehouse.bigquery import BigQueryConfig

__all__ = ["Dialect", "Relation", "Target", "WarehouseReader", "WarehouseTarget", "open_directory", "open_target"]


def open_target(settings: Settings, target: Target | str = Target.DUCKDB,
                bigquery: BigQueryConfig | None = None) -> WarehouseTarget:
    """The warehouse of ``settings``' directory on ``target``; on BigQuery, in the datasets
    ``bigquery`` names (default: from the environment, :func:`~cohortdb.warehouse.bigquery.config_from`).

    Raises:
        ValueError: an unknown target name (the CLI's typed choice rules it out).
        UserError: BigQuery without a project or dataset prefix.
    """
    chosen = Target(target)
    if chosen is Target.DUCKDB:
        from cohortdb.warehouse.duckdb import DuckDBWarehouse

        return DuckDBWarehouse(settings)
    if chosen is Target.BIGQUERY:
        from cohortdb.warehouse.bigquery import BigQueryWarehouse, config_from

        with requires("google-cloud-bigquery", "pip install 'cohortdb[bigquery]'"):
            import google.cloud.bigquery  # noqa: F401
        return BigQueryWarehouse(settings, bigquery or config_from(None, None))
    assert_never(chosen)


def open_directory(path: str | os.PathLike[str] | None = None, target: Target | str = Target.DUCKDB) -> WarehouseTarget:
    """The warehouse of a directory (default ``$COHORTDB_WAREHOUSE``, else ``./warehouse``), as
    ``--warehouse`` resolves it: for readers above ``cohortdb`` (the dashboard) that know a path.
    BigQuery's datasets come from the environment."""
    return open_target(resolve_settings(path), target)
