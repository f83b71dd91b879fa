"""``cohortdb load``, ``build`` and ``sql``: the warehouse itself."""

from __future__ import annotations

from typing import Annotated

import typer

from cohortdb.cli.common import FormatOption, OutputFormat, TargetOption, state
from cohortdb.cli.output import print_table
from cohortdb.warehouse import Target


def load_command(ctx: typer.Context, target: TargetOption = Target.DUCKDB) -> None:
    """Load the lake into the warehouse's raw schema (replaces it; idempotent)."""
    warehouse = state(ctx).warehouse(target)
    counts = warehouse.load()
    for name, count in counts.items():
        typer.echo(f"raw.{name}: {count} rows")
    typer.echo(f"loaded into {warehouse.location}")


def build_command(
    ctx: typer.Context,
    target: TargetOption = Target.DUCKDB,
    select: Annotated[str | None, typer.Option("--select", "-s", help="dbt node selection (e.g. marts).")] = None,
) -> None:
    """Load the lake, compile the cohorts, then 'dbt build' the models and their tests."""
    from cohortdb.dbt import build

    load_command(ctx, target=target)
    current = state(ctx)
    outcome = build(current.settings, current.cohorts_dir, target=target, select=select)
    typer.echo(outcome.summary())
    for problem in outcome.problems():
        typer.echo(f"{problem.status}: {problem.resource_type} {problem.name}: {problem.message}", err=True)
    if not outcome.success:
        raise typer.Exit(1)


def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A SQL query on the warehouse (read-only).")],
    fmt: FormatOption = OutputFormat.TABLE,
) -> None:
    """Run a read-only SQL query on the warehouse and print the result."""
    print_table(state(ctx).warehouse().query(query), fmt.value)


def register(app: typer.Typer) -> None:
    """Add ``load``, ``build`` and ``sql`` to the root app."""
    app.command("load")(load_command)
    app.command("build")(build_command)
    app.command("sql")(sql_command)
