"""Running the repository's dbt project in-process, on one warehouse.

dbt-duckdb resolves paths against the process's cwd, so every path is passed
absolute (through the environment ``profiles.yml`` reads); dbt's own
artefacts (``target/``, ``logs/``) go under the warehouse so two warehouses
never share them. After a run the DuckDB connections dbt keeps open are closed,
so no lock is left behind for the next reader.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from cohortdb.warehouse.duckdb import database_path
from ingest.errors import UserError
from cohortdb.project import PROJECT_DIR
from ingest.settings import Settings

DUCKDB_PATH_ENV = "COHORTDB_DUCKDB_PATH"


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome: ``status`` is success/pass/fail/error/skipped/warn."""

    name: str
    resource_type: str
    status: str
    message: str | None
    failures: int | None


@dataclass(frozen=True)
class DbtOutcome:
    """What a dbt invocation did; ``success`` is dbt's own verdict."""

    success: bool
    nodes: list[NodeResult] = field(default_factory=list)

    def problems(self) -> list[NodeResult]:
        """Nodes that failed, errored or were skipped, in run order."""
        return [n for n in self.nodes if n.status in ("fail", "error", "skipped", "runtime error")]


@contextmanager
def _environment(settings: Settings) -> Iterator[None]:
    saved = os.environ.get(DUCKDB_PATH_ENV)
    os.environ[DUCKDB_PATH_ENV] = str(database_path(settings))
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(DUCKDB_PATH_ENV, None)
        else:
            os.environ[DUCKDB_PATH_ENV] = saved


def run_dbt(settings: Settings, args: Sequence[str], *, target: str = "duckdb") -> DbtOutcome:
    """Invoke ``dbt <args>`` on the project at :data:`PROJECT_DIR` for ``settings``' warehouse.

    Raises:
        UserError: dbt is not installed, or could not start (bad project or profile).
    """
    try:
        from dbt.cli.main import dbtRunner
    except ImportError:
        raise UserError("dbt is not installed: pip install 'cohortdb[dbt]'") from None
    dbt_dir = settings.warehouse_dir / "dbt"
    full_args = [
        *args,
        "--project-dir", str(PROJECT_DIR),
        "--profiles-dir", str(PROJECT_DIR),
        "--target", target,
        "--target-path", str(dbt_dir / "target"),
        "--log-path", str(dbt_dir / "logs"),
        "--log-level-file", "none",
        "--quiet",
    ]
    with _environment(settings):
        try:
            result = dbtRunner().invoke(full_args)
        finally:
            _close_duckdb_connections()
    if result.exception is not None and result.result is None:
        raise UserError(f"dbt could not run: {str(result.exception).strip().splitlines()[0]}")
    nodes = [
        NodeResult(
            name=r.node.name, resource_type=str(r.node.resource_type), status=str(r.status),
            message=r.message, failures=r.failures,
        )
        for r in (getattr(result.result, "results", None) or [])
    ]
    return DbtOutcome(success=bool(result.success), nodes=nodes)


def _close_duckdb_connections() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    DuckDBConnectionManager.close_all_connections()
