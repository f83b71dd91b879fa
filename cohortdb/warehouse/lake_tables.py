"""Which lake directories become which ``raw`` tables (shared by every loader)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cohortdb.warehouse.guppy_fields import DECLARED
from ingest.dicom.schema import TABLES as DICOM_TABLES
from ingest.lake import part_files
from ingest.settings import Settings


@dataclass(frozen=True)
class LakeTable:
    """A lake table: its ``raw`` name, part files, and schema when fixed (None: from the files).

    ``guppy_index`` names the guppy index of a ``guppy_<index>`` table (else None).
    """

    name: str
    files: list[Path]
    schema: pa.Schema | None
    guppy_index: str | None = None

    def empty_schema(self) -> pa.Schema:
        """The schema of the table when it has no part file."""
        if self.schema is not None:
            return self.schema
        return DECLARED[self.guppy_index or ""]


def lake_tables(settings: Settings) -> list[LakeTable]:
    """The DICOM tables and the MIDRC guppy indices (always, possibly empty), and
    one table per other guppy index present."""
    tables = [
        LakeTable(f"dicom_{name}", part_files(settings.dicom_lake / name), schema)
        for name, schema in DICOM_TABLES.items()
    ]
    indices = set(DECLARED)
    if settings.guppy_lake.is_dir():
        indices |= {p.name for p in settings.guppy_lake.iterdir() if p.is_dir()}
    for index in sorted(indices):
        files = part_files(settings.guppy_lake / index)
        if files or index in DECLARED:
            tables.append(LakeTable(f"guppy_{index}", files, None, guppy_index=index))
    return tables


def unified_schema(files: list[Path]) -> pa.Schema:
    """The union of the part files' schemas (fields by name, first type seen wins)."""
    return pa.unify_schemas([pq.read_schema(f) for f in files], promote_options="permissive")
