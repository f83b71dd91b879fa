"""`cohortdb dashboard` as a process: stopping it stops the Streamlit server it started."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ingest.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _serving(url: str) -> bool:
    try:
        return bool(urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok")
    except OSError:
        return False


def test_sigterm_to_the_command_stops_the_server(dash_built: Settings, tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(dash_built.warehouse_dir), "dashboard",
         "--port", str(port)], cwd=tmp_path, env=dict(os.environ, PYTHONPATH=str(ROOT)),
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not _serving(url):
            assert process.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)  # to the command only, as `kill PID` or a service manager does
        assert process.wait(timeout=20) == 0
        deadline = time.monotonic() + 15
        while _serving(url):  # the server it started is gone too
            assert time.monotonic() < deadline, "the Streamlit server outlived cohortdb dashboard"
            time.sleep(0.2)
    finally:
        with contextlib.suppress(ProcessLookupError):  # the command, or a server it left behind
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
