"""Shared fixtures: the pydicom test corpus offline, warehouses in temporary directories."""

from __future__ import annotations

import os
import shutil
import warnings
from pathlib import Path

import pydicom.data
import pytest

from ingest.settings import Settings, resolve_settings

pytest_plugins = ["tests.browser"]  # the browser and page fixtures, for the dashboard's tests on either engine

# pydicom-data is installed; without this, pydicom tries to download ~79 files (≈20 s each).
pydicom.data.download._SIMULATE_NETWORK_OUTAGE = True


def _corpus() -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = pydicom.data.get_testdata_files()
    return sorted(Path(f) for f in files if os.path.isfile(f))


CORPUS = _corpus()


@pytest.fixture(scope="session")
def corpus_files() -> list[Path]:
    """Every file of pydicom's test corpus (pydicom-data plus the bundled files)."""
    assert len(CORPUS) > 200, "pydicom-data is not installed"
    return CORPUS


@pytest.fixture(scope="session")
def corpus_dir(tmp_path_factory: pytest.TempPathFactory, corpus_files: list[Path]) -> Path:
    """The corpus copied into one directory (names made unique with a 0-based prefix)."""
    target = tmp_path_factory.mktemp("corpus")
    for index, path in enumerate(corpus_files):
        shutil.copy(path, target / f"{index:03d}_{path.name}")
    return target


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return resolve_settings(tmp_path / "warehouse")


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A built warehouse: ~100 synthetic instances (one copied twice), linked guppy records,
    the repository's cohorts. Tests only read it."""
    from cohortdb.build import build
    from cohortdb.demo import ingest_linked_guppy
    from cohortdb.project import SHIPPED_COHORTS_DIR
    from cohortdb.synthetic.dicom import generate_corpus
    from cohortdb.warehouse.duckdb import load_duckdb
    from ingest.sources.files.ingest import ingest_dicom

    root = tmp_path_factory.mktemp("built")
    corpus = root / "dicom"
    generate_corpus(corpus, n_crdx=60, n_ct_series=1, ct_slices=8, n_mr_series=1, mr_slices=6, seed=3)
    copy = root / "copy"
    first = sorted(corpus.rglob("*.dcm"))[0]
    copy.mkdir()
    shutil.copy(first, copy / "same-instance-again.dcm")
    settings = resolve_settings(root / "warehouse")
    ingest_dicom(settings, [corpus, copy], workers=1)
    ingest_linked_guppy(settings, seed=3)
    load_duckdb(settings)
    outcome = build(settings, SHIPPED_COHORTS_DIR).outcome
    assert outcome.success, outcome.problems()
    return settings


