"""A real BigQuery API for the tests: bqemulator, from the venv `make bqemu` makes, on 127.0.0.1."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cohortdb.warehouse.bigquery import BigQueryConfig, client

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / ".venv-bqemu" / "bin" / "bqemulator"
PROJECT = "test-project"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def bq_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator's REST endpoint; it is stopped by its PID at the end of the session."""
    if not EMULATOR.exists():
        pytest.fail(f"no BigQuery emulator at {EMULATOR}: run `make bqemu` (make test does)")
    rest, grpc = _free_port(), _free_port()
    log_path = tmp_path_factory.mktemp("bqemu") / "server.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(EMULATOR), "start", "--rest-host", "127.0.0.1", "--rest-port", str(rest), "--grpc-host",
             "127.0.0.1", "--grpc-port", str(grpc), "--project", PROJECT, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{rest}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"bqemulator did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.1)
    yield url
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@pytest.fixture
def bq_config(bq_emulator: str, request: pytest.FixtureRequest) -> BigQueryConfig:
    """A dataset prefix of the test's own on the emulator."""
    name = "".join(c if c.isalnum() else "_" for c in request.node.name)[:40]
    return BigQueryConfig(PROJECT, f"t_{name}", api_endpoint=bq_emulator)


@pytest.fixture
def bq(bq_config: BigQueryConfig, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    import google.cloud.bigquery.client as module

    monkeypatch.setattr(module, "_GENERIC_CONTENT_TYPE", "application/octet-stream")  # emulator bug
    opened = client(bq_config)
    yield opened
    opened.close()
