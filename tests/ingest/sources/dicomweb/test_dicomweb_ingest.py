"""``ingest dicomweb`` against a real Orthanc: filters, paging, incremental re-runs, deletions,
credentials, a server that dies mid-run, and Google Cloud Healthcare's URL form with a bearer token."""

from __future__ import annotations

import collections
import hashlib
from pathlib import Path

import pyarrow.compute as pc
import pydicom
import pytest

from ingest.dicom.schema import ELEMENTS, INSTANCES
from ingest.errors import UserError
from ingest.lake import read_table
from ingest.settings import Settings
from ingest.sources.dicomweb.client import Auth, DicomWebClient, RetryPolicy
from ingest.sources.dicomweb.ingest import ingest_dicomweb
from ingest.sources.dicomweb.state import STUDIES, read_studies, studies_dir
from tests.cli import run_cli
from tests.ingest.sources.dicomweb.conftest import orthanc_or_fail, upload
from tests.orthanc.server import PASSWORD, TOKEN, USER, Orthanc

FAST = RetryPolicy(attempts=2, initial_wait=0.05, max_wait=0.1, timeout=10)


def _client(server: Orthanc, password: str = PASSWORD) -> DicomWebClient:
    return DicomWebClient(server.dicomweb, Auth(USER, password), FAST)


def _studies(files: list[Path]) -> dict[str, tuple[set[str], int]]:
    """StudyInstanceUID → (its modalities, its number of instances)."""
    found: dict[str, tuple[set[str], int]] = {}
    for path in files:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        modalities, count = found.get(ds.StudyInstanceUID, (set(), 0))
        found[ds.StudyInstanceUID] = (modalities | {ds.Modality}, count + 1)
    return found


def _instances(settings: Settings) -> collections.Counter[str]:
    """Instances in the lake per study."""
    table = read_table(settings.dicom_lake / "instances", INSTANCES)
    return collections.Counter(table["study_instance_uid"].to_pylist())


def _lake_files(settings: Settings) -> dict[str, str]:
    """Every file under the lake but the lock: relative path → SHA-1 of its bytes."""
    return {str(path.relative_to(settings.lake_dir)): hashlib.sha1(path.read_bytes()).hexdigest()
            for path in sorted(settings.lake_dir.rglob("*")) if path.is_file() and path.name != "lock"}


def test_study_modality_filters_and_paging_beyond_one_page(
    fresh: Orthanc, generated: list[Path], settings: Settings, tmp_path: Path
) -> None:
    studies = _studies(generated)
    assert len(studies) > 4
    summary = ingest_dicomweb(settings, _client(fresh), page_size=2)  # several pages
    assert summary.n_listed == len(studies)
    assert _instances(settings) == {uid: count for uid, (_, count) in studies.items()}

    one = sorted(studies)[1]
    only = Settings(tmp_path / "one")
    ingest_dicomweb(only, _client(fresh), study_uids=[one], page_size=2)
    assert _instances(only) == {one: studies[one][1]}

    # ModalitiesInStudy with offset > 0 returns nothing in Orthanc 1.10: filtered here, paging still works
    ct = {uid for uid, (modalities, _) in studies.items() if "CT" in modalities}
    mr = {uid for uid, (modalities, _) in studies.items() if "MR" in modalities}
    assert ct and mr
    by_modality = Settings(tmp_path / "ct")
    ingest_dicomweb(by_modality, _client(fresh), modalities=["ct", "MR"], page_size=1)
    assert set(_instances(by_modality)) == ct | mr


