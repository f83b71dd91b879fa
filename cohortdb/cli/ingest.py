"""``cohortdb ingest``: sources into the Parquet lake (DICOM files, guppy records)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cohortdb.cli.common import counted, progress, state, stderr, warn
from ingest.errors import UserError
from ingest.settings import Settings
from ingest.sources.guppy.ingest import IndexReport, Records, ingest_indices

if TYPE_CHECKING:
    from ingest.sources.dicomweb.client import Auth

app = typer.Typer(no_args_is_help=True, help="Read sources into the Parquet lake.")


@app.command("dicom")
def ingest_dicom_command(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="DICOM files, directories (recursive) and zip archives.")],
    full: Annotated[bool, typer.Option("--full", help=(
        "Re-read every source, even unchanged ones; on a lake ingested with another --shard N "
        "(or without), first drop every DICOM row ingested so far."
    ))] = False,
    workers: Annotated[int | None, typer.Option(min=1, help="Processes (default: every core).")] = None,
    shard: Annotated[str | None, typer.Option("--shard", metavar="K/N", help=(
        "Read only shard K (from 1) of N: the sources whose path hashes to K. Run K = 1..N, "
        "on one machine or several sharing the warehouse, at the same time if you like; "
        "together they ingest what one run would. Keep N for later runs."
    ))] = None,
    strict: Annotated[bool, typer.Option("--strict", help=(
        "Exit 1 when any source under PATHS could not be read, in this run or an earlier one "
        "(a truncated instance, read in part, is a warning)."))] = False,
) -> None:
    """Ingest DICOM headers (every element, sequences flattened); incremental by default."""
    from ingest.sources.files.ingest import errors_recorded, ingest_dicom
    from ingest.sources.files.shard import parse_shard

    settings = state(ctx).settings
    chosen_shard = parse_shard(shard) if shard is not None else None
    with progress() as bar:
        task = bar.add_task("reading DICOM headers", total=None)
        summary = ingest_dicom(
            settings, paths, full=full, workers=workers, shard=chosen_shard,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(summary.line())
    if summary.n_sources == 0 and chosen_shard is None:  # (a shard may own none of them)
        typer.echo(f"warning: no files found in {', '.join(str(p) for p in paths)}", err=True)
    # --strict: the errors recorded for these paths, of this run or of an earlier one (unchanged since)
    n_errors = errors_recorded(settings, paths, chosen_shard) if strict else summary.n_errors
    if n_errors > summary.n_errors:
        typer.echo(f"{counted(n_errors - summary.n_errors, 'error')} of earlier runs "
                   "still recorded for these paths (their sources are unchanged since)", err=True)
    if n_errors or summary.n_warnings:
        where = settings.dicom_lake / "errors"
        problems = [counted(n, noun) for n, noun in ((n_errors, "error"), (summary.n_warnings, "warning")) if n]
        typer.echo(f"see raw.dicom_errors after `cohortdb load` (or {where}) for the {' and '.join(problems)}",
                   err=True)
    if strict and n_errors:
        raise typer.Exit(1)


@app.command("guppy")
def ingest_guppy(
    ctx: typer.Context,
    index: Annotated[list[str], typer.Option(
        "--index", help="Guppy index (case, imaging_study, data_file, …); repeatable.")],
    endpoint: Annotated[str | None, typer.Option(
        "--endpoint", help="Commons base URL, e.g. https://data.midrc.org.")] = None,
    credentials: Annotated[Path | None, typer.Option(
        "--credentials", help="credentials.json from the commons' profile page.")] = None,
    filter_file: Annotated[Path | None, typer.Option(
        "--filter", help="Guppy filter JSON (as the data explorer writes it).")] = None,
    fields: Annotated[str | None, typer.Option(
        "--fields", help="Comma-separated fields (nested as parent.child); default all.")] = None,
    from_json: Annotated[list[Path] | None, typer.Option(
        "--from-json", help="Read records from a JSON array or NDJSON dump instead; one per --index.")] = None,
    commons: Annotated[str | None, typer.Option(
        "--commons", help="With --from-json: where the dump came from (for _commons).")] = None,
    retries: Annotated[int, typer.Option("--retries", min=1, help="Attempts per request.")] = 5,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Per-request timeout, s.")] = 600.0,
) -> None:
    """Ingest guppy records into lake/guppy/<index>/, replacing what was there."""
    settings = state(ctx).settings
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
    return ingest_indices(settings, indices, fetch, commons=source, warn=warn)


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
    from ingest.sources.guppy.client import DEFAULT_RETRY, GuppyClient, load_credentials
    from ingest.sources.guppy.filter_file import load_filter

    filter_object = load_filter(filter_file) if filter_file else None
    field_list = _split_fields(fields)
    credentials = load_credentials(credentials_path)
    client = GuppyClient(endpoint, credentials, replace(DEFAULT_RETRY, attempts=retries, timeout=timeout))
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
            warn(f"guppy counted {expected:,} {index} records but sent {len(records):,}")
        return records, None

    return ingest_indices(settings, indices, fetch, commons=client.endpoint, warn=warn, live=True)


def _split_fields(fields: str | None) -> list[str] | None:
    if fields is None:
        return None
    names = [name.strip() for name in fields.split(",") if name.strip()]
    if not names:
        raise UserError("--fields is empty; omit it to get every field")
    return names


@app.command("dicomweb")
def ingest_dicomweb_command(
    ctx: typer.Context,
    url: Annotated[str, typer.Argument(help=(
        "The DICOMweb root: http://host:8042/dicom-web (Orthanc), or "
        "https://healthcare.googleapis.com/v1/projects/P/locations/L/datasets/D/dicomStores/S/dicomWeb."))],
    study: Annotated[list[str] | None, typer.Option("--study", help=(
        "Only this StudyInstanceUID; repeatable. A given study gone from the server is removed from the lake."))]
    = None,
    modality: Annotated[str | None, typer.Option("--modality", metavar="CT,MR,…", help=(
        "Only studies with one of these modalities (ModalitiesInStudy)."))] = None,
    since: Annotated[str | None, typer.Option("--since", metavar="YYYYMMDD", help=(
        "Only studies dated (StudyDate) on or after this day."))] = None,
    user: Annotated[str | None, typer.Option("--user", help="HTTP Basic user (with --password-env).")] = None,
    password_env: Annotated[str | None, typer.Option("--password-env", metavar="VAR", help=(
        "Name of the environment variable holding the password (never the password itself)."))] = None,
    token_env: Annotated[str | None, typer.Option("--token-env", metavar="VAR", help=(
        "Name of the environment variable holding a bearer token, e.g. "
        "export TOKEN=$(gcloud auth print-access-token) for Google Cloud Healthcare."))] = None,
    concurrency: Annotated[int | None, typer.Option("--concurrency", min=1, max=64, help=(
        "Worker processes, each reading a batch of studies over its own connections "
        "(1: none; default: one per core)."))] = None,
    bulk_max_bytes: Annotated[int, typer.Option("--bulk-max-bytes", min=0, help=(
        "Fetch binary values up to this size from their BulkDataURI, so their hex matches a file's "
        "(0: fetch none); larger ones keep their URI."))] = 64,
    full: Annotated[bool, typer.Option("--full", help="Read every listed study, even unchanged ones.")] = False,
    page_size: Annotated[int, typer.Option("--page-size", min=1, hidden=True, help="Studies per QIDO page.")]
    = 500,
    retries: Annotated[int, typer.Option("--retries", min=1, help="Attempts per request.")] = 4,
    timeout: Annotated[float, typer.Option("--timeout", min=0.1, help="Per-request timeout, s.")] = 120.0,
) -> None:
    """Ingest DICOM headers from a DICOMweb server (QIDO-RS + WADO-RS metadata, no pixels); incremental."""
    from ingest.sources.dicomweb.client import DEFAULT_RETRY, DicomWebClient
    from ingest.sources.dicomweb.ingest import ingest_dicomweb

    settings = state(ctx).settings
    auth = _dicomweb_auth(user, password_env, token_env)
    client = DicomWebClient(url, auth, replace(DEFAULT_RETRY, attempts=retries, timeout=timeout))
    modalities = [m for m in (modality or "").split(",") if m.strip()] or None
    if modality is not None and not modalities:
        raise UserError("--modality is empty; omit it to read every modality")
    with progress() as bar:
        task = bar.add_task("reading DICOMweb metadata", total=None)
        summary = ingest_dicomweb(
            settings, client, study_uids=study or None, modalities=modalities, since=since,
            concurrency=concurrency, bulk_max_bytes=bulk_max_bytes, full=full, page_size=page_size,
            on_progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    typer.echo(summary.line())
    if summary.n_listed == 0:
        typer.echo(f"warning: no studies found at {client.url}", err=True)
    if summary.n_errors:
        where = settings.dicom_lake / "errors"
        typer.echo(f"see raw.dicom_errors after `cohortdb load` (or {where}) for the "
                   f"{counted(summary.n_errors, 'error')}", err=True)


def _dicomweb_auth(user: str | None, password_env: str | None, token_env: str | None) -> Auth:
    """Credentials from the environment variables named on the command line (never from arguments)."""
    from ingest.sources.dicomweb.client import Auth

    if token_env and (user or password_env):
        raise UserError("give either --user with --password-env, or --token-env, not both")
    if token_env:
        return Auth(token=_secret(token_env, "--token-env"))
    if password_env and not user:
        raise UserError("--password-env needs --user")
    if user:
        if not password_env:
            raise UserError("--user needs --password-env VAR, the environment variable holding the password")
        return Auth(user=user, password=_secret(password_env, "--password-env"))
    return Auth()


def _secret(variable: str, option: str) -> str:
    value = os.environ.get(variable)
    if not value:
        raise UserError(f"{option} {variable}: that environment variable is not set or empty")
    return value
