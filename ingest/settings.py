"""Turns command-line options and environment variables into absolute paths.

Every module of ``ingest`` receives a :class:`Settings`; nothing else there reads
the environment for paths (``cohortdb.project`` resolves the cohorts directory).
"""

from __future__ import annotations

import os
import stat
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
        UserError: the path is a file, lies under a file, or cannot be looked at (a
            directory above it is not searchable, a name is too long).
    """
    chosen = warehouse or os.environ.get(WAREHOUSE_ENV) or DEFAULT_WAREHOUSE
    path = Path(chosen).expanduser().resolve()
    for existing in (path, *path.parents):
        try:
            mode = existing.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as exc:
            raise UserError(f"cannot use the warehouse {path}: {exc.strerror}") from None
        if stat.S_ISDIR(mode):
            break
        if existing == path:
            raise UserError(f"the warehouse {path} is a file: --warehouse takes a directory")
        raise UserError(f"the warehouse {path} cannot be created: {existing} is a file")
    return Settings(warehouse_dir=path)


def make_warehouse_dir(settings: Settings) -> None:
    """Create the warehouse directory (and its parents) unless it exists, before anything is written there.

    Raises:
        UserError: it cannot be created or written in (permissions, a read-only or special filesystem).
    """
    path = settings.warehouse_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the warehouse directory {path}: {exc.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"cannot write in the warehouse directory {path}: permission denied")
