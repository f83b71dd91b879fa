"""The whole pydicom corpus and deid-data: nothing crashes, nothing is lost, deid agrees."""

from __future__ import annotations

import json
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pydicom
import pytest

from ingest.dicom.flatten import flatten_dataset
from ingest.lake import part_files
from ingest.settings import Settings
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.read import Source, read_source

PIXEL_TAG = "(7FE0,0010)"


def _lake(settings: Settings, table: str) -> pa.Table:
    return pa.concat_tables(pq.read_table(f) for f in part_files(settings.dicom_lake / table))


@pytest.fixture(scope="module")
def ingested(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Settings:
    from ingest.settings import resolve_settings

    settings = resolve_settings(tmp_path_factory.mktemp("corpus-warehouse"))
    summary = ingest_dicom(settings, [corpus_dir], workers=2)
    assert summary.n_read == len(list(corpus_dir.iterdir()))
    return settings


def test_every_corpus_file_is_an_instance_or_an_error(ingested: Settings, corpus_dir: Path) -> None:
    instances = _lake(ingested, "instances").to_pylist()
    errors = _lake(ingested, "errors").to_pylist()
    in_instances = {r["source_path"] for r in instances}
    in_errors = {r["source_path"] for r in errors if r["severity"] == "error"}
    every = {str(p) for p in corpus_dir.iterdir()}
    assert in_instances | in_errors == every
    assert not in_instances & in_errors
    truncated = {r["source_path"] for r in instances if r["truncated"]}
    assert truncated == {r["source_path"] for r in errors if r["severity"] == "warning"}
    assert {"rtplan_truncated.dcm", "MR_truncated.dcm"} <= {Path(p).name.split("_", 1)[1] for p in truncated}
    assert len(in_instances) >= 220  # ≈231 of 244 are readable DICOM
    assert all(r["message"] and r["error_type"] for r in errors)
    names = {Path(r["source_path"]).name.split("_", 1)[1] for r in errors}
    assert {"README.txt", "rtplan_truncated.dcm", "MR_truncated.dcm"} <= names
    assert len({r["file_id"] for r in instances}) == len(instances)
    # an item declaring 24 bytes more than its sequence holds, every element complete: read whole
    [nooffset] = [r for r in instances if r["source_path"].endswith("_DICOMDIR-nooffset")]
    assert not nooffset["truncated"] and nooffset["n_elements"] > 400


def _deid_config(tmp_path: Path) -> str:
    """deid's default config without its skip list, so every element is reported."""
    import deid.dicom

    config = json.loads((Path(deid.dicom.__file__).parent / "config.json").read_text())
    config["get"]["skip"] = []
    path = tmp_path / "deid-config.json"
    path.write_text(json.dumps(config))
    return str(path)


def _deid_paths(path: Path, config: str) -> set[str] | None:
    from deid.dicom import get_identifiers

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fields = get_identifiers([str(path)], config=config)[str(path)]
    except Exception:  # noqa: BLE001 - files deid cannot read are out of this comparison
        return None
    if any("End of file reached" in str(w.message) for w in caught):
        return None  # deid reads the (truncated) pixel data too, and loses elements on the way
    # We stop before the pixel data (never read), so everything from it on is out.
    return {key for key in fields if key.split("__")[0] < PIXEL_TAG}


def test_tag_paths_equal_deid_identifiers(ingested: Settings, tmp_path: Path) -> None:
    config = _deid_config(tmp_path)
    elements = _lake(ingested, "elements").select(["file_id", "tag_path"]).to_pylist()
    instances = _lake(ingested, "instances").select(["file_id", "source_path", "truncated"]).to_pylist()
    by_file: dict[str, set[str]] = defaultdict(set)
    for row in elements:
        by_file[row["file_id"]].add(row["tag_path"])
    compared = 0
    for row in instances:
        expected = None if row["truncated"] else _deid_paths(Path(row["source_path"]), config)
        if expected is None:
            continue
        assert by_file[row["file_id"]] == expected, row["source_path"]
        compared += 1
    assert compared >= 200


def _deid_data_files() -> list[Path]:
    from deid.data import get_dataset

    files: list[Path] = []
    for name in ("dicom-cookies", "humans", "ultrasounds", "animals"):
        try:
            root = Path(get_dataset(name))
        except Exception:  # noqa: BLE001
            continue
        files.extend(sorted(p for p in root.rglob("*") if p.is_file()))
    return files


DEID_FILES = _deid_data_files()


def test_deid_data_is_present() -> None:
    assert len(DEID_FILES) >= 10


@pytest.mark.parametrize("path", DEID_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_deid_data_files_agree_with_deid(path: Path, tmp_path: Path) -> None:
    """Each file (or each member, for deid-data's zipped files) matches deid's keys."""
    config = _deid_config(tmp_path)
    outcomes = read_source(Source(str(path), path.stat().st_size, 0))
    for member, header in outcomes:
        assert not isinstance(header, Exception), header
        target = path
        if member is not None:
            with zipfile.ZipFile(path) as archive:
                target = Path(archive.extract(member, tmp_path))
        expected = _deid_paths(target, config)
        assert expected is not None
        assert set(header.rows.tag_path) == expected


def _reference_rows(path: Path):  # noqa: ANN202
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return list(flatten_dataset(pydicom.dcmread(path, stop_before_pixels=True, force=True)).rows())


def test_values_agree_with_pydicom_for_every_element(corpus_files: list[Path]) -> None:
    """Whichever reader ran (fast or pydicom), every row equals pydicom's own reading."""
    compared = 0
    for path in corpus_files:
        outcomes = read_source(Source(str(path), path.stat().st_size, 0))
        header = outcomes[0][1]
        if isinstance(header, Exception) or header.truncated_at is not None:  # (a prefix of pydicom's)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert list(header.rows.rows()) == _reference_rows(path), path.name
        compared += 1
    assert compared >= 220


def test_lake_element_rows_equal_pydicom_for_every_instance(ingested: Settings) -> None:
    """What lands in the lake (node columns, sparse vm / creator / length, joined text),
    file by file and row by row, equals pydicom's own flattening."""
    instances = _lake(ingested, "instances").select(["file_id", "source_path", "source_member", "truncated"])
    elements = _lake(ingested, "elements").to_pylist()
    by_file: dict[str, list[dict]] = defaultdict(list)
    for row in elements:
        by_file[row.pop("file_id")].append(row)
    compared = 0
    for instance in instances.to_pylist():
        if instance["source_member"] is not None or instance["truncated"]:
            continue
        expected = _reference_rows(Path(instance["source_path"]))
        got = by_file[instance["file_id"]]
        for row in got:
            del row["sop_instance_uid"]
        assert got == expected, instance["source_path"]
        compared += 1
    assert compared >= 220
