"""``cohortdb demo``: the whole pipeline on generated data, then example queries."""

from __future__ import annotations

import typer

from cohortdb.cli.common import state
from cohortdb.cli.output import print_table
from ingest.errors import UserError


def demo_command(ctx: typer.Context) -> None:
    """Generate a small synthetic corpus, ingest and load it, and show example queries."""
    from cohortdb.demo import EXAMPLES, run_demo

    current = state(ctx)
    run_demo(current.settings, current.cohorts_dir, echo=typer.echo)
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
    typer.echo(
        f"\nNext: cohortdb --warehouse {w} sql \"select * from marts.imaging_studies limit 5\"\n"
        f"      (marts: imaging_studies, imaging_series, dicom_instances, patients, data_files,\n"
        f"       tag_catalog, phi_audit, reconciliation, fhir_imaging_studies; raw.* is the loaded lake)\n"
        f"      or in Python: from cohortdb import Warehouse; Warehouse(\"{w}\").sql(\"select ...\")\n"
        f"      or open {warehouse.location} with DuckDB; the Parquet lake is in {current.settings.lake_dir}"
    )
