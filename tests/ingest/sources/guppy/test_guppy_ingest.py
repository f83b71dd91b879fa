"""Ingesting guppy dumps (--from-json) into lake/guppy/<index>/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.parquet as pq
import pytest

from ingest.lake import part_files
from tests.cli import run

RECORDS: list[dict[str, Any]] = [
    {"submitter_id": "s1", "study_modality": ["CT"], "age_at_imaging": 71,
     "imaging_study_annotations": [{"midrc_mRALE_score": 24}]},
    {"submitter_id": "s2", "study_modality": "CR", "age_at_imaging": 70.5,
     "days_from_study_to_pos_covid_test": ["0", "28"]},
    {"submitter_id": "s3", "days_from_study_to_pos_covid_test": [28, 0]},
]


def ingest(warehouse: Path, *args: str) -> Any:
    return run("--warehouse", str(warehouse), "ingest", "guppy", *args)


@pytest.mark.parametrize("form", ["array", "ndjson", "graphql"])
def test_dump_is_ingested(tmp_path: Path, form: str) -> None:
    dump = tmp_path / "dump.json"
    if form == "array":
        dump.write_text(json.dumps(RECORDS))
    elif form == "ndjson":
        dump.write_text("\n".join(json.dumps(r) for r in RECORDS) + "\n\n")
    else:
        dump.write_text(json.dumps({"data": {"imaging_study": RECORDS}}))
    result = ingest(tmp_path / "wh", "--index", "imaging_study", "--from-json", str(dump))
    assert result.exit_code == 0, result.output
    assert "imaging_study: 3 records" in result.output
    files = part_files(tmp_path / "wh" / "lake" / "guppy" / "imaging_study")
    assert len(files) == 1
    rows = pq.read_table(files[0]).to_pylist()
    assert [json.loads(r["_record"]) for r in rows] == RECORDS
    if form == "ndjson":  # the source lines themselves
        assert [r["_record"] for r in rows] == [json.dumps(r) for r in RECORDS]
    assert rows[1]["study_modality"] == ["CR"]
    assert rows[2]["days_from_study_to_pos_covid_test"] == ["28", "0"]
    assert rows[0]["_commons"] == dump.resolve().as_uri()


def test_reingest_replaces_the_index(tmp_path: Path) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(RECORDS))
    warehouse = tmp_path / "wh"
    assert ingest(warehouse, "--index", "case", "--from-json", str(dump)).exit_code == 0
    dump.write_text(json.dumps(RECORDS[:1]))
    result = ingest(warehouse, "--index", "case", "--from-json", str(dump))
    assert result.exit_code == 0, result.output
    assert "replacing 1 part(s)" in result.output
    table_dir = warehouse / "lake" / "guppy" / "case"
    count = duckdb.sql(f"select count(*) from '{table_dir}/*.parquet'").fetchone()
    assert count == (1,)
    assert not list((warehouse / "lake" / "_state" / "pending").iterdir())


def test_two_indices_in_one_command(tmp_path: Path) -> None:
    one, two = tmp_path / "one.json", tmp_path / "two.ndjson"
    one.write_text(json.dumps(RECORDS))
    two.write_text(json.dumps({"object_id": "dg.MD1R/x"}) + "\n")
    result = ingest(tmp_path / "wh", "--index", "imaging_study", "--from-json", str(one),
                    "--index", "data_file", "--from-json", str(two))
    assert result.exit_code == 0, result.output
    assert part_files(tmp_path / "wh" / "lake" / "guppy" / "data_file")


def test_failure_in_second_index_leaves_the_lake_unchanged(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps(RECORDS))
    bad.write_text("[1, 2]")
    result = ingest(tmp_path / "wh", "--index", "case", "--from-json", str(good),
                    "--index", "data_file", "--from-json", str(bad))
    assert result.exit_code == 2
    assert "record 0 is not a JSON object" in result.stderr
    assert not part_files(tmp_path / "wh" / "lake" / "guppy" / "case")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "is not valid JSON or NDJSON"),
        ('{"a": 1}\n[1]\n', "line 2 is not a JSON object"),
        ('{"a": 1}\n{oops\n', "line 2 is not JSON"),
        ('"text"', "line 1 is not a JSON object"),
        ('[{"a": 1}, "x"]', "record 1 is not a JSON object"),
        ('{\n "x": 1\n}', "holds one JSON object"),
        ('[{"_record": 1}]', "reserved field name"),
    ],
)
def test_bad_dumps(tmp_path: Path, content: str, message: str) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(content)
    result = ingest(tmp_path / "wh", "--index", "case", "--from-json", str(dump))
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_dump_and_bad_index_name(tmp_path: Path) -> None:
    result = ingest(tmp_path / "wh", "--index", "case", "--from-json", str(tmp_path / "nope"))
    assert "dump file not found" in result.stderr
    dump = tmp_path / "d.json"
    dump.write_text("[]")
    result = ingest(tmp_path / "wh", "--index", "../x", "--from-json", str(dump))
    assert "invalid index name" in result.stderr


def test_empty_dump_warns_and_keeps_previous_data(tmp_path: Path) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(RECORDS))
    warehouse = tmp_path / "wh"
    ingest(warehouse, "--index", "case", "--from-json", str(dump))
    dump.write_text("[]")
    result = ingest(warehouse, "--index", "case", "--from-json", str(dump))
    assert result.exit_code == 0
    assert "no case records in the dump" in result.output and "left unchanged" in result.output
    assert "access" not in result.output and "private" not in result.output  # a warning for live queries
    assert len(part_files(warehouse / "lake" / "guppy" / "case")) == 1


def test_gc_is_paused_only_while_parsing() -> None:
    import gc

    from ingest.collector import gc_paused
    from ingest.sources.guppy.json_text import loads

    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
        assert loads(b'[{"a": 1}]') == [{"a": 1}]
        assert not gc.isenabled()  # nested pauses keep it off
    assert gc.isenabled()
    with pytest.raises(ValueError):
        loads(b"{oops")
    assert gc.isenabled()
