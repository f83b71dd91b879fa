"""cohortdb: the lake becomes a SQL warehouse, cohorts and exports; a Python API and a CLI.

``from cohortdb import Warehouse`` is the Python API (:mod:`cohortdb.api`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ingest.errors import UserError

if TYPE_CHECKING:
    from cohortdb.api import Warehouse

__version__ = "0.1.0"
__all__ = ["UserError", "Warehouse", "__version__"]


def __getattr__(name: str) -> Any:
    # The API imports the warehouse and cohort modules; the CLI must not pay for them at start.
    if name == "Warehouse":
        from cohortdb.api import Warehouse

        return Warehouse
    raise AttributeError(f"module 'cohortdb' has no attribute {name!r}")
