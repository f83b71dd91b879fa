"""Turns command-line options and environment variables into absolute paths.

Every module of ``ingest`` receives a :class:`Settings`; nothing else there reads
the environment for paths (``cohortdb.project`` resolves the cohorts directory).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ingest.errors import UserError

WAREHOUSE_ENV = "COHORTDB_WAREHOUSE"
DEFAULT_WAREHOUSE = "warehouse"


@dataclass(frozen=True)
class Settings:
    """Absolute locations inside one warehouse directory (the lake under ``lake/``)."""

    warehouse_dir: Path

    @property
    def lake_dir(self) -> Path:
        return self.warehouse_dir / "lake"

    @property
    def dicom_lake(self) -> Path:
        return self.lake_dir / "dicom"

    @property
    def guppy_lake(self) -> Path:
        return self.lake_dir / "guppy"

    @property
    def state_dir(self) -> Path:
        return self.lake_dir / "_state"


def resolve_settings(warehouse: str | os.PathLike[str] | None = None) -> Settings:
    """Settings from ``--warehouse``, else ``$COHORTDB_WAREHOUSE``, else ``./warehouse``.

    Relative paths are resolved against the current directory, once, here.

    Raises:
        UserError: the path is a file, not a directory.
    """
    chosen = warehouse or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE
    path = Path(chosen).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise UserError(f"the warehouse {path} is a file: --warehouse takes a directory")
    return Settings(warehouse_dir=path)
