"""``cohortdb demo``: the whole pipeline on generated data, then example queries."""

from __future__ import annotations

import shlex
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from cohortdb.cli.common import state
from cohortdb.cli.output import print_table
from ingest.errors import UserError


def demo_command(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option(
        "--force", help="Add the synthetic data even to a warehouse the demo did not make.")] = False,
) -> None:
    """Generate a small synthetic corpus, ingest and load it, and show example queries."""
    from cohortdb.demo import EXAMPLES, run_demo

    current = state(ctx)
    current.require_duckdb("the demo")
    run_demo(current.settings, current.cohorts_dir, echo=typer.echo, force=force)
    warehouse = current.warehouse()
    for title, query in EXAMPLES:
        typer.echo(f"\n-- {title}\n{query};")
        try:
            result = warehouse.query(query)
        except UserError as exc:  # an example must never hide the rest
            typer.echo(f"(failed: {exc})")
            continue
        print_table(result, "table")
    w = current.settings.warehouse_dir
    query = shlex.quote("select * from marts.imaging_studies limit 5")
    typer.echo(
        f"\nNext: {_this_command()} --warehouse {shlex.quote(str(w))} sql {query}\n"
        f"      (marts: imaging_studies, imaging_series, dicom_instances, patients, data_files,\n"
        f"       tag_catalog, phi_audit, reconciliation, fhir_imaging_studies; raw.* is the loaded lake)\n"
        f"      or browse it: {_this_command()} --warehouse {shlex.quote(str(w))} dashboard"
        "   (then open http://127.0.0.1:8501)\n"
        f"      or in Python: from cohortdb import Warehouse; Warehouse({str(w)!r}).sql(\"select ...\")\n"
        f"      or open {warehouse.location} with DuckDB; the Parquet lake is in {current.settings.lake_dir}"
    )


def _this_command() -> str:
    """How to run cohortdb again as it was run now, pasted into a shell in the same directory:
    ``cohortdb`` when that is on the PATH, else the script's path (``.venv/bin/cohortdb`` after
    ``make demo``), else ``python -m cohortdb`` with this interpreter."""
    script = Path(sys.argv[0])
    if script.name != "cohortdb" or not script.is_file():
        return f"{shlex.quote(sys.executable)} -m cohortdb"
    on_path = shutil.which("cohortdb")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "cohortdb"
    return shlex.quote(sys.argv[0])
