"""cohortdb: the lake becomes a SQL warehouse, cohorts and exports; a Python API and a CLI."""

from __future__ import annotations

__version__ = "0.1.0"
