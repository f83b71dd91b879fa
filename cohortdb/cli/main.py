"""The root ``cohortdb`` app: global options, the command groups, and how errors end a run.

Each command group is a module of its own (``ingest``, ``cohort``, ``export``),
as are the top-level commands (``warehouse``: load/build/sql, ``demo``,
``download``). A :class:`~ingest.errors.UserError` from any of them becomes one
line on stderr and exit code 2 (Ctrl-C: ``interrupted``, 130), in the console script and under typer's
``CliRunner`` alike; usage errors are click's (exit code 2 too).
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import click
import typer
from rich.markup import escape
from typer.core import TyperGroup

from cohortdb.cli import cohort, demo, download, export, ingest, warehouse
from cohortdb.cli.common import BigQueryOptions, State, plain_help, stderr
from cohortdb.cli.dashboard import dashboard_command
from cohortdb.project import cohorts_dir
from cohortdb.warehouse import Target
from ingest.errors import UserError
from ingest.settings import resolve_settings

USER_ERROR_EXIT = 2
INTERRUPTED_EXIT = 130
_console = False
"""Running as the console script (:func:`main`), not as a library (typer's ``CliRunner``)."""


_GLOBAL_OPTIONS = ("--warehouse", "-w", "--cohorts", "--target", "--project", "--dataset-prefix", "--location",
                   "--api-endpoint")
"""The root's options that every command takes, before or after its name."""
_GLOBAL_ASSIGNED = tuple(f"{name}=" for name in _GLOBAL_OPTIONS if name.startswith("--"))
"""The same given as ``--name=value``."""


def lift_global_options(args: list[str]) -> list[str]:
    """``args`` with the global options (and their values) moved to the front, in their order,
    wherever they were given (``cohortdb sql -w DIR …`` is ``cohortdb -w DIR sql …``); the
    last one given wins. Nothing after ``--`` moves."""
    lifted: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--":
            rest += args[index:]
            break
        if arg in _GLOBAL_OPTIONS and index + 1 < len(args):
            lifted += args[index:index + 2]
            index += 2
            continue
        if arg.startswith(_GLOBAL_ASSIGNED):
            lifted.append(arg)
        else:
            rest.append(arg)
        index += 1
    return lifted + rest


class _Group(TyperGroup):
    """The root group: a UserError raised by any command ends the run with one line; the global
    options are taken after a command's name too (:func:`lift_global_options`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        plain_help(self)
        return super().parse_args(ctx, lift_global_options(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (KeyboardInterrupt, Exception) as exc:
            # Ctrl-C may land inside an import or a cleanup that raises something else in turn
            # (an ImportError, or EBADF from shutil.rmtree): the interrupt is then in the chain.
            if _interrupted(exc):  # before click turns it into "Aborted!" and exit code 1
                # DuckDB may leave the signal pending too: a second delivery must not kill the exit.
                # Only the console script's process keeps ignoring it (its children would inherit that).
                previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
                stderr.print("interrupted")
                try:
                    ctx.exit(INTERRUPTED_EXIT)
                finally:
                    if not _console:
                        signal.signal(signal.SIGINT, previous)
            if isinstance(exc, UserError):
                stderr.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True, markup=True)
                ctx.exit(USER_ERROR_EXIT)
            raise


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is, or was raised while handling, a KeyboardInterrupt (cause or context)."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        if isinstance(current, KeyboardInterrupt):
            return True
        seen.add(id(current))
        todo += [current.__cause__, current.__context__]
    return False


app = typer.Typer(
    cls=_Group, no_args_is_help=True, add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},  # subcommands inherit them
    help="Imaging metadata warehouse: DICOM headers and Gen3 guppy records in SQL.",
)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            number = version("cohortdb")
        except PackageNotFoundError:  # a checkout on PYTHONPATH, not installed
            number = "unknown (not installed)"
        typer.echo(f"cohortdb {number}")
        raise typer.Exit


@app.callback()
def main_callback(
    ctx: typer.Context,
    warehouse_dir: Annotated[Path | None, typer.Option(
        "--warehouse", "-w", help="Warehouse directory (default: $COHORTDB_WAREHOUSE or ./warehouse).")] = None,
    cohorts: Annotated[Path | None, typer.Option(
        "--cohorts", help="Cohort definitions (default: $COHORTDB_COHORTS, else ./cohorts, "
                          "else the project's).")] = None,
    target: Annotated[Target, typer.Option(
        "--target", envvar="COHORTDB_TARGET", help="Warehouse engine (default: $COHORTDB_TARGET, else duckdb).",
    )] = Target.DUCKDB,
    project: Annotated[str | None, typer.Option(
        "--project", metavar="P", help="BigQuery project (default: $COHORTDB_BQ_PROJECT).")] = None,
    dataset_prefix: Annotated[str | None, typer.Option("--dataset-prefix", metavar="X", help=(
        "BigQuery datasets X_raw, X_marts, … (default: $COHORTDB_BQ_DATASET_PREFIX)."))] = None,
    location: Annotated[str | None, typer.Option("--location", metavar="L", help=(
        "BigQuery location of new datasets (default: US)."))] = None,
    api_endpoint: Annotated[str | None, typer.Option("--api-endpoint", metavar="URL", help=(
        "BigQuery API endpoint, e.g. an emulator's (default: $BIGQUERY_EMULATOR_HOST, else Google's)."))] = None,
    _version: Annotated[bool, typer.Option(
        "--version", is_eager=True, callback=_print_version, help="Print cohortdb's version and exit.")] = False,
) -> None:
    ctx.obj = State(settings=resolve_settings(warehouse_dir), cohorts_dir=cohorts_dir(cohorts), target=target,
                    bigquery=BigQueryOptions(project, dataset_prefix, location, api_endpoint))


app.add_typer(ingest.app, name="ingest")
warehouse.register(app)
app.add_typer(cohort.app, name="cohort")
app.add_typer(export.app, name="export")
app.command("download")(download.download)
app.command("demo")(demo.demo_command)
app.command("dashboard")(dashboard_command)


def main() -> None:
    """Console entry point (errors are mapped by the root group; Ctrl-C exits 130)."""
    global _console
    _console = True
    try:
        app()
    except KeyboardInterrupt:  # outside any command (while arguments are parsed)
        stderr.print("interrupted")
        sys.exit(INTERRUPTED_EXIT)
    except SystemExit as exit_:
        if exit_.code != INTERRUPTED_EXIT:
            raise
        # Interrupted, and what was being written is already discarded. Python would end an
        # interrupted process by SIGINT whatever the exit code; run the exit handlers, then leave.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(INTERRUPTED_EXIT)
