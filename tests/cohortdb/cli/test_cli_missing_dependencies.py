"""A command whose dependency cannot be imported says so in one line, with the install command.

The CLI runs as a process whose ``sitecustomize`` makes the package unimportable
(``sys.modules[name] = None``), as if it were not installed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.cli import run_process
from tests.fake_gen3.server import make_jwt


@pytest.fixture
def without(tmp_path: Path):  # noqa: ANN201
    """A function giving a ``sitecustomize`` directory that hides the named packages."""

    def hide(*names: str) -> Path:
        directory = tmp_path / f"without-{'-'.join(names)}"
        directory.mkdir(exist_ok=True)
        lines = ["import sys", *(f"sys.modules[{name!r}] = None" for name in names)]
        (directory / "sitecustomize.py").write_text("\n".join(lines) + "\n")
        return directory

    return hide


def _credentials(path: Path) -> Path:
    api_key = make_jwt({"iss": "https://commons.example/user", "exp": int(time.time()) + 3600})
    path.write_text(json.dumps({"api_key": api_key, "key_id": "k"}))
    return path


def _one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


def test_live_guppy_and_download_without_gen3(tmp_path: Path, without) -> None:  # noqa: ANN001
    credentials = _credentials(tmp_path / "credentials.json")
    ids = tmp_path / "ids.txt"
    ids.write_text("dg.MD1R/0001\n")
    commands = [
        ["ingest", "guppy", "--index", "case", "--endpoint", "https://commons.example",
         "--credentials", credentials],
        ["download", "--endpoint", "https://commons.example", "--credentials", credentials,
         "--object-ids", ids, "--out", tmp_path / "out"],
    ]
    for command in commands:
        result = run_process("-w", tmp_path / "W", *command, cwd=tmp_path, pythonpath=[without("gen3")])
        assert result.returncode == 2, result.stderr
        line = _one_error_line(result.stderr)
        assert "gen3" in line and "pip install 'gen3>=4.20'" in line
    # a dump needs no SDK
    dump = tmp_path / "case.json"
    dump.write_text('[{"submitter_id": "c1", "project_id": "p"}]')
    result = run_process("-w", tmp_path / "W", "ingest", "guppy", "--index", "case", "--from-json", dump,
                         cwd=tmp_path, pythonpath=[without("gen3")])
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("hidden", ["dbt", "dbt.adapters.duckdb"])
def test_build_and_demo_without_dbt(tmp_path: Path, without, hidden: str) -> None:  # noqa: ANN001
    for command in (["build"], ["demo"]):
        warehouse = tmp_path / "W"
        result = run_process("-w", warehouse, *command, cwd=tmp_path, pythonpath=[without(hidden)])
        assert result.returncode == 2, result.stderr
        line = _one_error_line(result.stderr)
        assert "dbt" in line and "pip install 'cohortdb[dbt]'" in line
        assert not (warehouse / "demo-dicom").exists()  # nothing generated before the check
