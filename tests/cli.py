"""Invoking the real ``cohortdb`` app in tests: in-process, or as a process of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from typer.testing import CliRunner, Result

from cohortdb.cli import app

ROOT = Path(__file__).resolve().parents[1]


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


def run_process(*args: str | Path, cwd: Path, pythonpath: Sequence[Path] = (),
                env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m cohortdb ARGS`` in ``cwd`` (this checkout first on the path, after
    ``pythonpath``); a user error (exit code 2) must be one ``error:`` line on stderr."""
    path = os.pathsep.join(str(p) for p in [*pythonpath, ROOT])
    environment = {**os.environ, **(env or {}), "PYTHONPATH": path}
    result = subprocess.run([sys.executable, "-m", "cohortdb", *map(str, args)], cwd=cwd, env=environment,
                            capture_output=True, text=True, timeout=600)
    if result.returncode == 2 and "error:" in result.stderr:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    return result
