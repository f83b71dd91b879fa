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
from ingest.guppy.ingest import IndexReport, Records, ingest_indices
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
    from ingest.guppy.dump import read_dump

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
    from ingest.guppy.client import GuppyClient, RetryPolicy, load_credentials
    from ingest.guppy.filter_file import load_filter

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



def download(ctx: typer.Context) -> None:
    """Download data files through DRS (placeholder until implemented)."""
    raise UserError("download is not implemented yet")
