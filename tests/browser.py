"""The dashboard in a real browser, for any test (a plugin of the root conftest): `cohortdb
dashboard` started on a free port, and Playwright driving Debian's chromium."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000


@contextmanager
def dashboard_server(options: Sequence[str], log_path: Path, ready_s: float = 60.0) -> Iterator[str]:
    """``cohortdb <options> dashboard`` on a free port of 127.0.0.1, until the block ends: its URL.

    Raises:
        RuntimeError: it did not answer within ``ready_s`` seconds (its log is in ``log_path``).
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "cohortdb", *options, "dashboard", "--port", str(port)],
        cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_s
    try:
        while True:
            try:
                if urllib.request.urlopen(url + "/_stcore/health", timeout=1).read() == b"ok":
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is missing: apt-get install chromium (make test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1500, "height": 1000}, accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(TIMEOUT_MS)
    yield opened
    context.close()


def open_page(page: Any, url: str) -> None:
    """Go to ``url`` and wait until the script has finished running."""
    page.goto(url)
    page.get_by_test_id("stAppViewContainer").wait_for()
    settle(page)


SCRIPT_IDLE = """() => document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-script-state')
                      === 'notRunning' && !document.querySelector('[data-testid="stStatusWidget"]')"""
"""True once the app's script has run to its end (a cold first run shows no status widget for seconds)."""


def settle(page: Any) -> None:
    """Wait until the script has finished, and stays finished (a run may start another: a URL
    written back, a page switched)."""
    time.sleep(0.5)
    for _ in range(2):
        page.wait_for_function(SCRIPT_IDLE, timeout=TIMEOUT_MS)
        time.sleep(0.5)
    page.wait_for_function(SCRIPT_IDLE, timeout=TIMEOUT_MS)


def no_exception(page: Any) -> None:
    assert page.get_by_test_id("stException").count() == 0, page.get_by_test_id("stException").first.inner_text()


def metric(page: Any, label: str) -> str:
    card = page.get_by_test_id("stMetric").filter(has=page.get_by_test_id("stMetricLabel").get_by_text(label,
                                                                                                       exact=True))
    return str(card.first.get_by_test_id("stMetricValue").inner_text()).strip()


def shot(page: Any, root: Path, name: str) -> None:
    page.screenshot(path=str(root / f"{name}.png"), full_page=True)
