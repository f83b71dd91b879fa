"""Invoking the CLI in tests: the guppy commands wired as ingest/cli.py does, or the real app."""

from __future__ import annotations

import typer
from typer.testing import CliRunner, Result

from ingest.errors import UserError
from cohortdb.cli.guppy_commands import download, ingest_guppy
from ingest.settings import resolve_settings


def make_app() -> typer.Typer:
    app = typer.Typer()
    ingest_app = typer.Typer()

    @app.callback()
    def main(ctx: typer.Context, warehouse: str = typer.Option(None, "--warehouse")) -> None:
        ctx.obj = resolve_settings(warehouse)

    app.add_typer(ingest_app, name="ingest")
    ingest_app.command("guppy")(ingest_guppy)
    app.command("download")(download)
    return app


def run(*args: str) -> Result:
    """Invoke the CLI; a UserError becomes exit code 2 and one line on stderr, as on main."""
    return _invoke(make_app(), args)


def run_cli(*args: str) -> Result:
    """Invoke the real ``cohortdb`` app (ingest/cli.py), errors mapped as by :func:`run`."""
    from cohortdb.cli.main import app

    return _invoke(app, args)


def _invoke(app: typer.Typer, args: tuple[str, ...]) -> Result:
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, UserError):
        assert "\n" not in str(result.exception), str(result.exception)
        result.exit_code = 2
    return result
