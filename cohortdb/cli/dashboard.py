"""``cohortdb dashboard``: the Streamlit app on the warehouse, headless, on 127.0.0.1 by default.

The app (``dashboards/app.py``) is found as a file, never imported here: the
``dashboards`` package sits above ``cohortdb`` and reads the warehouse through it.
The warehouse and cohorts directories reach it through ``$COHORTDB_WAREHOUSE`` and
``$COHORTDB_COHORTS``, the engine through ``$COHORTDB_TARGET`` (and BigQuery's datasets
through the variables :func:`~cohortdb.warehouse.bigquery.config_environment` sets).
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from cohortdb.cli.common import state
from cohortdb.warehouse.bigquery import BigQueryWarehouse, config_environment
from ingest.errors import UserError

DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"


def app_path() -> Path:
    """``dashboards/app.py`` of the installed (or checked-out) cohortdb.

    Raises:
        UserError: streamlit or the dashboards package is not installed.
    """
    if importlib.util.find_spec("streamlit") is None:
        raise UserError("the dashboard needs streamlit: pip install 'cohortdb[dashboard]'")
    spec = importlib.util.find_spec("dashboards")
    if spec is None or not spec.submodule_search_locations:
        raise UserError("the dashboards package is not installed with cohortdb")
    return Path(next(iter(spec.submodule_search_locations))) / "app.py"


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """The ``streamlit run`` command line: headless, no usage statistics, no file watcher."""
    return [sys.executable, "-m", "streamlit", "run", str(app),
            "--server.headless", "true", "--server.address", host, "--server.port", str(port),
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
            "--server.runOnSave", "false", "--runner.magicEnabled", "false", "--client.toolbarMode", "minimal",
            "--theme.base", "light", "--theme.primaryColor", "#1f5fa6"]


def dashboard_command(
    ctx: typer.Context,
    port: Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to serve on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to bind (default: this machine only).")
                    ] = DEFAULT_HOST,
) -> None:
    """Browse the warehouse in a web browser: the cohort explorer, studies and their DICOM
    headers, data quality, a read-only SQL box, cohorts and exports."""
    current = state(ctx)
    warehouse = current.warehouse()
    app = app_path()
    environment = dict(os.environ, COHORTDB_WAREHOUSE=str(current.settings.warehouse_dir),
                       COHORTDB_COHORTS=str(current.cohorts_dir), COHORTDB_TARGET=warehouse.target.value)
    place = str(current.settings.warehouse_dir)
    if isinstance(warehouse, BigQueryWarehouse):
        warehouse.version()  # the API answers, with these credentials: or one line now, not a page later
        environment |= config_environment(warehouse.config)
        place = warehouse.location
    typer.echo(f"cohortdb dashboard of {place}: http://{host}:{port} (Ctrl-C stops it)", err=True)
    code = serve(streamlit_command(app, host, port), environment)
    if code not in (0, -signal.SIGINT, -signal.SIGTERM, 130):
        raise typer.Exit(code)


def serve(command: list[str], environment: dict[str, str]) -> int:
    """Run the server until it exits; a SIGTERM or SIGHUP sent to this process reaches it too
    (a service manager or ``kill`` stops both, never leaving the server behind). Ctrl-C
    reaches both through the terminal; the server is then given 10 s to stop."""
    process = subprocess.Popen(command, env=environment)

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        return process.wait()
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if process.poll() is None:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
