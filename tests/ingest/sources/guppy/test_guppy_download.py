"""`cohortdb download`: DRS downloads through the SDK from the fake commons over HTTPS."""

from __future__ import annotations

import io
import json
import sys
import types
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohortdb.warehouse.duckdb import database_path
from tests.cli import run
from tests.fake_gen3.fixtures import midrc_records, sdk_home  # noqa: F401
from tests.fake_gen3.server import FakeCommons
from tests.fake_gen3.tls import self_signed_cert


def zipped(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


@pytest.fixture
def tls_commons(tmp_path: Path, sdk_home: Path, midrc_records: dict,  # noqa: F811
                monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeCommons]:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(cert))
    commons = FakeCommons(records=midrc_records).start(tls=(cert, key))
    for row in midrc_records["data_file"][:4]:
        name = row["file_name"].rsplit("/", 1)[1]
        commons.add_blob(row["object_id"], name, zipped("1.dcm", b"DICM" + name.encode()))
    yield commons
    commons.stop()


def download(tmp_path: Path, commons: FakeCommons, *args: str) -> Any:
    credentials = tmp_path / "credentials.json"
    commons.write_credentials(credentials)
    return run("--warehouse", str(tmp_path / "wh"), "download", "--endpoint", commons.base_url,
               "--credentials", str(credentials), "--out", str(tmp_path / "out"), *args)


def test_download_by_object_ids_unpacks_zips(tmp_path: Path, tls_commons: FakeCommons,
                                             midrc_records: dict) -> None:  # noqa: F811
    ids = [r["object_id"] for r in midrc_records["data_file"][:3]]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# cohort\n" + "\n".join(ids) + "\n")
    result = download(tmp_path, tls_commons, "--object-ids", str(ids_file))
    assert result.exit_code == 0, result.output
    assert "downloaded 3 of 3" in result.output
    dicoms = sorted((tmp_path / "out").rglob("1.dcm"))
    assert len(dicoms) == 3 and not list((tmp_path / "out").rglob("*.zip"))


def test_download_by_filter_keeps_zips_and_reports_failures(
    tmp_path: Path, tls_commons: FakeCommons, midrc_records: dict  # noqa: F811
) -> None:
    case_id = midrc_records["data_file"][0]["case_ids"][0]
    flt = tmp_path / "filter.json"
    flt.write_text(json.dumps({"IN": {"case_ids": [case_id]}}))
    result = download(tmp_path, tls_commons, "--filter", str(flt), "--keep-zips")
    expected = [r for r in midrc_records["data_file"] if case_id in r["case_ids"]]
    with_blobs = [r for r in expected if r["object_id"] in tls_commons.blobs]
    assert len(list((tmp_path / "out").glob("*.zip"))) == len(with_blobs)
    if len(expected) > len(with_blobs):
        assert result.exit_code == 2
        assert "download(s) failed" in result.stderr
        assert "not found" in result.stderr


def test_download_then_ingest_calls_the_dicom_ingester(
    tmp_path: Path, tls_commons: FakeCommons, midrc_records: dict,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[Any] = []
    fake_module = types.ModuleType("ingest.sources.files.ingest")
    summary = types.SimpleNamespace(line=lambda: "1 instances, 0 errors")

    def fake_ingest(settings: Any, paths: list[Path]) -> Any:
        calls.append((settings, paths))
        return summary

    fake_module.ingest_dicom = fake_ingest  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "ingest.sources.files.ingest", fake_module)
    ids_file = tmp_path / "ids.json"
    ids_file.write_text(json.dumps([midrc_records["data_file"][0]["object_id"]]))
    name = midrc_records["data_file"][0]["file_name"].rsplit("/", 1)[1]
    result = download(tmp_path, tls_commons, "--object-ids", str(ids_file), "--ingest")
    assert result.exit_code == 0, result.output
    assert calls and calls[0][1] == [tmp_path / "out" / name.removesuffix(".zip")]
    assert "ingested 1 instances, 0 errors" in result.output


def test_download_argument_errors(tmp_path: Path, tls_commons: FakeCommons) -> None:
    result = download(tmp_path, tls_commons)
    assert "exactly one of --filter and --object-ids" in result.stderr
    result = download(tmp_path, tls_commons, "--object-ids", str(tmp_path / "none.txt"))
    assert "object-ids file not found" in result.stderr


