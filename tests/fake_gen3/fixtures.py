"""pytest fixtures for the fake commons; import them into a test module to use them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cohortdb.synthetic.guppy import generate
from tests.fake_gen3.server import FakeCommons


@pytest.fixture
def sdk_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME: the SDK caches tokens in ~/.cache/gen3 and DRS hosts in ~/.drs_cache."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture(scope="session")
def midrc_records() -> dict[str, list[dict]]:
    """30 cases, 60 imaging studies, 120 data files."""
    return generate(n_cases=30, studies_per_case=2, files_per_study=2, seed=3)


@pytest.fixture
def fake_commons(sdk_home: Path, midrc_records: dict[str, list[dict]]) -> Iterator[FakeCommons]:
    commons = FakeCommons(records=midrc_records).start()
    yield commons
    commons.stop()
