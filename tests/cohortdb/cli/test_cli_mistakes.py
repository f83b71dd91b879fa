"""A user's mistakes end in one line (``error: …``, exit 2), never a traceback nor a silent success."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ingest.settings import Settings
from tests.cli import run_cli


def _one_error_line(result) -> str:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_export_to_an_existing_directory(built: Settings, tmp_path: Path) -> None:
    result = run_cli("--warehouse", str(built.warehouse_dir), "export", "csv", "--model", "imaging_studies",
                     "--out", str(tmp_path))
    assert "is a directory" in _one_error_line(result)


def test_a_warehouse_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = run_cli("--warehouse", str(tmp_path / "notes.txt"), "sql", "select 1")
    assert "is a file" in _one_error_line(result)


def test_load_and_build_where_nothing_was_ingested(tmp_path: Path) -> None:
    for command in ("load", "build"):
        result = run_cli("--warehouse", str(tmp_path / "typo"), command)
        assert "nothing ingested" in _one_error_line(result)
    assert not (tmp_path / "typo" / "warehouse.duckdb").exists()


def test_workers_must_be_positive(tmp_path: Path) -> None:
    result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", "--workers", "-3", str(tmp_path))
    assert result.exit_code == 2 and "greater than or equal to 1" in result.output
    assert not (tmp_path / "w" / "lake").exists()


def test_the_demo_never_adds_synthetic_data_to_a_users_warehouse(tmp_path: Path) -> None:
    users = tmp_path / "mine"
    (users / "lake").mkdir(parents=True)
    result = run_cli("--warehouse", str(users), "demo")
    assert "not a demo warehouse" in _one_error_line(result) and "--force" in result.stderr
    assert [p.name for p in users.iterdir()] == ["lake"]


def test_ingest_of_an_empty_directory_says_so(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", "--workers", "1", str(tmp_path / "empty"))
    assert result.exit_code == 0 and "no files found" in result.stderr


def test_a_query_may_open_with_a_comment(built: Settings) -> None:
    warehouse = str(built.warehouse_dir)
    answered = run_cli("-w", warehouse, "sql", "-- the answer\nselect 42 as answer", "--format", "csv")
    assert answered.exit_code == 0 and answered.stdout.splitlines() == ["answer", "42"], answered.output
    for empty in ("-- nothing", "", "  ;  "):
        assert "the query is empty" in _one_error_line(run_cli("-w", warehouse, "sql", empty))


def test_a_warehouse_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "empty").mkdir()
    cases = [
        (tmp_path / "notes.txt" / "w", f"cannot be created: {tmp_path / 'notes.txt'} is a file"),
        (tmp_path / ("x" * 300), "File name too long"),
        (Path("/proc/cohortdb-warehouse"), "cannot create the warehouse directory /proc/cohortdb-warehouse"),
    ]
    for warehouse, message in cases:
        result = run_cli("--warehouse", str(warehouse), "ingest", "dicom", "--workers", "1", str(tmp_path / "empty"))
        assert message in _one_error_line(result)


def test_no_warehouse_says_what_to_run(tmp_path: Path) -> None:
    typo = _one_error_line(run_cli("--warehouse", str(tmp_path / "typo"), "sql", "select 1"))
    assert "nothing was ingested" in typo and "check --warehouse" in typo and "cohortdb build" in typo
    (tmp_path / "ingested" / "lake").mkdir(parents=True)
    unbuilt = _one_error_line(run_cli("--warehouse", str(tmp_path / "ingested"), "export", "csv",
                                      "--model", "imaging_studies", "--out", str(tmp_path / "x.csv")))
    assert "run `cohortdb build`" in unbuilt


def test_strict_counts_the_errors_an_earlier_run_left(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "notes.txt").write_text("not DICOM")
    args = ("--warehouse", str(tmp_path / "w"), "ingest", "dicom", "--workers", "1", "--strict", str(source))
    assert run_cli(*args).exit_code == 1
    again = run_cli(*args)  # notes.txt is unchanged: not read again, still not DICOM
    assert again.exit_code == 1 and "0 errors" in again.stdout, again.output
    assert "1 error of earlier runs still recorded" in again.stderr
    (source / "notes.txt").unlink()
    assert run_cli(*args).exit_code == 0


def test_bigquery_mistakes_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COHORTDB_BQ_PROJECT", "COHORTDB_BQ_DATASET_PREFIX", "COHORTDB_TARGET"):
        monkeypatch.delenv(name, raising=False)
    w = str(tmp_path / "w")
    assert "--project and --dataset-prefix" in _one_error_line(run_cli("-w", w, "sql", "select 1", "--target",
                                                                       "bigquery"))
    line = _one_error_line(run_cli("-w", w, "--target", "bigquery", "--project", "p", "--dataset-prefix", "x",
                                   "demo"))
    assert "embedded DuckDB warehouse only" in line, line
    assert "--project and --dataset-prefix" in _one_error_line(run_cli("-w", w, "--target", "bigquery", "dashboard"))
    assert not (tmp_path / "w").exists()
    monkeypatch.setenv("COHORTDB_TARGET", "bigquery")
    assert "--project and --dataset-prefix" in _one_error_line(run_cli("-w", w, "sql", "select 1"))
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{closed.getsockname()[1]}"
    for command in (["sql", "select 1"], ["dashboard"]):
        line = _one_error_line(run_cli("-w", w, "--project", "p", "--dataset-prefix", "x", "--api-endpoint",
                                       endpoint, *command))
        assert f"cannot reach the BigQuery API at {endpoint}" in line, (command, line)
