"""``cohortdb load``, ``build`` and ``sql``: the warehouse itself."""

from __future__ import annotations

from typing import Annotated

import click
import typer
from typer.core import TyperCommand

from cohortdb.cli.common import FormatOption, LimitOption, OutputFormat, TargetOption, state
from cohortdb.cli.output import print_table
from cohortdb.warehouse import Target


def _print_loaded(counts: dict[str, int], location: str) -> None:
    for name, count in counts.items():
        typer.echo(f"raw.{name}: {count} rows")
    typer.echo(f"loaded into {location}")


def load_command(
    ctx: typer.Context,
    target: TargetOption = Target.DUCKDB,
    project: Annotated[str | None, typer.Option("--project", metavar="P", help=(
        "BigQuery project (default: $COHORTDB_BQ_PROJECT)."))] = None,
    dataset_prefix: Annotated[str | None, typer.Option("--dataset-prefix", metavar="X", help=(
        "BigQuery datasets X_raw, X_marts, … (default: $COHORTDB_BQ_DATASET_PREFIX)."))] = None,
    location: Annotated[str | None, typer.Option("--location", metavar="L", help="BigQuery location.")] = None,
    api_endpoint: Annotated[str | None, typer.Option("--api-endpoint", metavar="URL", help=(
        "BigQuery API endpoint, e.g. an emulator's (default: $BIGQUERY_EMULATOR_HOST, else Google's)."))] = None,
) -> None:
    """Load the lake into the warehouse's raw schema (replaces it; idempotent)."""
    from cohortdb.build import load

    current = state(ctx)
    if target is Target.BIGQUERY:
        from cohortdb.warehouse.bigquery import config_from, load_bigquery

        config = config_from(project, dataset_prefix, location, api_endpoint)
        counts = load_bigquery(current.settings, config)
        _print_loaded(counts, f"{config.project}.{config.dataset('raw')}")
        return
    _print_loaded(load(current.settings, target), current.warehouse(target).location)


def build_command(
    ctx: typer.Context,
    target: TargetOption = Target.DUCKDB,
    select: Annotated[str | None, typer.Option("--select", "-s", help="dbt node selection (e.g. marts).")] = None,
) -> None:
    """Load the lake, compile the cohorts, 'dbt build' the models and their tests, then
    publish the new warehouse (readers keep the previous one until then)."""
    from cohortdb.build import build

    current = state(ctx)
    built = build(current.settings, current.cohorts_dir, target=target, select=select)
    _print_loaded(built.loaded, current.warehouse(target).location)
    typer.echo(built.outcome.summary())
    for line in built.outcome.report():
        typer.echo(line, err=True)
    if built.failed_path is not None:
        typer.echo(f"the previous warehouse stays live; the failed build is in {built.failed_path}", err=True)
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
