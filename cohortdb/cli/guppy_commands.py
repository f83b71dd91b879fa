"""The guppy CLI commands, as plain typer-annotated functions.

``ingest/cli.py`` registers them: ``ingest_app.command("guppy")(ingest_guppy)``
and ``app.command("download")(download)``. Both read the :class:`Settings`
from ``ctx.obj``; user errors are raised as :class:`UserError`.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from ingest.errors import UserError
from ingest.sources.guppy.ingest import IndexReport, Records, ingest_indices
from ingest.settings import Settings

stderr = Console(stderr=True, highlight=False)


def ingest_guppy(
    ctx: typer.Context,
    index: list[str] = typer.Option(
        ..., "--index", help="Guppy index (case, imaging_study, data_file, …); repeatable."
    ),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="Commons base URL, e.g. https://data.midrc.org."
    ),
    credentials: Path | None = typer.Option(
        None, "--credentials", help="credentials.json from the commons' profile page."
    ),
    filter_file: Path | None = typer.Option(
        None, "--filter", help="Guppy filter JSON (as the data explorer writes it)."
    ),
    fields: str | None = typer.Option(
        None, "--fields", help="Comma-separated fields (nested as parent.child); default all."
    ),
    from_json: list[Path] | None = typer.Option(
        None, "--from-json",
        help="Read records from a JSON array or NDJSON dump instead; one per --index.",
    ),
    commons: str | None = typer.Option(
        None, "--commons", help="With --from-json: where the dump came from (for _commons)."
    ),
    retries: int = typer.Option(5, "--retries", min=1, help="Attempts per request."),
    timeout: float = typer.Option(600.0, "--timeout", min=0.1, help="Per-request timeout, s."),
) -> None:
    """Ingest guppy records into lake/guppy/<index>/, replacing what was there."""
    settings: Settings = ctx.obj
    if from_json:
        if endpoint or credentials or filter_file or fields:
            raise UserError("--from-json cannot be combined with --endpoint, --credentials, "
                            "--filter or --fields")
        reports = _ingest_dumps(settings, index, from_json, commons)
    else:
        if not endpoint or not credentials:
            raise UserError("give --endpoint and --credentials, or --from-json FILE")
        reports = _ingest_commons(settings, index, endpoint, credentials, filter_file,
                                  fields, retries, timeout)
    for report in reports:
        if report.rows:
            replaced = f", replacing {report.replaced_parts} part(s)" if report.replaced_parts \
                else ""
            typer.echo(f"{report.index}: {report.rows:,} records, {report.columns} columns "
                       f"-> {report.table_dir}{replaced}")


def _ingest_dumps(
    settings: Settings, indices: list[str], dumps: list[Path], commons: str | None
) -> list[IndexReport]:
    from ingest.sources.guppy.dump import read_dump

    if len(dumps) != len(indices):
        raise UserError(f"give one --from-json per --index ({len(indices)} index(es), "
                        f"{len(dumps)} file(s))")
    by_index = dict(zip(indices, dumps, strict=True))

    def fetch(index: str) -> Records:
        with stderr.status(f"reading {by_index[index]}"):
            return read_dump(by_index[index], index)

    source = commons or ",".join(d.resolve().as_uri() for d in dumps)
    return ingest_indices(settings, indices, fetch, commons=source, warn=_warn)


def _ingest_commons(
    settings: Settings,
    indices: list[str],
    endpoint: str,
    credentials_path: Path,
    filter_file: Path | None,
    fields: str | None,
    retries: int,
    timeout: float,
) -> list[IndexReport]:
    from ingest.sources.guppy.client import GuppyClient, RetryPolicy, load_credentials
    from ingest.sources.guppy.filter_file import load_filter

    filter_object = load_filter(filter_file) if filter_file else None
    field_list = _split_fields(fields)
    credentials = load_credentials(credentials_path)
    client = GuppyClient(endpoint, credentials, RetryPolicy(attempts=retries, timeout=timeout))
    with stderr.status(f"authenticating with {client.endpoint}"):
        client.authenticate()

    def fetch(index: str) -> Records:
        with stderr.status(f"counting {index} records"):
            expected = client.count(index, filter_object)
        if expected == 0:
            return [], None
        with stderr.status(f"downloading {expected:,} {index} records"):
            records = client.download(index, field_list, filter_object)
        if len(records) != expected:
            _warn(f"guppy counted {expected:,} {index} records but sent {len(records):,}")
        return records, None

    return ingest_indices(settings, indices, fetch, commons=client.endpoint, warn=_warn)


def _split_fields(fields: str | None) -> list[str] | None:
    if fields is None:
        return None
    names = [name.strip() for name in fields.split(",") if name.strip()]
    if not names:
        raise UserError("--fields is empty; omit it to get every field")
    return names


def _warn(message: str) -> None:
    stderr.print(f"[yellow]warning:[/yellow] {message}", soft_wrap=True)



def download(
    ctx: typer.Context,
    index: str = typer.Option("data_file", "--index", help="The guppy index listing files."),
    endpoint: str = typer.Option(..., "--endpoint", help="Commons base URL (https)."),
    credentials: Path = typer.Option(..., "--credentials", help="credentials.json."),
    filter_file: Path | None = typer.Option(
        None, "--filter", help="Guppy filter selecting the files."),
    object_ids_file: Path | None = typer.Option(
        None, "--object-ids", help="File of object ids (one a line, or a JSON array)."),
    out: Path = typer.Option(..., "--out", help="Directory to download into."),
    keep_zips: bool = typer.Option(False, "--keep-zips", help="Do not unpack zip files."),
    ingest_headers: bool = typer.Option(
        False, "--ingest", help="Ingest the DICOM headers of the downloaded files."),
    retries: int = typer.Option(5, "--retries", min=1, help="Attempts per request."),
) -> None:
    """Download data files through DRS (as gen3 drs-pull does), optionally ingesting them."""
    from rich.progress import Progress

    from ingest.sources.guppy.client import GuppyClient, RetryPolicy, load_credentials
    from ingest.sources.guppy.download import download_objects, read_object_ids
    from ingest.sources.guppy.filter_file import load_filter
    from ingest.sources.guppy.ingest import check_index_name

    settings: Settings = ctx.obj
    if (filter_file is None) == (object_ids_file is None):
        raise UserError("give exactly one of --filter and --object-ids")
    check_index_name(index)
    filter_object = load_filter(filter_file) if filter_file else None
    client = GuppyClient(endpoint, load_credentials(credentials), RetryPolicy(attempts=retries))
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
            _warn(f"no {index} records with an object_id match the filter (or access is "
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
