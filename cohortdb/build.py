"""``load`` and ``build`` as whole operations: the next warehouse written, then published.

Both hold the warehouse's writer lock from start to end (dbt included) and
publish atomically (:meth:`~cohortdb.warehouse.base.WarehouseTarget.publishing`):
readers never make them fail and never see a half-built warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cohortdb.dbt import BuildOutcome, dbt_build, require_dbt
from cohortdb.warehouse import Target, WarehouseTarget, open_target
from ingest.errors import UserError
from ingest.settings import Settings, make_warehouse_dir


@dataclass(frozen=True)
class Built:
    """What ``build`` did: the load's row counts, dbt's outcome, and where a failed
    build was kept (None when it was published)."""

    loaded: dict[str, int]
    outcome: BuildOutcome
    failed_at: str | None = None


def load(settings: Settings, warehouse: WarehouseTarget | None = None) -> dict[str, int]:
    """Publish the live warehouse (default: the DuckDB one) with ``raw`` replaced by the lake's
    content (the dbt schemas above it are kept as they were); row counts by table."""
    _check_lake(settings)
    warehouse = warehouse or open_target(settings, Target.DUCKDB)
    with warehouse.publishing(from_live=True, only=("raw",)):
        return warehouse.load()


def _check_lake(settings: Settings) -> None:
    """Raise when nothing was ever ingested into this warehouse directory (a mistyped --warehouse),
    or it cannot be written in."""
    if not settings.lake_dir.is_dir():
        raise UserError(f"nothing ingested in {settings.warehouse_dir}: run `cohortdb ingest dicom PATH` or "
                        "`cohortdb ingest guppy …` first (or check --warehouse)")
    make_warehouse_dir(settings)


def build(settings: Settings, cohorts: Path, warehouse: WarehouseTarget | None = None, *,
          select: str | None = None) -> Built:
    """Load the lake and ``dbt build`` into the next ``warehouse`` (default: the DuckDB one);
    publish it if dbt succeeds.

    Without ``select`` the next warehouse starts empty, so it holds exactly what this
    build made; with it, it starts as a copy of the live one (unselected models kept).
    A failed build is kept aside (:attr:`Built.failed_at`); the live one stays.

    Raises:
        UserError: dbt is not installed, nothing ingested yet, a bad cohort definition, or another
            load or build at work.
    """
    warehouse = warehouse or open_target(settings, Target.DUCKDB)
    require_dbt(warehouse.target)
    _check_lake(settings)
    with warehouse.publishing(from_live=select is not None) as publication:
        loaded = warehouse.load()
        outcome = dbt_build(warehouse, cohorts, select=select)
        if not outcome.success:
            publication.abandon()
    return Built(loaded=loaded, outcome=outcome, failed_at=publication.failed_at)
