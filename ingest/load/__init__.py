"""Loading the Parquet lake into a warehouse (schema ``raw``)."""

from __future__ import annotations
