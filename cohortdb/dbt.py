"""Running the dbt project in-process on one warehouse, and ``cohortdb build``.

dbt runs from a project directory of the warehouse's own,
``<warehouse>/dbt/project/``: symbolic links to the project's files
(``dbt_project.yml``, ``models/``, ``macros/``, ``seeds/``, ``data-tests/``)
beside ``generated/``, the warehouse's compiled cohort models (the project's
second model path). Two warehouses built from one checkout never share
compiled cohorts, and an installed project is never written to. (An absolute
model path would not do: dbt writes a model's compiled SQL at
``target/compiled/<project>/<model path>``, which for an absolute path is the
model file itself.)

dbt-duckdb resolves paths against the process's cwd, so every path is passed
absolute (through the environment ``profiles.yml`` reads); dbt's ``target/``
and ``logs/`` go under the warehouse too. After a run the DuckDB connections
dbt keeps open are closed, so no lock is left behind for the next reader.
"""

from __future__ import annotations

import json
import os
import re
import textwrap
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cohortdb.cohorts.compile import COHORT_SCHEMA, compile_cohorts, generated_models_dir, warehouse_project_dir
from cohortdb.project import PROJECT_DIR
from cohortdb.warehouse import Target, WarehouseTarget
from ingest.errors import UserError, requires
from ingest.settings import Settings

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

FAILED = ("fail", "error", "runtime error")
"""The statuses of a node that failed (a model that did not build, a test that found rows)."""

LOGGED_LEVELS = ("info", "warn", "error")
"""What dbt says that goes to the run's log, ``<warehouse>/dbt/logs/dbt.log`` (debug would add every query)."""

DBT_INSTALL = "pip install 'cohortdb[dbt]'"

PROJECT_ENTRIES = ("dbt_project.yml", "profiles.yml", "models", "macros", "seeds", "data-tests")
"""What a warehouse's project directory links to in :data:`~cohortdb.project.PROJECT_DIR`."""


@dataclass(frozen=True)
class NodeResult:
    """One dbt node's outcome: ``status`` is success/pass/fail/error/skipped/warn."""

    name: str
    resource_type: str
    status: str
    message: str | None
    failures: int | None
    path: str | None = None
    """The node's file, relative to the project (``generated/cohorts/x.sql``)."""

    def report(self) -> list[str]:
        """What went wrong, for a person: a header naming the node and its file, then dbt's
        message (DuckDB's hints and caret lines kept), indented; no blank lines."""
        where = f"{self.resource_type.split('.')[-1]} {self.name}" + (f" ({self.path})" if self.path else "")
        text = ANSI_ESCAPE.sub("", self.message or "")  # sqlglot underlines the error's token
        lines = [line.rstrip() for line in text.splitlines() if line.strip()]
        if lines and where in lines[0]:  # dbt's own header: "Runtime Error in model x (path)"
            header, body = lines[0].strip(), lines[1:]
        elif len(lines) == 1:
            return [f"{self.status}: {where}: {lines[0].strip()}"]
        else:
            header, body = f"{self.status}: {where}", lines
        return [header, *textwrap.indent(textwrap.dedent("\n".join(body)), "  ").splitlines()]


@dataclass(frozen=True)
class DbtOutcome:
    """What a dbt invocation did; ``success`` is dbt's own verdict."""

    success: bool
    nodes: list[NodeResult] = field(default_factory=list)
    log_path: Path | None = None
    """dbt's whole log of the run (each run replaces the last one's)."""

    def problems(self) -> list[NodeResult]:
        """Nodes that failed, errored or were skipped, in run order."""
        return [n for n in self.nodes if n.status in (*FAILED, "skipped")]

    def failures(self) -> list[NodeResult]:
        """Nodes that failed or errored, in run order (not those skipped because of them)."""
        return [n for n in self.nodes if n.status in FAILED]


@contextmanager
def _environment(warehouse: WarehouseTarget) -> Iterator[None]:
    values = warehouse.dbt_environment()
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def prepare_project(settings: Settings) -> Path:
    """The warehouse's dbt project directory, its links pointing at :data:`PROJECT_DIR`
    (re-pointed when the project moved) and its ``generated/`` directory present."""
    project = warehouse_project_dir(settings)
    project.mkdir(parents=True, exist_ok=True)
    for name in PROJECT_ENTRIES:
        link, target = project / name, PROJECT_DIR / name
        if link.is_symlink() and os.readlink(link) == str(target):
            continue
        if link.is_symlink() or link.is_file():
            link.unlink()
        link.symlink_to(target, target_is_directory=target.is_dir())
    generated_models_dir(settings).mkdir(exist_ok=True)
    return project


def require_dbt(target: Target = Target.DUCKDB) -> None:
    """Check that dbt and the adapter of ``target`` can be imported (the ``dbt`` extra, and
    ``bigquery`` for BigQuery).

    Raises:
        UserError: one of them cannot be; the message gives the install command.
    """
    with requires("dbt-core", DBT_INSTALL):
        import dbt.cli.main  # noqa: F401
    if target is Target.BIGQUERY:
        with requires("dbt-bigquery", "pip install 'cohortdb[bigquery]'"):
            import dbt.adapters.bigquery  # noqa: F401
        return
    with requires("dbt-duckdb", DBT_INSTALL):
        import dbt.adapters.duckdb  # noqa: F401


