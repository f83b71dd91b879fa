"""cohortdb: Gen3 guppy records and DICOM headers → Parquet lake → SQL warehouse."""

from __future__ import annotations

__version__ = "0.1.0"
