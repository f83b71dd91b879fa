"""``cohortdb cohort``: guppy filters evaluated on the warehouse, and the saved cohorts.

Without a subcommand it prints the records of ``raw.guppy_<--index>`` that
``--filter`` selects; ``cohortdb cohort list`` shows the saved definitions.
The selecting itself is :mod:`cohortdb.cohorts.select` (no typer there).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated

import pyarrow as pa
import typer

from cohortdb.cli.common import FormatOption, LimitOption, OutputFormat, state
from cohortdb.cli.output import print_rows, print_table
from ingest.errors import UserError

app = typer.Typer(help="Select cohorts: guppy filters evaluated on the warehouse.")


class CohortFormat(enum.StrEnum):
    """How selected records are printed (``ids``: submitter_id, one a line, sorted)."""

    TABLE = "table"
    IDS = "ids"
    CSV = "csv"
    JSON = "json"


@app.callback(invoke_without_command=True)
def cohort_command(
    ctx: typer.Context,
    index: Annotated[str | None, typer.Option(
        "--index", help="Guppy index: case, imaging_study, data_file, …")] = None,
    filter_file: Annotated[Path | None, typer.Option(
        "--filter", help="Guppy filter JSON (as the MIDRC data explorer writes it).")] = None,
    fmt: Annotated[CohortFormat, typer.Option(
        "--format", "-f", help="table, ids (submitter_id, one a line, sorted), csv or json.")] = CohortFormat.TABLE,
    limit: LimitOption = None,
) -> None:
    """Print the records of raw.guppy_<index> that the guppy filter selects."""
    if ctx.invoked_subcommand is not None:
        return
    from cohortdb.cohorts.select import select_records
    from ingest.sources.guppy.filter_file import load_filter

    if index is None and filter_file is None:  # `cohortdb cohort` alone
        typer.echo(ctx.get_help())
        return
    if index is None or filter_file is None:
        raise UserError("give --index NAME and --filter FILE "
                        "(e.g. cohortdb cohort --index imaging_study --filter f.json)")
    filter_ = load_filter(filter_file)
    records = select_records(state(ctx).warehouse(), index, filter_, ids_only=fmt is CohortFormat.IDS)
    if fmt is CohortFormat.IDS:
        for submitter_id in records.column(0).slice(0, limit).to_pylist():
            typer.echo(submitter_id)
    elif fmt is CohortFormat.TABLE:
        print_table(_without_empty_columns(records), fmt.value, limit=limit)
    else:
        print_table(records, fmt.value, limit=limit)


def _without_empty_columns(records: pa.Table) -> pa.Table:
    """``records`` without the columns that are null in every row (but the first)."""
    return records.select([index for index, column in enumerate(records.columns)
                           if index == 0 or column.null_count < records.num_rows])


@app.command("list")
def list_command(ctx: typer.Context, fmt: FormatOption = OutputFormat.TABLE, limit: LimitOption = None) -> None:
    """The saved cohorts (cohorts/*.yml|json) and their sizes in the built warehouse."""
    from cohortdb.cohorts.definitions import load_cohorts
    from cohortdb.cohorts.select import built_sizes

    current = state(ctx)
    cohorts = load_cohorts(current.cohorts_dir)
    sizes = built_sizes(current.warehouse(), [c.name for c in cohorts])
    rows = [(c.name, c.index, sizes.get(c.name), len(c.dicom_conditions), c.description,
             str(c.path.name if c.path else "")) for c in cohorts]
    print_rows(["name", "index", "rows_built", "dicom_conditions", "description", "file"], rows, fmt.value,
               limit=limit)