def test_gen3_drs_pull_cli_works_against_the_fake(tmp_path: Path, tls_commons: FakeCommons,
                                                  midrc_records: dict) -> None:  # noqa: F811
    import os
    import subprocess

    gen3 = Path(sys.executable).with_name("gen3")
    assert gen3.exists(), f"no gen3 console script beside {sys.executable}: pip install -e ."
    credentials = tmp_path / "cred.json"
    tls_commons.write_credentials(credentials)
    object_id = midrc_records["data_file"][1]["object_id"]
    completed = subprocess.run(
        [str(gen3), "--auth", str(credentials), "--endpoint", tls_commons.host,
         "--commons_url", tls_commons.host, "drs-pull", "object", object_id,
         "--output-dir", str(tmp_path / "pulled")],
        env=dict(os.environ), capture_output=True, text=True, timeout=120, check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert list((tmp_path / "pulled").glob("*.zip"))


@pytest.fixture
def dicom_zips(tmp_path: Path) -> dict[str, tuple[Path, set[str]]]:
    """Real MIDRC-like series zips: {zip name: (path, SOP instance UIDs)}, with their studies."""
    import pydicom

    from cohortdb.synthetic.dicom import generate_corpus

    zips = generate_corpus(tmp_path / "corpus", n_crdx=2, n_ct_series=1, ct_slices=3,
                           n_mr_series=0, seed=5, zip_series=True, workers=1)
    series = {}
    for path in zips:
        with zipfile.ZipFile(path) as archive:
            headers = [pydicom.dcmread(io.BytesIO(archive.read(member)), stop_before_pixels=True)
                       for member in archive.namelist()]
        series[path.name] = (path, {(h.StudyInstanceUID, h.SOPInstanceUID) for h in headers})
    assert len(series) >= 2
    return series


@pytest.mark.parametrize("keep_zips", [False, True])
def test_download_ingest_puts_real_dicom_headers_in_the_lake(
    tmp_path: Path, tls_commons: FakeCommons, midrc_records: dict,  # noqa: F811
    dicom_zips: dict[str, tuple[Path, set[str]]], keep_zips: bool,
) -> None:
    import duckdb
    import pyarrow.parquet as pq

    from cohortdb.warehouse.duckdb import load_duckdb
    from ingest.settings import resolve_settings

    rows = midrc_records["data_file"][10:10 + len(dicom_zips)]
    for row, (name, (path, _)) in zip(rows, sorted(dicom_zips.items()), strict=True):
        tls_commons.add_blob(row["object_id"], name, path.read_bytes())
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(row["object_id"] for row in rows) + "\n")
    extra = ["--keep-zips"] if keep_zips else []
    result = download(tmp_path, tls_commons, "--object-ids", str(ids_file), "--ingest", *extra)
    assert result.exit_code == 0, result.output
    expected = set().union(*(uids for _, uids in dicom_zips.values()))
    assert f"downloaded {len(rows)} of {len(rows)}" in result.output
    assert f"{len(expected)} instances, 0 errors" in result.output

    settings = resolve_settings(str(tmp_path / "wh"))
    lake = pq.read_table(settings.dicom_lake / "instances")
    assert set(zip(lake["study_instance_uid"].to_pylist(),
                   lake["sop_instance_uid"].to_pylist(), strict=True)) == expected
    out = str((tmp_path / "out").resolve())
    assert all(p.startswith(out) for p in lake["source_path"].to_pylist())
    members = lake["source_member"].to_pylist()
    assert all(m is not None for m in members) if keep_zips else members == [None] * len(members)

    counts = load_duckdb(settings)
    assert counts["dicom_instances"] == len(expected)
    with duckdb.connect(str(database_path(settings)), read_only=True) as con:
        studies = con.execute("select distinct study_instance_uid from raw.dicom_instances "
                              "order by 1").fetchall()
        errors = con.execute("select count(*) from raw.dicom_errors").fetchone()
    assert [s for (s,) in studies] == sorted({study for study, _ in expected})
    assert errors == (0,)


def test_download_never_shows_the_token_or_api_key(
    tmp_path: Path, tls_commons: FakeCommons, midrc_records: dict,  # noqa: F811
    caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str],
) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    ids = [r["object_id"] for r in midrc_records["data_file"][:2]] + ["dg.MD1R/missing"]
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(ids))
    result = download(tmp_path, tls_commons, "--object-ids", str(ids_file), "--ingest")
    assert result.exit_code == 2 and "not found" in result.stderr
    api_key = json.loads((tmp_path / "credentials.json").read_text())["api_key"]
    secrets = [api_key, *tls_commons.issued_tokens]
    assert len(secrets) >= 2
    captured = capfd.readouterr()
    texts = [result.output, repr(result.exception), caplog.text, captured.out, captured.err]
    # What cohortdb writes: the downloads and the lake (the SDK caches its token in HOME).
    written = [p for d in ("out", "wh") for p in (tmp_path / d).rglob("*") if p.is_file()]
    files = [p.read_bytes() for p in written]
    assert any(p.suffix == ".parquet" for p in written)
    for secret in secrets:
        for part in (secret, secret.split(".")[1]):
            assert not any(part in text for text in texts)
            assert not any(part.encode() in blob for blob in files)
