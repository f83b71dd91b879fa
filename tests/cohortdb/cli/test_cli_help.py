"""Help and version: `-h` everywhere, `--version`, a group alone shows its help."""

from __future__ import annotations

from importlib.metadata import version

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
