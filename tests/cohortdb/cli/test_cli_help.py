"""Help and version: `-h` everywhere, `--version`, a group alone shows its help, click's plain
metavars (not typer's `<str>` or `{query}`)."""

from __future__ import annotations

import re
from importlib.metadata import version
from typing import Any

import pytest
import typer

from cohortdb.cli import app
from tests.cli import run_cli


def test_version() -> None:
    result = run_cli("--version")
    assert result.exit_code == 0 and result.stdout.strip() == f"cohortdb {version('cohortdb')}"


def test_dash_h_is_help_at_every_level() -> None:
    for args in ((), ("sql",), ("ingest", "dicom"), ("cohort", "list"), ("export", "fhir")):
        result = run_cli(*args, "-h")
        assert result.exit_code == 0, (args, result.output)
        assert result.stdout == run_cli(*args, "--help").stdout and "Usage: " in result.stdout


def test_cohort_alone_shows_its_help() -> None:
    result = run_cli("cohort")
    assert result.exit_code == 0 and "Usage: " in result.stdout and "list" in result.stdout
    half = run_cli("cohort", "--index", "case")
    assert half.exit_code == 2 and "give --index NAME and --filter FILE" in half.stderr


def _command_paths() -> list[tuple[str, ...]]:
    """Every command and group of the app, as the words that name it (the root is ``()``)."""
    paths: list[tuple[str, ...]] = []

    def visit(command: Any, path: tuple[str, ...]) -> None:
        paths.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            visit(sub, (*path, name))

    visit(typer.main.get_command(app), ())
    return paths


# typer's metavars: "<str>", "<bool>", "<list[Path]>", "<int range>", "<table|csv|json>", "{query}"
_TYPER_METAVAR = re.compile(r"<(?:bool|str|path|int|float|list\[[^>]*\]|[\w|]+\|[\w|]+)(?: range)?>|\{\w+\}")


@pytest.mark.parametrize("path", _command_paths(), ids=lambda path: " ".join(path) or "cohortdb")
def test_help_shows_plain_metavars(path: tuple[str, ...]) -> None:
    text = run_cli(*path, "--help").stdout
    assert "Usage:" in text and not _TYPER_METAVAR.findall(text), text


def test_metavars_say_what_to_give() -> None:
    assert "sql [OPTIONS] QUERY" in " ".join(run_cli("sql", "-h").stdout.split())
    ingest_help = run_cli("ingest", "dicom", "-h").stdout
    assert "PATHS..." in ingest_help and "K/N" in ingest_help and "N [x>=1]" in ingest_help
    assert "[table|csv|json]" in run_cli("sql", "-h").stdout
    assert re.search(r"--strict\s+Exit 1", ingest_help), ingest_help  # a flag takes no value
