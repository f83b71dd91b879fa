"""``cohortdb cohort``: the seed 000 filter as a cohort, output formats, one-line errors."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli
from tests.fake_gen3.filters import field_kinds, matches

# The filter of seed 000 (MIDRC's cohort-building notebook), with its parameters.
SEED_000_FILTER: dict[str, Any] = {
    "AND": [
        {"=": {"loinc_system": "Chest"}},
        {"=": {"sex": "Male"}},
        {"=": {"ethnicity": "Hispanic or Latino"}},
        {">=": {"age_at_index": 70}},
        {"IN": {"study_modality": ["DX", "CR"]}},
        {"nested": {"path": "imaging_study_annotations", ">=": {"midrc_mRALE_score": 20}}},
        {"AND": [
            {">=": {"days_from_study_to_pos_covid_test": -2}},
            {"<=": {"days_from_study_to_pos_covid_test": 0}},
        ]},
    ]
}

# The first record seed 000's query returned (trimmed), which satisfies every clause.
MATCHING: dict[str, Any] = {
    "submitter_id": "2.16.840.1.114274.1818.514395397152296418914049330214008864917",
    "study_modality": ["CR"], "loinc_system": "Chest", "sex": ["Male"], "age_at_index": [71],
    "ethnicity": ["Hispanic or Latino"], "days_from_study_to_pos_covid_test": [28, 0],
    "body_part_examined": ["PORT CHEST"],
    "imaging_study_annotations": [
        {"annotation_method": "Retrospective_auto", "annotator_id": "SIFT"},
        {"midrc_mRALE_score": 24},
    ],
}

# One record failing each clause (and one that passes them all in an ES-specific way).
VARIANTS: dict[str, tuple[dict[str, Any], bool]] = {
    "abdomen": ({"loinc_system": "Abdomen"}, False),
    "chest-lowercase": ({"loinc_system": "chest"}, False),  # keywords are case-sensitive
    "female": ({"sex": ["Female"]}, False),
    "no-ethnicity": ({"ethnicity": None}, False),
    "age-69.5": ({"age_at_index": [69.5]}, False),
    "age-70": ({"age_at_index": [70]}, True),
    "ct": ({"study_modality": ["CT"]}, False),
    "ct-and-dx": ({"study_modality": ["CT", "DX"]}, True),  # any element
    "mrale-19": ({"imaging_study_annotations": [{"midrc_mRALE_score": 19}]}, False),
    "no-annotations": ({"imaging_study_annotations": None}, False),
    "test-after": ({"days_from_study_to_pos_covid_test": [1, 3]}, False),
    "test-long-before": ({"days_from_study_to_pos_covid_test": [-5]}, False),
    "no-test": ({"days_from_study_to_pos_covid_test": []}, False),
    # Each range clause holds for a different element: Elasticsearch says yes.
    "test-split": ({"days_from_study_to_pos_covid_test": [5, -3]}, True),
}


def _records() -> list[dict[str, Any]]:
    records = [MATCHING]
    for name, (change, _) in VARIANTS.items():
        record = copy.deepcopy(MATCHING)
        record["submitter_id"] = name
        for field, value in change.items():
            if value is None:
                del record[field]
            else:
                record[field] = value
        records.append(record)
    return records


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cohort")
    dump = root / "imaging_study.json"
    dump.write_text(json.dumps(_records()))
    wh = str(root / "wh")
    for args in (("ingest", "guppy", "--index", "imaging_study", "--from-json", str(dump)),
                 ("load",)):
        result = run_cli("--warehouse", wh, *args)
        assert result.exit_code == 0, result.output
    return root / "wh"


def cohort(warehouse: Path, filter_: Any, *args: str, raw: str | None = None) -> Any:
    path = warehouse.parent / "filter.json"
    path.write_text(raw if raw is not None else json.dumps(filter_))
    return run_cli("--warehouse", str(warehouse), "cohort", "--index", "imaging_study",
                   "--filter", str(path), *args)


def test_seed_000_filter_as_a_cohort(warehouse: Path) -> None:
    expected = sorted([MATCHING["submitter_id"]]
                      + [name for name, (_, selected) in VARIANTS.items() if selected])
    result = cohort(warehouse, SEED_000_FILTER, "--format", "ids")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == expected
    records = _records()  # the fake commons' evaluator agrees
    kinds = field_kinds(records)
    assert sorted(r["submitter_id"] for r in records
                  if matches(r, SEED_000_FILTER, kinds)) == expected


def test_formats(warehouse: Path) -> None:
    filter_ = {"IN": {"study_modality": ["CT"]}}
    as_json = json.loads(cohort(warehouse, filter_, "--format", "json").output)
    assert [row["submitter_id"] for row in as_json] == ["ct", "ct-and-dx"]
    assert next(iter(as_json[0])) == "submitter_id"
    assert as_json[1]["study_modality"] == ["CT", "DX"]
    assert "_record" not in as_json[0] and as_json[0]["_commons"].startswith("file://")
    rows = list(csv.DictReader(io.StringIO(cohort(warehouse, filter_, "--format", "csv").output)))
    assert [row["submitter_id"] for row in rows] == ["ct", "ct-and-dx"]
    assert json.loads(rows[1]["study_modality"]) == ["CT", "DX"]
    blocks = cohort(warehouse, filter_).output.strip("\n").split("\n\n")  # too wide: a block per record
    assert [block.splitlines()[0].strip() for block in blocks] == ["submitter_id = ct", "submitter_id = ct-and-dx"]
    assert cohort(warehouse, {"=": {"sex": "Nobody"}}, "--format", "ids").output == ""
    everything = cohort(warehouse, {}, "--format", "ids").output.splitlines()
    assert len(everything) == 1 + len(VARIANTS) and everything == sorted(everything)


@pytest.mark.parametrize(("args", "raw", "message"), [
    ((), '{"AND": [', "not valid JSON"),
    ((), '{"AND": [{"=": {"sexx": "Male"}}]}', "filter.AND[0].=.sexx"),
    ((), '{"AND": [{}, {">=": {"sex": 3}}]}', "filter.AND[1].>=.sex"),
    ((), '{"nested": {"path": "imaging_study_annotations", ">=": {"midrc_mRALE_score": "x"}}}',
     "filter.nested.>=.midrc_mRALE_score"),
    (("--format", "xml"), "{}", "--format"),
])
def test_bad_input_is_one_line_and_exit_2(warehouse: Path, args: tuple[str, ...], raw: str,
                                          message: str) -> None:
    result = cohort(warehouse, None, *args, raw=raw)
    assert result.exit_code == 2
    assert message in result.stderr


def test_missing_table_or_warehouse(warehouse: Path, tmp_path: Path) -> None:
    (tmp_path / "f.json").write_text("{}")
    result = run_cli("--warehouse", str(warehouse), "cohort", "--index", "annotation",
                     "--filter", str(tmp_path / "f.json"))
    assert result.exit_code == 2
    assert "raw.guppy_annotation" in result.stderr and "cohortdb load" in result.stderr
    result = run_cli("--warehouse", str(tmp_path / "none"), "cohort", "--index", "case",
                     "--filter", str(tmp_path / "f.json"))
    assert result.exit_code == 2 and "nothing was ingested" in result.stderr and "cohortdb build" in result.stderr
    result = run_cli("--warehouse", str(warehouse), "cohort", "--filter", str(tmp_path / "f.json"))
    assert result.exit_code == 2 and "--index" in result.stderr


def test_a_filter_that_is_a_directory_is_one_line(warehouse: Path, tmp_path: Path) -> None:
    result = run_cli("--warehouse", str(warehouse), "cohort", "--index", "imaging_study", "--filter", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"error: cannot read filter file {tmp_path}: Is a directory\n"


def test_cohorts_given_as_a_file_is_one_line_not_no_cohorts(tmp_path: Path) -> None:
    definition = tmp_path / "one.yml"  # a definition, where its directory was meant
    definition.write_text("index: imaging_study\nfilter: {}\n")
    result = run_cli("-w", str(tmp_path / "w"), "--cohorts", str(definition), "cohort", "list")
    assert result.exit_code == 2
    assert result.stderr == (f"error: the cohorts directory {definition} is a file: "
                             "give the directory of the definitions (--cohorts DIR)\n")
