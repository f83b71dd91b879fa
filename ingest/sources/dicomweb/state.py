"""The study state of DICOMweb ingests: which studies of which server were read, in which part.

One row per study read (:data:`STUDIES`), in part files under
``_state/dicomweb_studies/``, each named as the lake part holding its rows (the
``part`` column), written in the same transaction. A row whose lake part is gone
(a ``ingest dicom --full`` in another shard layout drops every DICOM part) is
ignored: its study is read again.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingest.lake import part_files, read_parts
from ingest.settings import Settings

STUDIES = pa.schema([
    ("server", pa.string()),
    ("study_instance_uid", pa.string()),
    ("n_series", pa.int64()),
    ("n_instances", pa.int64()),
    ("part", pa.string()),
])
"""``server``: the DICOMweb base URL; the counts as QIDO-RS gave them when the study was read
(null when the server gave none: such a study is read on every run)."""


def studies_dir(settings: Settings) -> Path:
    """Where the study state's part files are (``_state/dicomweb_studies/``)."""
    return settings.state_dir / "dicomweb_studies"


def read_studies(settings: Settings, server: str) -> pa.Table:
    """The state rows of ``server`` whose lake part still exists (one chunk)."""
    table = read_parts(part_files(studies_dir(settings)), STUDIES)
    if not table.num_rows:
        return table
    table = table.filter(pc.equal(table["server"], server))
    present = [path.stem for path in part_files(settings.dicom_lake / "instances")]
    return table.filter(pc.is_in(table["part"], pa.array(present, pa.string()))).combine_chunks()


def orphans(settings: Settings) -> list[Path]:
    """State part files whose lake part is gone (their rows are ignored; a run deletes them)."""
    present = {path.stem for path in part_files(settings.dicom_lake / "instances")}
    return [path for path in part_files(studies_dir(settings)) if path.stem not in present]


__all__ = ["STUDIES", "orphans", "read_studies", "studies_dir"]
