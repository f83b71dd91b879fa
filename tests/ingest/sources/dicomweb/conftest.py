"""A real Orthanc for the DICOMweb source's tests: the pydicom corpus and generated studies uploaded.

Orthanc missing is a failure that says how to install it, never a skip.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cohortdb.synthetic.dicom import generate_corpus
from tests.orthanc.server import Orthanc, missing, start


def orthanc_or_fail(work: Path, *, token: bool = False) -> Orthanc:
    """Start Orthanc, or fail the test saying how to install it."""
    why = missing()
    if why is not None:
        pytest.fail(f"the DICOMweb tests need a real Orthanc: {why}")
    return start(work, token=token)


@dataclass
class Stored:
    """What an Orthanc holds: the files it stored (first copies), by kind."""

    server: Orthanc
    corpus: list[Path]
    """pydicom corpus files stored as new instances (``Success``)."""
    generated: list[Path]
    """Generated CR/DX/CT/MR files, all stored."""


def upload(server: Orthanc, files: list[Path]) -> list[Path]:
    """Upload ``files``; those Orthanc stored as new instances."""
    stored = []
    for path in files:
        reply = server.upload(path.read_bytes())
        if reply is not None and reply.get("Status") == "Success":
            stored.append(path)
    return stored


def generated_files(root: Path, seed: int = 5) -> list[Path]:
    """A small synthetic corpus: 6 CR/DX studies, 2 CT series, 1 MR series."""
    return generate_corpus(root, n_crdx=6, n_ct_series=2, ct_slices=3, n_mr_series=1, mr_slices=3,
                           seed=seed, workers=1)


@pytest.fixture(scope="session")
def generated(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return generated_files(tmp_path_factory.mktemp("generated"))


@pytest.fixture(scope="session")
def stored(tmp_path_factory: pytest.TempPathFactory, corpus_files: list[Path], generated: list[Path]
           ) -> Iterator[Stored]:
    """One Orthanc (HTTP Basic) holding the pydicom corpus and the generated studies; read-only for tests."""
    server = orthanc_or_fail(tmp_path_factory.mktemp("orthanc"))
    try:
        corpus = upload(server, corpus_files)
        yield Stored(server, corpus, upload(server, generated))
    finally:
        server.stop()


@pytest.fixture
def fresh(tmp_path: Path, generated: list[Path]) -> Iterator[Orthanc]:
    """An Orthanc of this test's own (it may delete or kill it) holding the generated studies."""
    server = orthanc_or_fail(tmp_path / "orthanc")
    try:
        upload(server, generated)
        yield server
    finally:
        server.stop()


@pytest.fixture
def copies(tmp_path: Path) -> Path:
    """An empty directory for copies of files to ingest."""
    target = tmp_path / "copies"
    target.mkdir()
    return target


def copy_files(files: list[Path], target: Path) -> Path:
    """``files`` copied into ``target`` under unique names; ``target``."""
    for index, path in enumerate(files):
        shutil.copy(path, target / f"{index:03d}_{path.name}")
    return target
