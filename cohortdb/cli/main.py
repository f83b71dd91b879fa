"""The ``cohortdb`` command line (see DESIGN.md, "CLI")."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cohortdb.warehouse.duckdb import database_path
from ingest.errors import UserError
from ingest.settings import Settings, resolve_settings

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="Imaging metadata warehouse: DICOM headers and Gen3 guppy records in SQL.",
)
ingest_app = typer.Typer(no_args_is_help=True, help="Read sources into the Parquet lake.")
app.add_typer(ingest_app, name="ingest")
export_app = typer.Typer(no_args_is_help=True, help="Write warehouse content to files (FHIR, manifests, tables).")
app.add_typer(export_app, name="export")
err = Console(stderr=True)

WarehouseOption = Annotated[
    Path | None,
    typer.Option("--warehouse", "-w", help="Warehouse directory (default: $COHORTDB_WAREHOUSE or ./warehouse)."),
]


@app.callback()
def main_callback(ctx: typer.Context, warehouse: WarehouseOption = None) -> None:
    ctx.obj = resolve_settings(warehouse)


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=err, transient=True, disable=not err.is_terminal,
    )


@ingest_app.command("dicom")
def ingest_dicom_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files, directories (recursive) and zip archives.")],
    full: Annotated[bool, typer.Option("--full", help=(
        "Re-read every source, even unchanged ones; on a lake ingested with another --shard N "
        "(or without), first drop every DICOM row ingested so far."
    ))] = False,
    workers: Annotated[int | None, typer.Option(help="Processes (default: every core).")] = None,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help=(
        "Read only shard K (from 1) of N: the sources whose path hashes to K. Run K = 1..N, "
        "on one machine or several sharing the warehouse, at the same time if you like; "
        "together they ingest what one run would. Keep N for later runs."
    ))] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 when any source could not be read.")] = False,
) -> None:
    """Ingest DICOM headers (every element, sequences flattened); incremental by default."""
    from ingest.sources.files.ingest import ingest_dicom
    from ingest.sources.files.shard import parse_shard

    settings: Settings = ctx.obj
    chosen_shard = parse_shard(shard) if shard is not None else None
    with _progress() as progress:
        task = progress.add_task("reading DICOM headers", total=None)
        summary = ingest_dicom(
            settings, paths, full=full, workers=workers, shard=chosen_shard,
            on_progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    typer.echo(summary.line())
    if summary.n_errors:
        where = settings.dicom_lake / "errors"
        typer.echo(f"see raw.dicom_errors (or {where}) for the {summary.n_errors} errors", err=True)
    if strict and summary.n_errors:
        raise typer.Exit(1)


def _register_guppy() -> None:
    from cohortdb.cli.guppy_commands import download, ingest_guppy

    ingest_app.command("guppy")(ingest_guppy)
    app.command("download")(download)


_register_guppy()


def _register_cohort() -> None:
    from cohortdb.cli.cohort import cohort_app

    app.add_typer(cohort_app, name="cohort")


_register_cohort()


@app.command("load")
def load_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="Warehouse engine: duckdb (embedded).")] = "duckdb",
) -> None:
    """Load the lake into the warehouse's raw schema (replaces it; idempotent)."""
    if target != "duckdb":
        raise UserError(f"unknown --target {target!r}; available: duckdb")
    from cohortdb.warehouse.duckdb import load_duckdb

    settings: Settings = ctx.obj
    counts = load_duckdb(settings)
    for name, count in counts.items():
        typer.echo(f"raw.{name}: {count} rows")
    typer.echo(f"loaded into {database_path(settings)}")


@app.command("build")
def build_command(
    ctx: typer.Context,
    target: Annotated[str, typer.Option(help="Warehouse engine: duckdb (embedded).")] = "duckdb",
    select: Annotated[str | None, typer.Option("--select", "-s", help="dbt node selection (e.g. marts).")] = None,
) -> None:
    """Load the lake, compile the cohorts, then 'dbt build' the models and their tests."""
    from cohortdb.build_tmp import build

    settings: Settings = ctx.obj
    load_command(ctx, target=target)  # (refuses any target but duckdb)
    outcome = build(settings, target="duckdb", select=select)
    typer.echo(outcome.summary())
    for problem in outcome.problems():
        typer.echo(f"{problem.status}: {problem.resource_type} {problem.name}: {problem.message}", err=True)
    if not outcome.success:
        raise typer.Exit(1)


OutOption = Annotated[Path, typer.Option("--out", "-o", help="The file to write (replaced atomically).")]


@export_app.command("fhir")
def export_fhir_command(ctx: typer.Context, out: OutOption) -> None:
    """Every study with headers as a FHIR R4 ImagingStudy, one JSON per line (NDJSON)."""
    from cohortdb.export import export_fhir

    count = export_fhir(ctx.obj, out)
    typer.echo(f"{count} ImagingStudy resources -> {out}")


@export_app.command("manifest")
def export_manifest_command(
    ctx: typer.Context,
    cohort: Annotated[str, typer.Option(help="A cohort name (see `cohortdb cohort list`).")],
    out: OutOption,
) -> None:
    """The cohort's data files as a gen3 manifest (for `gen3 drs-pull manifest`)."""
    from cohortdb.export import export_manifest

    count = export_manifest(ctx.obj, cohort, out)
    typer.echo(f"{count} files -> {out}")


def _table_export(fmt: str) -> None:
    def command(
        ctx: typer.Context,
        model: Annotated[str, typer.Option(help="A model (imaging_studies, …) or schema.table.")],
        out: OutOption,
    ) -> None:
        from cohortdb.export import export_table

        count = export_table(ctx.obj, model, out, fmt)
        typer.echo(f"{count} rows of {model} -> {out}")

    command.__doc__ = f"A model or table as {fmt.upper()}."
    export_app.command(fmt)(command)


for _fmt in ("csv", "tsv", "parquet"):
    _table_export(_fmt)


@app.command("sql")
def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A SQL query on the warehouse (read-only).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
) -> None:
    """Run a read-only SQL query on the warehouse and print the result."""
    import duckdb

    from cohortdb.warehouse.duckdb import connect
    from cohortdb.cli.output import FORMATS, print_rows

    if fmt not in FORMATS:
        raise UserError(f"unknown --format {fmt!r}; choose one of {', '.join(FORMATS)}")
    with connect(ctx.obj, read_only=True) as con:
        try:
            result = con.execute(query)
            columns = [d[0] for d in result.description or []]
            rows = result.fetchall()
        except duckdb.Error as exc:
            raise UserError(str(exc).strip().splitlines()[0]) from None
    print_rows(columns, rows, fmt)


@app.command("demo")
def demo_command(ctx: typer.Context) -> None:
    """Generate a small synthetic corpus, ingest and load it, and show example queries."""
    from cohortdb.demo import run_demo

    run_demo(ctx.obj)


def main() -> None:
    """Console entry point: user errors become one line on stderr and exit code 2.

    Usage errors are click's (standalone mode): a short message and exit code 2.
    """
    try:
        app()
    except UserError as exc:
        err.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
