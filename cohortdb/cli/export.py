"""``cohortdb export``: warehouse content to files (FHIR, gen3 manifests, tables)."""

from __future__ import annotations

from typing import Annotated

import typer

from cohortdb.cli.common import OutOption, state
from cohortdb.warehouse.base import TABLE_FORMATS

app = typer.Typer(no_args_is_help=True, help="Write warehouse content to files (FHIR, manifests, tables).")


@app.command("fhir")
def export_fhir_command(ctx: typer.Context, out: OutOption) -> None:
    """Every study with headers as a FHIR R4 ImagingStudy, one JSON per line (NDJSON)."""
    from cohortdb.export import export_fhir

    count = export_fhir(state(ctx).warehouse(), out)
    typer.echo(f"{count} ImagingStudy resources -> {out}")


@app.command("manifest")
def export_manifest_command(
    ctx: typer.Context,
    cohort: Annotated[str, typer.Option(help="A cohort name (see `cohortdb cohort list`).")],
    out: OutOption,
) -> None:
    """The cohort's data files as a gen3 manifest (for `gen3 drs-pull manifest`)."""
    from cohortdb.export import export_manifest

    count = export_manifest(state(ctx).warehouse(), cohort, out)
    typer.echo(f"{count} files -> {out}")


def _table_export(fmt: str) -> None:
    def command(
        ctx: typer.Context,
        model: Annotated[str, typer.Option(help="A model (imaging_studies, …) or schema.table.")],
        out: OutOption,
    ) -> None:
        from cohortdb.export import export_table

        count = export_table(state(ctx).warehouse(), model, out, fmt)
        typer.echo(f"{count} rows of {model} -> {out}")

    command.__doc__ = f"A model or table as {fmt.upper()}."
    app.command(fmt)(command)


for _fmt in TABLE_FORMATS:
    _table_export(_fmt)
