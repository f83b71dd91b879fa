"""Start and stop bqemulator (from the venv `make bqemu` makes) on 127.0.0.1: for the tests'
fixture and for bench/warehouse_bigquery.py."""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / ".venv-bqemu" / "bin" / "bqemulator"
PROJECT = "test-project"


class EmulatorError(RuntimeError):
    """The emulator is not installed or did not start (the message says why, with its log's tail)."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_emulator(log_path: Path, ready_s: float = 60.0) -> Iterator[tuple[str, int]]:
    """The REST endpoint (``http://127.0.0.1:PORT``) and PID of a fresh emulator, stopped by its
    PID when the block ends; its output goes to ``log_path``.

    Raises:
        EmulatorError: no emulator installed (run ``make bqemu``), or not ready within ``ready_s`` seconds.
    """
    if not EMULATOR.exists():
        raise EmulatorError(f"no BigQuery emulator at {EMULATOR}: run `make bqemu` (make test does)")
    rest, grpc = _free_port(), _free_port()
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(EMULATOR), "start", "--rest-host", "127.0.0.1", "--rest-port", str(rest), "--grpc-host",
             "127.0.0.1", "--grpc-port", str(grpc), "--project", PROJECT, "--log-level", "warning"],
            stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{rest}"
        deadline = time.monotonic() + ready_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise EmulatorError(f"bqemulator did not start:\n{log_path.read_text()[-3000:]}") from None
                time.sleep(0.1)
        yield url, process.pid
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
