"""Invoking the real ``cohortdb`` app in tests."""

from __future__ import annotations

from typer.testing import CliRunner, Result

from cohortdb.cli import app


def run_cli(*args: str) -> Result:
    """Invoke ``cohortdb ARGS``; a user error (exit code 2) must be one ``error:`` line on stderr
    (a SQL error may go on with DuckDB's own lines: "Did you mean", the query line and its caret)."""
    result = CliRunner().invoke(app, list(args))
    if result.exit_code == 2 and "error:" in result.stderr:
        lines = result.stderr.strip().splitlines()
        assert lines[0].startswith("error: ") and result.stderr.count("error:") == 1, result.stderr
        assert len(lines) == 1 or "Error: " in lines[0], result.stderr  # (DuckDB's "Catalog Error: …")
    return result


run = run_cli