def run_dbt(warehouse: WarehouseTarget, args: Sequence[str]) -> DbtOutcome:
    """Invoke ``dbt <args>`` on the warehouse being written (:attr:`write_path` inside
    ``publishing``), from the warehouse's project directory (:func:`prepare_project`).

    Raises:
        UserError: dbt is not installed, or could not start (bad project or profile).
    """
    require_dbt(warehouse.target)
    from dbt.cli.main import dbtRunner

    settings = warehouse.settings
    dbt_dir = settings.warehouse_dir / "dbt"
    project = prepare_project(settings)
    full_args = [
        *args,
        "--project-dir", str(project),
        "--profiles-dir", str(project),
        "--target", warehouse.target.value,
        "--target-path", str(dbt_dir / "target"),
        "--log-path", str(dbt_dir / "logs"),
        "--log-level", "none",  # nothing on the console: our own lines say what failed
        "--log-level-file", "none",  # dbt would leave its log file open; the run's log is ours (below)
        "--no-use-colors",
    ]
    log_path = dbt_dir / "logs" / "dbt.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    writing = threading.Lock()  # dbt's threads fire events at once; a text file is not thread-safe
    with _environment(warehouse), log_path.open("w", encoding="utf-8") as log:
        def write(event: Any) -> None:  # dbt's EventMsg
            if event.info.level in LOGGED_LEVELS:
                line = f"{event.info.ts.ToDatetime():%Y-%m-%d %H:%M:%S} [{event.info.level}] {event.info.msg}\n"
                with writing:
                    log.write(line)

        try:
            result = dbtRunner(callbacks=[write]).invoke(full_args)
        finally:
            _close_duckdb_connections()
    if isinstance(result.exception, KeyboardInterrupt):
        raise result.exception
    if result.exception is not None and result.result is None:
        # dbt's header ("Compilation Error in model x (path)"), then what and where, on one line
        header, *details = [line.strip() for line in str(result.exception).splitlines() if line.strip()] or ["?"]
        what = f"{header}: {'; '.join(details)}" if details else header
        raise UserError(f"dbt could not run: {what} (dbt's log: {log_path})")
    nodes = [
        NodeResult(
            name=r.node.name, resource_type=str(r.node.resource_type), status=str(r.status),
            message=r.message, failures=r.failures, path=getattr(r.node, "original_file_path", None),
        )
        for r in (getattr(result.result, "results", None) or [])
    ]
    return DbtOutcome(success=bool(result.success), nodes=nodes, log_path=log_path)


def _close_duckdb_connections() -> None:
    try:
        from dbt.adapters.duckdb.connections import DuckDBConnectionManager
    except ImportError:
        return
    DuckDBConnectionManager.close_all_connections()


class BuildOutcome(DbtOutcome):
    """A dbt build's outcome with a one-line summary."""

    def summary(self) -> str:
        """``dbt build ok: 23 models, 80 tests — 103 ok, 0 failed, 0 skipped`` style counts."""
        kinds = Counter(n.resource_type.split(".")[-1] for n in self.nodes)
        ok = sum(n.status in ("success", "pass") for n in self.nodes)
        skipped = sum(n.status == "skipped" for n in self.nodes)
        what = ", ".join(f"{count} {kind}s" for kind, count in sorted(kinds.items()))
        verdict = "ok" if self.success else "FAILED"
        return f"dbt build {verdict}: {what} — {ok} ok, {len(self.failures())} failed, {skipped} skipped"

    def report(self) -> list[str]:
        """Each failure (:meth:`NodeResult.report`), how many nodes were skipped because of them,
        and where dbt's whole log is; nothing when all went well."""
        lines = [line for node in self.failures() for line in node.report()]
        skipped = Counter(n.resource_type.split(".")[-1] for n in self.nodes if n.status == "skipped")
        if skipped:
            kinds = ", ".join(f"{count} {kind}{'s' if count > 1 else ''}" for kind, count in sorted(skipped.items()))
            lines.append(f"{skipped.total()} skipped because of the failures: {kinds}")
        if lines and self.log_path is not None:
            lines.append(f"dbt's whole log: {self.log_path}")
        return lines


def dbt_build(warehouse: WarehouseTarget, cohorts: Path, *, select: str | None = None) -> BuildOutcome:
    """Compile the definitions in ``cohorts`` into models, then run ``dbt build`` (seeds,
    models, data tests) on the warehouse being written; drop the ``cohorts`` tables of
    definitions that no longer exist, so the schema holds exactly the current ones.

    Raises:
        UserError: a cohort definition is invalid (nothing is run then), or ``select`` matches nothing.
    """
    compiled = compile_cohorts(warehouse.settings, cohorts, dialect=warehouse.dialect)
    args = ["build"] + (["--select", select] if select else [])
    outcome = run_dbt(warehouse, args)
    if select and outcome.success and not outcome.nodes:  # dbt calls that a success: nothing to do
        raise UserError(f"--select {select} matches no model, seed or test (see `dbt ls` names in models/)")
    if outcome.success:
        keep = {name for c in compiled for name in (c.name, f"{c.name}__files")} | _models_in(
            warehouse.settings, COHORT_SCHEMA)
        warehouse.prune(COHORT_SCHEMA, keep)
    return BuildOutcome(success=outcome.success, nodes=outcome.nodes, log_path=outcome.log_path)


def _models_in(settings: Settings, schema: str) -> set[str]:
    """The dbt models the last run's manifest puts in ``schema`` (hand-written cohort models)."""
    manifest = settings.warehouse_dir / "dbt" / "target" / "manifest.json"
    nodes = json.loads(manifest.read_text(encoding="utf-8")).get("nodes", {}) if manifest.exists() else {}
    return {n["name"] for n in nodes.values() if n.get("resource_type") == "model" and n.get("schema") == schema}
