"""Guppy ingestion through the unmodified gen3 SDK, against the local fake commons."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from cohortdb.synthetic.guppy import generate
from ingest.errors import UserError
from ingest.lake import part_files
from ingest.sources.guppy.client import GuppyClient, RetryPolicy, load_credentials
from tests.cli import run
from tests.fake_gen3.fixtures import fake_commons, midrc_records, sdk_home  # noqa: F401
from tests.fake_gen3.server import FakeCommons

FAST = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, timeout=5.0)


@pytest.fixture
def credentials(fake_commons: FakeCommons, tmp_path: Path) -> Path:  # noqa: F811
    path = tmp_path / "credentials.json"
    fake_commons.write_credentials(path)
    return path


@pytest.fixture
def client(fake_commons: FakeCommons, credentials: Path) -> GuppyClient:  # noqa: F811
    return GuppyClient(fake_commons.base_url, load_credentials(credentials), FAST)


def ingest(tmp_path: Path, commons: FakeCommons, credentials: Path, *args: str) -> Any:
    return run("--warehouse", str(tmp_path / "wh"), "ingest", "guppy",
               "--endpoint", commons.base_url, "--credentials", str(credentials), *args)


def lake_rows(tmp_path: Path, index: str) -> list[dict[str, Any]]:
    table_dir = tmp_path / "wh" / "lake" / "guppy" / index
    return duckdb.sql(f"select * from '{table_dir}/*.parquet'").arrow().read_all().to_pylist()


def test_ingest_three_indices(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                              credentials: Path, midrc_records: dict) -> None:  # noqa: F811
    result = ingest(tmp_path, fake_commons, credentials, "--index", "case",
                    "--index", "imaging_study", "--index", "data_file")
    assert result.exit_code == 0, result.output
    for index in ("case", "imaging_study", "data_file"):
        rows = lake_rows(tmp_path, index)
        assert len(rows) == len(midrc_records[index])
        assert {r["_commons"] for r in rows} == {fake_commons.base_url}
        by_id = {json.loads(r["_record"])["submitter_id"]: json.loads(r["_record"]) for r in rows}
        assert by_id == {r["submitter_id"]: r for r in midrc_records[index]}
    files = lake_rows(tmp_path, "data_file")
    # data_file has string-valued day offsets and empty lists, as on MIDRC.
    assert all(isinstance(x, str) for r in files
               for x in r["days_from_study_to_pos_covid_test"] or [])


def test_filter_and_fields(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                           credentials: Path, midrc_records: dict) -> None:  # noqa: F811
    flt = {"AND": [{"IN": {"study_modality": ["CT", "MR"]}},
                   {"nested": {"path": "imaging_study_annotations",
                               ">=": {"midrc_mRALE_score": 5}}}]}
    filter_file = tmp_path / "filter.json"
    filter_file.write_text(json.dumps(flt))
    result = ingest(tmp_path, fake_commons, credentials, "--index", "imaging_study",
                    "--filter", str(filter_file),
                    "--fields", "submitter_id,study_modality,imaging_study_annotations.midrc_mRALE_score")
    assert result.exit_code == 0, result.output
    rows = lake_rows(tmp_path, "imaging_study")
    expected = [r for r in midrc_records["imaging_study"]
                if set(r["study_modality"]) & {"CT", "MR"}
                and any(a.get("midrc_mRALE_score", -1) >= 5
                        for a in r.get("imaging_study_annotations", []))]
    assert expected and len(rows) == len(expected)
    assert {k for k in rows[0] if not k.startswith("_")} == {
        "submitter_id", "study_modality", "imaging_study_annotations"}


@pytest.fixture
def big_commons(sdk_home: Path) -> Iterator[FakeCommons]:  # noqa: F811
    commons = FakeCommons(records=generate(n_cases=5_050, studies_per_case=2,
                                           files_per_study=1, seed=7)).start()
    yield commons
    commons.stop()


def test_more_than_ten_thousand_records(tmp_path: Path, big_commons: FakeCommons) -> None:
    credentials = tmp_path / "credentials.json"
    big_commons.write_credentials(credentials)
    result = ingest(tmp_path, big_commons, credentials, "--index", "imaging_study")
    assert result.exit_code == 0, result.output
    assert "imaging_study: 10,100 records" in result.output
    assert len(lake_rows(tmp_path, "imaging_study")) == 10_100


def test_graphql_errors_sent_with_http_200_are_reported(client: GuppyClient,
                                                        fake_commons: FakeCommons) -> None:  # noqa: F811
    with pytest.raises(UserError, match="guppy rejected the case query: .*Invalid operation"):
        client.count("case", {">=": {"sex": 3}})
    # The raw GraphQL answer was indeed 200 with errors.
    body = client.query.graphql_query("{ case(first: 9000, offset: 2000) { sex } }")
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_unknown_index_and_field(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                                 credentials: Path) -> None:
    result = ingest(tmp_path, fake_commons, credentials, "--index", "nosuch")
    assert result.exit_code == 2
    assert 'Cannot query field "nosuch"' in result.stderr
    result = ingest(tmp_path, fake_commons, credentials, "--index", "case",
                    "--fields", "sex,shoe_size")
    assert result.exit_code == 2
    assert result.stderr.rstrip().endswith('guppy answered HTTP 400: Invalid fields: "shoe_size"')


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"),
     ('{"OOPS": {"sex": "Male"}}', "unknown operator 'OOPS'"),
     ('{"IN": {"sex": "Male"}}', "must be a list of values"),
     ('{"AND": {"=": {"sex": "Male"}}}', "AND must be a list"),
     ('{"nested": {"IN": {"a": ["b"]}}}', "string 'path'")],
)
def test_bad_filter_files(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                          credentials: Path, content: str, message: str) -> None:
    filter_file = tmp_path / "filter.json"
    filter_file.write_text(content)
    result = ingest(tmp_path, fake_commons, credentials, "--index", "case",
                    "--filter", str(filter_file))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not fake_commons.requests  # refused before any request


def test_transient_failures_are_retried(client: GuppyClient,
                                        fake_commons: FakeCommons) -> None:  # noqa: F811
    fake_commons.fail_next(500, times=1)
    fake_commons.fail_next(504, times=1)
    assert client.count("case", None) == len(fake_commons.records["case"])
    fake_commons.drop_next(times=2, prefix="/guppy/download")
    assert len(client.download("case", ["sex"], None)) == len(fake_commons.records["case"])


@pytest.mark.parametrize("fault", ["status", "drop", "slow"])
def test_persistent_failures_are_reported(fake_commons: FakeCommons,  # noqa: F811
                                          credentials: Path, fault: str) -> None:
    policy = RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, timeout=0.5)
    client = GuppyClient(fake_commons.base_url, load_credentials(credentials), policy)
    client.authenticate()
    if fault == "status":
        fake_commons.fail_next(504, times=5)
        expected = "answered HTTP 504 after 2 attempts"
    elif fault == "drop":
        fake_commons.drop_next(times=5)
        expected = "connection failed or dropped after 2 attempts"
    else:
        fake_commons.slow_next(3.0, times=5)
        expected = "timed out after 2 attempts"
    started = time.monotonic()
    with pytest.raises(UserError, match=expected):
        client.count("case", None)
    assert time.monotonic() - started < 5


def test_expired_token_is_refreshed_once(client: GuppyClient,
                                         fake_commons: FakeCommons) -> None:  # noqa: F811
    client.authenticate()
    fake_commons.expire_tokens()
    old = fake_commons.issued_tokens[-1]
    assert client.count("case", None) == len(fake_commons.records["case"])
    rejected = [r for r in fake_commons.requests if r.authorization == f"bearer {old}"
                and r.path == "/guppy/graphql"]
    assert len(rejected) == 2  # the SDK's own 401 retry re-sends the same token
    assert len(fake_commons.issued_tokens) == 2


def test_credentials_problems(tmp_path: Path, fake_commons: FakeCommons) -> None:  # noqa: F811
    missing = ingest(tmp_path, fake_commons, tmp_path / "nope.json", "--index", "case")
    assert "credentials file not found" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("api_key=xyz")
    assert "is not JSON" in ingest(tmp_path, fake_commons, garbage, "--index", "case").stderr
    expired = tmp_path / "expired.json"
    fake_commons.write_credentials(expired, expires_in=-60)
    result = ingest(tmp_path, fake_commons, expired, "--index", "case")
    assert result.exit_code == 2 and "expired on" in result.stderr
    revoked = tmp_path / "revoked.json"
    fake_commons.write_credentials(revoked)
    fake_commons.api_keys.clear()
    result = ingest(tmp_path, fake_commons, revoked, "--index", "case")
    assert result.exit_code == 2 and "refused the API key" in result.stderr
    assert not fake_commons.requests[-1].path.startswith("/guppy")


def test_wrong_endpoint(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                        credentials: Path) -> None:
    result = run("--warehouse", str(tmp_path / "wh"), "ingest", "guppy", "--index", "case",
                 "--endpoint", "https://data.midrc.org", "--credentials", str(credentials))
    assert result.exit_code == 2
    assert f"was issued by {fake_commons.base_url}" in result.stderr
    # A key whose issuer does not answer: retried, then reported.
    dead = tmp_path / "dead.json"
    fake_commons.write_credentials(dead, issuer="http://127.0.0.1:9")
    result = run("--warehouse", str(tmp_path / "wh"), "ingest", "guppy", "--index", "case",
                 "--endpoint", "http://127.0.0.1:9", "--credentials", str(dead),
                 "--retries", "1")
    assert result.exit_code == 2
    assert "connection failed or dropped after 1 attempts" in result.stderr


def test_empty_private_tier_result_warns(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                                         credentials: Path) -> None:
    fake_commons.allowed_resources = set()
    result = ingest(tmp_path, fake_commons, credentials, "--index", "case")
    assert result.exit_code == 0
    assert "no case records" in result.output and "lacks access" in result.output
    assert not part_files(tmp_path / "wh" / "lake" / "guppy" / "case")


def test_secrets_never_leak(tmp_path: Path, fake_commons: FakeCommons,  # noqa: F811
                            credentials: Path, caplog: pytest.LogCaptureFixture,
                            capfd: pytest.CaptureFixture[str]) -> None:
    caplog.set_level(logging.DEBUG)
    outputs = [ingest(tmp_path, fake_commons, credentials, "--index", "case")]
    fake_commons.fail_next(400, times=1)
    outputs.append(ingest(tmp_path, fake_commons, credentials, "--index", "data_file"))
    fake_commons.expire_tokens()
    fake_commons.fail_next(401, times=10)
    outputs.append(ingest(tmp_path, fake_commons, credentials, "--index", "imaging_study",
                          "--retries", "1"))
    assert outputs[0].exit_code == 0 and outputs[1].exit_code == 2
    api_key = json.loads(credentials.read_text())["api_key"]
    secrets = [api_key, *fake_commons.issued_tokens]
    assert len(secrets) >= 3
    captured = capfd.readouterr()
    texts = [o.output for o in outputs] + [repr(o.exception) for o in outputs]
    texts += [caplog.text, captured.out, captured.err]
    lake = tmp_path / "wh" / "lake"
    blobs = [p.read_bytes() for p in lake.rglob("*") if p.is_file()]
    for secret in secrets:
        for part in (secret, secret.split(".")[1]):
            assert not any(part in text for text in texts)
            assert not any(part.encode() in blob for blob in blobs)


@pytest.mark.parametrize("answer", [[{"sex": "Male"}, "Male"], {"case": []}])
def test_downloaded_records_that_are_not_objects(
    tmp_path: Path, fake_commons: FakeCommons, credentials: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch, answer: Any,
) -> None:
    monkeypatch.setattr(fake_commons, "download", lambda body, token: (200, answer))
    result = ingest(tmp_path, fake_commons, credentials, "--index", "case")
    assert result.exit_code == 2
    message = result.stderr.strip().removeprefix("error: ")
    assert message.startswith(f"guppy's case download from {fake_commons.base_url}")
    expected = "record 1 is not a JSON object" if isinstance(answer, list) \
        else "does not hold a JSON array of records"
    assert message.endswith(expected)
    assert not part_files(tmp_path / "wh" / "lake" / "guppy" / "case")
