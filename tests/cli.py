"""Invoking the real ``cohortdb`` app in tests."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from cohortdb.cli import app


def run_cli(*args: str) -> Result:
    """Invoke ``cohortdb ARGS``; a user error (exit code 2) must be one ``error:`` line on stderr."""
    result = CliRunner().invoke(app, list(args))
    if result.exit_code == 2 and "error:" in result.stderr:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result


run = run_cli
