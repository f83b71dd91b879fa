"""--warehouse/-w and --cohorts are taken before or after a command's name, the last one winning."""

from __future__ import annotations

import json
from pathlib import Path

from cohortdb.cli.main import lift_global_options
from ingest.settings import Settings
from tests.cli import run_cli


def test_lift_moves_global_options_in_order_and_nothing_after_double_dash() -> None:
    assert lift_global_options(["sql", "-w", "A", "select 1", "--cohorts", "C"]) == [
        "-w", "A", "--cohorts", "C", "sql", "select 1"]
    assert lift_global_options(["-w", "A", "ingest", "dicom", "--warehouse=B", "D"]) == [
        "-w", "A", "--warehouse=B", "ingest", "dicom", "D"]
    assert lift_global_options(["sql", "--", "-w"]) == ["sql", "--", "-w"]
    assert lift_global_options(["sql", "-w"]) == ["sql", "-w"]  # no value: click says so


def test_commands_take_the_warehouse_after_their_name(built: Settings, tmp_path: Path) -> None:
    where = str(built.warehouse_dir)
    query = "select count(*) as n from marts.imaging_studies"
    expected = run_cli("--warehouse", where, "sql", query, "--format", "json").stdout
    assert json.loads(expected)[0]["n"] > 0
    assert run_cli("sql", "-w", where, query, "--format", "json").stdout == expected
    assert run_cli("-w", str(tmp_path / "typo"), "sql", query, "-w", where, "--format", "json").stdout == expected
    out = tmp_path / "studies.csv"
    exported = run_cli("export", "csv", "--model", "imaging_studies", "--out", str(out), "--warehouse", where)
    assert exported.exit_code == 0 and out.read_text().count("\n") > 1
    listed = run_cli("cohort", "list", "--warehouse", where, "--format", "json")
    assert listed.exit_code == 0 and json.loads(listed.stdout)


def test_ingest_takes_the_warehouse_after_its_name(tmp_path: Path, corpus_files: list[Path]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.dcm").write_bytes(next(p for p in corpus_files if p.name == "CT_small.dcm").read_bytes())
    result = run_cli("ingest", "dicom", "--workers", "1", str(source), "-w", str(tmp_path / "w"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "w" / "lake" / "dicom").is_dir()