def test_the_cli_reads_credentials_from_the_environment_and_filters(
    fresh: Orthanc, generated: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORTHANC_PASSWORD", PASSWORD)
    warehouse = tmp_path / "warehouse"
    result = run_cli("--warehouse", str(warehouse), "ingest", "dicomweb", fresh.dicomweb, "--user", USER,
                     "--password-env", "ORTHANC_PASSWORD", "--modality", "CT", "--page-size", "1",
                     "--concurrency", "2")
    assert result.exit_code == 0, result.output
    ct = {uid for uid, (modalities, _) in _studies(generated).items() if "CT" in modalities}
    assert set(_instances(Settings(warehouse))) == ct
    assert PASSWORD not in result.output


def test_rerun_skips_unchanged_rereads_changed_and_removes_deleted_studies(
    fresh: Orthanc, generated: list[Path], settings: Settings, tmp_path: Path
) -> None:
    studies = _studies(generated)
    first = ingest_dicomweb(settings, _client(fresh))
    assert first.n_read == len(studies) and first.n_removed == 0

    again = ingest_dicomweb(settings, _client(fresh))
    assert (again.n_read, again.n_unchanged, again.n_instances) == (0, len(studies), 0)

    # one more instance in a study: that study is read again, its rows replaced (not duplicated)
    grown = pydicom.dcmread(generated[0])
    grown.SOPInstanceUID = grown.file_meta.MediaStorageSOPInstanceUID = "1.2.3.4.5.6.7.8.9"
    grown.save_as(tmp_path / "grown.dcm")
    assert upload(fresh, [tmp_path / "grown.dcm"])
    changed = ingest_dicomweb(settings, _client(fresh))
    assert (changed.n_read, changed.n_unchanged) == (1, len(studies) - 1)
    counts = _instances(settings)
    assert counts[grown.StudyInstanceUID] == studies[grown.StudyInstanceUID][1] + 1

    # a study deleted in Orthanc disappears from the lake on the next run, elements included
    gone = sorted(uid for uid in studies if uid != grown.StudyInstanceUID)[0]
    fresh.delete_study(gone)
    removed = ingest_dicomweb(settings, _client(fresh))
    assert (removed.n_removed, removed.n_read) == (1, 0)
    counts = _instances(settings)
    assert gone not in counts and len(counts) == len(studies) - 1
    instances = read_table(settings.dicom_lake / "instances", INSTANCES)
    elements = read_table(settings.dicom_lake / "elements", ELEMENTS)
    assert set(elements["file_id"].to_pylist()) == set(instances["file_id"].to_pylist())
    assert instances.num_rows == len(set(instances["file_id"].to_pylist()))
    state = read_studies(settings, _client(fresh).url)
    assert sorted(state["study_instance_uid"].to_pylist()) == sorted(counts)
    assert state.schema.equals(STUDIES) and studies_dir(settings).is_dir()


def test_wrong_password_is_one_line(fresh: Orthanc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORTHANC_PASSWORD", "not-the-password")
    result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicomweb", fresh.dicomweb, "--user", USER,
                     "--password-env", "ORTHANC_PASSWORD")
    assert result.exit_code == 2
    assert result.stderr.strip() == (f"error: the DICOMweb server at {fresh.dicomweb} refused the credentials "
                                     "(HTTP 401): check --user and the password in --password-env")
    assert "not-the-password" not in result.output
    assert not (tmp_path / "w" / "lake" / "dicom").exists()


def test_unreachable_server_and_bad_options_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.orthanc.server import free_port

    url = f"http://127.0.0.1:{free_port()}/dicom-web"
    result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicomweb", url, "--retries", "2")
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: cannot reach the DICOMweb server at {url}: connection refused"
    for args, message in [
        (["--user", USER], "--user needs --password-env VAR"),
        (["--user", USER, "--password-env", "NO_SUCH_VARIABLE"], "--password-env NO_SUCH_VARIABLE: that environment"),
        (["--token-env", "T", "--user", USER], "give either --user with --password-env, or --token-env"),
        (["--since", "2024-01-01"], "--since '2024-01-01': expected a date as YYYYMMDD"),
    ]:
        result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicomweb", url, *args)
        assert result.exit_code == 2 and message in result.stderr, (args, result.stderr)
    result = run_cli("--warehouse", str(tmp_path / "w"), "ingest", "dicomweb", "ftp://x/dicom-web")
    assert result.exit_code == 2 and "is not a DICOMweb URL" in result.stderr


def test_server_killed_mid_run_is_a_clear_error_and_leaves_the_lake_unchanged(
    fresh: Orthanc, generated: list[Path], settings: Settings
) -> None:
    studies = sorted(_studies(generated))
    ingest_dicomweb(settings, _client(fresh), study_uids=studies[:1])
    before = _lake_files(settings)
    assert any(name.startswith("dicom/instances/") for name in before)

    def kill_after_first(done: int, total: int) -> None:
        if done == 1:
            fresh.kill()

    with pytest.raises(UserError) as failure:
        ingest_dicomweb(settings, _client(fresh), concurrency=1, full=True, on_progress=kill_after_first)
    message = str(failure.value)
    assert "\n" not in message
    assert message.startswith(f"cannot reach the DICOMweb server at {fresh.dicomweb}: ")
    assert _lake_files(settings) == before  # nothing staged is left either


def test_bearer_token_at_google_cloud_healthcare_url_form(
    tmp_path: Path, generated: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = orthanc_or_fail(tmp_path / "orthanc", token=True)
    try:
        assert "/dicomStores/s/dicomWeb" in server.dicomweb
        upload(server, generated[:3])
        monkeypatch.setenv("DICOMWEB_TOKEN", TOKEN)
        warehouse = tmp_path / "warehouse"
        result = run_cli("--warehouse", str(warehouse), "ingest", "dicomweb", server.dicomweb + "/",
                         "--token-env", "DICOMWEB_TOKEN")
        assert result.exit_code == 0, result.output
        instances = read_table(Settings(warehouse).dicom_lake / "instances", INSTANCES)
        assert instances.num_rows == 3
        assert pc.all(pc.equal(instances["source_path"], server.dicomweb)).as_py()
        assert TOKEN not in result.output

        monkeypatch.setenv("DICOMWEB_TOKEN", "expired-token")
        result = run_cli("--warehouse", str(warehouse), "ingest", "dicomweb", server.dicomweb,
                         "--token-env", "DICOMWEB_TOKEN")
        assert result.exit_code == 2
        assert result.stderr.strip() == (f"error: the DICOMweb server at {server.dicomweb} refused the "
                                         "credentials (HTTP 403): check the token in --token-env")
    finally:
        server.stop()


def test_studies_whose_parts_were_dropped_are_read_again(
    fresh: Orthanc, generated: list[Path], settings: Settings
) -> None:
    """`ingest dicom --full` in another shard layout drops every DICOM part: the study state
    left without its parts is ignored (the studies are read again) and deleted."""
    first = ingest_dicomweb(settings, _client(fresh), concurrency=1)
    for table in ("instances", "elements", "errors"):
        for path in (settings.dicom_lake / table).glob("*.parquet"):
            path.unlink()
    again = ingest_dicomweb(settings, _client(fresh), concurrency=1)
    assert (again.n_read, again.n_unchanged) == (first.n_read, 0)
    assert sorted(path.stem for path in studies_dir(settings).glob("*.parquet")) == sorted(again.parts)
    assert sum(_instances(settings).values()) == len(generated)


def test_big_studies_are_fetched_series_by_series(
    fresh: Orthanc, generated: list[Path], settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ingest.sources.dicomweb import batch

    whole = ingest_dicomweb(settings, _client(fresh), concurrency=1)
    monkeypatch.setattr(batch, "SERIES_SPLIT", 1)
    by_series = Settings(tmp_path / "by-series")
    split = ingest_dicomweb(by_series, _client(fresh), concurrency=1)
    assert split.n_requests > whole.n_requests  # a series listing and a metadata request per series
    assert _instances(by_series) == _instances(settings)
    elements = {name: read_table(where.dicom_lake / "elements", ELEMENTS).drop_columns(["file_id"]).sort_by(
        [("sop_instance_uid", "ascending"), ("tag_path", "ascending")]) for name, where in
        (("whole", settings), ("split", by_series))}
    assert elements["whole"].equals(elements["split"])
