"""`cohortdb export fhir|manifest|csv|tsv|parquet` on a built warehouse."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import pyarrow.parquet as pq
from fhir.resources.R4B.imagingstudy import ImagingStudy
from gen3.tools.download.drs_download import Manifest
from typer.testing import CliRunner

from cohortdb.cli.main import app
from ingest.settings import Settings
from tests.cli import run_cli
from tests.warehouse import rows

runner = CliRunner()


def _cli(settings: Settings, *args: str):  # noqa: ANN202
    return runner.invoke(app, ["--warehouse", str(settings.warehouse_dir), *args])


def test_fhir_ndjson_validates(built: Settings, tmp_path: Path) -> None:
    out = tmp_path / "studies.ndjson"
    result = _cli(built, "export", "fhir", "--out", str(out))
    assert result.exit_code == 0, result.output
    lines = out.read_text().splitlines()
    expected = rows(built, "select study_uid from marts.imaging_studies order by study_uid")
    assert [json.loads(line)["id"] for line in lines] == [r["study_uid"] for r in expected]
    for line in lines:
        ImagingStudy.model_validate_json(line)
    assert f"{len(lines)} ImagingStudy resources" in result.output


def test_manifest_is_accepted_by_the_gen3_sdk(built: Settings, tmp_path: Path) -> None:
    out = tmp_path / "manifest.json"
    result = _cli(built, "export", "manifest", "--cohort", "portable_chest_high_kvp", "--out", str(out))
    assert result.exit_code == 0, result.output
    entries = json.loads(out.read_text())
    expected = rows(built, "select object_id, file_size_bytes, md5sum from cohorts.portable_chest_high_kvp__files "
                           "order by object_id")
    assert entries and [e["object_id"] for e in entries] == [r["object_id"] for r in expected]
    assert all(e["file_size"] == r["file_size_bytes"] and e["md5sum"] == r["md5sum"]
               for e, r in zip(entries, expected, strict=True))
    with warnings.catch_warnings():  # gen3's dataclass schema uses a deprecated marshmallow argument
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", module="marshmallow")
        downloadables = Manifest.load(out)  # the SDK's own parser (marshmallow schema)
    assert [d.object_id for d in downloadables] == [e["object_id"] for e in entries]


def test_tables_as_csv_tsv_parquet(built: Settings, tmp_path: Path) -> None:
    expected = rows(built, "select * from marts.imaging_studies")
    tsv = tmp_path / "studies.tsv"
    assert _cli(built, "export", "tsv", "--model", "imaging_studies", "--out", str(tsv)).exit_code == 0
    with tsv.open(newline="") as handle:
        records = list(csv.DictReader(handle, delimiter="\t"))
    assert len(records) == len(expected)
    assert list(records[0]) == list(expected[0])
    parquet = tmp_path / "elements.parquet"
    result = _cli(built, "export", "parquet", "--model", "raw.dicom_elements", "--out", str(parquet))
    assert result.exit_code == 0, result.output
    count = rows(built, "select count(*) as n from raw.dicom_elements")[0]["n"]
    table = pq.read_table(parquet)
    assert table.num_rows == count and "values" in table.column_names
    csv_out = tmp_path / "audit.csv"
    assert _cli(built, "export", "csv", "--model", "phi_audit", "--out", str(csv_out)).exit_code == 0
    assert csv_out.read_text().startswith("tag,")


def test_bad_exports_are_one_line_errors(built: Settings, tmp_path: Path) -> None:
    unknown = _cli(built, "export", "csv", "--model", "no_such_model", "--out", str(tmp_path / "x.csv"))
    assert unknown.exit_code == 2
    assert "no model or table named 'no_such_model'" in unknown.stderr
    assert "imaging_studies" in unknown.stderr  # lists what exists
    missing_dir = _cli(built, "export", "fhir", "--out", str(tmp_path / "nope" / "x.ndjson"))
    assert missing_dir.exit_code == 2 and len(missing_dir.stderr.strip().splitlines()) == 1
    for kind in (("fhir",), ("csv", "--model", "patients")):  # no file can be made in procfs (as read-only)
        unwritable = run_cli("-w", str(built.warehouse_dir), "export", *kind, "--out", "/proc/cohortdb-export")
        assert unwritable.exit_code == 2 and unwritable.stderr.startswith("error: cannot write /proc/cohortdb-export: ")
    no_cohort = _cli(built, "export", "manifest", "--cohort", "nobody", "--out", str(tmp_path / "m.json"))
    assert no_cohort.exit_code == 2 and "no cohort named 'nobody'" in no_cohort.stderr
    assert not list(tmp_path.glob("*.partial")) and not (tmp_path / "x.csv").exists()


def test_export_and_sql_write_the_same_csv_text(built: Settings, tmp_path: Path) -> None:
    exported = tmp_path / "tags.csv"
    assert _cli(built, "export", "csv", "--model", "tag_catalog", "--out", str(exported)).exit_code == 0
    printed = _cli(built, "sql", "select * from marts.tag_catalog", "--format", "csv")
    assert printed.exit_code == 0, printed.output
    lines, printed_lines = exported.read_text(encoding="utf-8").splitlines(), printed.stdout.splitlines()
    assert lines[0] == printed_lines[0] and sorted(lines) == sorted(printed_lines)  # the same rows, in any order
    row = next(r for r in csv.DictReader(lines) if r["instances_by_modality"] not in ("", "[]"))
    assert row["is_sensitive"] in ("true", "false")
    assert {"modality", "n_instances"} == set(json.loads(row["instances_by_modality"])[0])  # a list of structs
    assert isinstance(json.loads(row["example_values"]), list)
    tsv = tmp_path / "tags.tsv"
    assert _cli(built, "export", "tsv", "--model", "tag_catalog", "--out", str(tsv)).exit_code == 0
    with tsv.open(newline="", encoding="utf-8") as handle:
        assert sorted(map(tuple, csv.reader(handle, delimiter="\t"))) == sorted(map(tuple, csv.reader(lines)))


def test_sql_csv_tells_null_from_empty_and_writes_nested_values_as_json(built: Settings) -> None:
    query = ("select null as nothing, '' as empty, true as yes, map {'a': 1} as m, [1, 2]::int[2] as pair, "
             "{'x': [1.5]} as s, 1 as same, 2 as same")
    printed = _cli(built, "sql", query, "--format", "csv")
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.splitlines() == [
        "nothing,empty,yes,m,pair,s,same,same",
        ',"",true,"{""a"":1}","[1,2]","{""x"":[1.5]}",1,2',
    ]
