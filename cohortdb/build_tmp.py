"""``cohortdb build``: compile the saved cohorts into models, then ``dbt build``."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from cohortdb.cohorts.definitions import compile_cohorts
from cohortdb.dbt import DbtOutcome, run_dbt
from ingest.settings import Settings

if TYPE_CHECKING:
    from cohortdb.cohorts.filter_sql import Dialect


class BuildOutcome(DbtOutcome):
    """A dbt build's outcome with a one-line summary."""

    def summary(self) -> str:
        """``dbt build: 23 models, 80 tests — 103 ok, 0 failed`` style counts."""
        kinds = Counter(n.resource_type.split(".")[-1] for n in self.nodes)
        ok = sum(n.status in ("success", "pass") for n in self.nodes)
        what = ", ".join(f"{count} {kind}s" for kind, count in sorted(kinds.items()))
        verdict = "ok" if self.success else "FAILED"
        return f"dbt build {verdict}: {what} — {ok} ok, {len(self.problems())} not ok"


def build(settings: Settings, *, target: Dialect = "duckdb", select: str | None = None) -> BuildOutcome:
    """Compile ``cohorts/`` into models, then run ``dbt build`` (seeds, models, data
    tests) on the loaded warehouse.

    Raises:
        UserError: a cohort definition is invalid (nothing is run then).
    """
    compile_cohorts(settings, dialect=target)
    args = ["build"] + (["--select", select] if select else [])
    outcome = run_dbt(settings, args, target=target)
    return BuildOutcome(success=outcome.success, nodes=outcome.nodes)
