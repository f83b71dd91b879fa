"""Reading sources into the Parquet lake: one folder per source."""

from __future__ import annotations
