"""``cohortdb load``, ``build`` and ``sql``: the warehouse itself."""

from __future__ import annotations

from typing import Annotated

import click
import typer
from typer.core import TyperCommand

from cohortdb.cli.common import FormatOption, LimitOption, OutputFormat, state
from cohortdb.cli.output import print_table


def _print_loaded(counts: dict[str, int], location: str) -> None:
    for name, count in counts.items():
        typer.echo(f"raw.{name}: {count} rows")
    typer.echo(f"loaded into {location}")


def load_command(ctx: typer.Context) -> None:
    """Load the lake into the warehouse's raw schema (replaces it; idempotent).

    On --target bigquery (with --project and --dataset-prefix) the tables go to the dataset
    X_raw, each loaded beside the live one and swapped in once all have loaded."""
    from cohortdb.build import load

    current = state(ctx)
    warehouse = current.warehouse()
    _print_loaded(load(current.settings, warehouse), warehouse.location)


def build_command(
    ctx: typer.Context,
    select: Annotated[str | None, typer.Option("--select", "-s", help="dbt node selection (e.g. marts).")] = None,
) -> None:
    """Load the lake, compile the cohorts, 'dbt build' the models and their tests, then
    publish the new warehouse (readers keep the previous one until then; on BigQuery each
    model's table is replaced as dbt builds it)."""
    from cohortdb.build import build

    current = state(ctx)
    warehouse = current.warehouse()
    built = build(current.settings, current.cohorts_dir, warehouse, select=select)
    _print_loaded(built.loaded, warehouse.location)
    typer.echo(built.outcome.summary())
    for line in built.outcome.report():
        typer.echo(line, err=True)
    if built.failed_at is not None:
        typer.echo(f"the previous warehouse stays live; the failed build is in {built.failed_at}", err=True)
    if not built.outcome.success:
        raise typer.Exit(1)


def sql_first(args: list[str]) -> list[str]:
    """``args`` with every argument that starts with a dash and holds a space or a line break (a
    query opening with a ``--`` comment, which is no option) moved after ``--``, where click takes
    it as the query."""
    separator = args.index("--") if "--" in args else len(args)
    head, tail = args[:separator], args[separator + 1:]
    queries = [arg for arg in head if arg.startswith("-") and any(c.isspace() for c in arg)]
    if not queries:
        return args
    return [arg for arg in head if arg not in queries] + ["--", *queries, *tail]


class _SqlCommand(TyperCommand):
    """``sql``: its query may open with a ``--`` comment (:func:`sql_first`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, sql_first(args))


def sql_command(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="A SQL query on the warehouse (read-only).")],
    fmt: FormatOption = OutputFormat.TABLE,
    limit: LimitOption = None,
    allow_files: Annotated[bool, typer.Option(
        "--allow-files", help="Let the query use DuckDB's file functions (read_csv, COPY … TO) on this machine.",
    )] = False,
) -> None:
    """Run one read-only SQL query (a SELECT) on the warehouse and print the result.

    The query cannot change the warehouse, read or write files (unless --allow-files),
    attach databases or change settings. A table shows the first 40 rows (--limit N more),
    as column = value lines when its columns cannot fit the terminal.
    """
    print_table(state(ctx).warehouse().user_query(query, allow_files=allow_files), fmt.value, limit=limit)


def register(app: typer.Typer) -> None:
    """Add ``load``, ``build`` and ``sql`` to the root app."""
    app.command("load")(load_command)
    app.command("build")(build_command)
    app.command("sql", cls=_SqlCommand)(sql_command)
