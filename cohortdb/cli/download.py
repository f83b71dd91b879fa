"""``cohortdb download``: data files through DRS, as ``gen3 drs-pull`` does."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from cohortdb.cli.common import state, stderr, warn
from ingest.errors import UserError


def download(
    ctx: typer.Context,
    endpoint: Annotated[str, typer.Option("--endpoint", help="Commons base URL (https).")],
    credentials: Annotated[Path, typer.Option("--credentials", help="credentials.json.")],
    out: Annotated[Path, typer.Option("--out", help="Directory to download into.")],
    index: Annotated[str, typer.Option("--index", help="The guppy index listing files.")] = "data_file",
    filter_file: Annotated[Path | None, typer.Option("--filter", help="Guppy filter selecting the files.")] = None,
    object_ids_file: Annotated[Path | None, typer.Option(
        "--object-ids", help="File of object ids (one a line, or a JSON array).")] = None,
    keep_zips: Annotated[bool, typer.Option("--keep-zips", help="Do not unpack zip files.")] = False,
    ingest_headers: Annotated[bool, typer.Option(
        "--ingest", help="Ingest the DICOM headers of the downloaded files.")] = False,
    retries: Annotated[int, typer.Option("--retries", min=1, help="Attempts per request.")] = 5,
) -> None:
    """Download data files through DRS (as gen3 drs-pull does), optionally ingesting them."""
    from rich.progress import Progress

    from ingest.sources.guppy.client import DEFAULT_RETRY, GuppyClient, load_credentials
    from ingest.sources.guppy.download import download_objects, read_object_ids
    from ingest.sources.guppy.filter_file import load_filter
    from ingest.sources.guppy.ingest import check_index_name

    settings = state(ctx).settings
    if (filter_file is None) == (object_ids_file is None):
        raise UserError("give exactly one of --filter and --object-ids")
    check_index_name(index)
    filter_object = load_filter(filter_file) if filter_file else None
    client = GuppyClient(endpoint, load_credentials(credentials), replace(DEFAULT_RETRY, attempts=retries))
    if not client.endpoint.startswith("https://"):
        raise UserError("DRS downloads need an https:// --endpoint (the SDK only speaks https)")
    if object_ids_file is not None:
        object_ids = read_object_ids(object_ids_file)
    else:
        with stderr.status(f"listing {index} files"):
            rows = client.download(index, ["object_id"], filter_object)
        object_ids = list(dict.fromkeys(
            oid for row in rows for oid in _as_list(row.get("object_id"))))
        if not object_ids:
            warn(f"no {index} records with an object_id match the filter (or access is "
                  "missing); nothing to download")
            return
    client.authenticate()
    with Progress(console=stderr, transient=True) as progress:
        task = progress.add_task("downloading", total=len(object_ids))
        written, failures = download_objects(
            client, object_ids, out, unzip=not keep_zips,
            advance=lambda _: progress.advance(task))
    typer.echo(f"downloaded {len(written)} of {len(object_ids)} object(s) into {out}")
    if ingest_headers and written:
        from ingest.sources.files.ingest import ingest_dicom

        with stderr.status(f"reading the DICOM headers of {len(written)} download(s)"):
            summary = ingest_dicom(settings, written)
        typer.echo(f"ingested {summary.line()}")
    if failures:
        more = f" (+{len(failures) - 1} more)" if len(failures) > 1 else ""
        raise UserError(f"{len(failures)} download(s) failed: {failures[0]}{more}")


def _as_list(value: object) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    return [str(item) for item in items]
