"""Which lake directories become which ``raw`` tables (shared by every loader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.dicom.schema import TABLES as DICOM_TABLES
from ingest.lake import part_files
from ingest.settings import Settings


@dataclass(frozen=True)
class LakeTable:
    """A lake table: its ``raw`` name, part files, and schema when fixed (None: from the files)."""

    name: str
    files: list[Path]
    schema: pa.Schema | None


def lake_tables(settings: Settings) -> list[LakeTable]:
    """The DICOM tables (always, possibly empty) and one table per guppy index present."""
    tables = [
        LakeTable(f"dicom_{name}", part_files(settings.dicom_lake / name), schema)
        for name, schema in DICOM_TABLES.items()
    ]
    if settings.guppy_lake.is_dir():
        for index_dir in sorted(p for p in settings.guppy_lake.iterdir() if p.is_dir()):
            files = part_files(index_dir)
            if files:
                tables.append(LakeTable(f"guppy_{index_dir.name}", files, None))
    return tables
