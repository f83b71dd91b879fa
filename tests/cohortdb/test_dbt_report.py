"""What a failed dbt node says to a person."""

from __future__ import annotations

from cohortdb.dbt import NodeResult


def test_a_failure_report_has_no_terminal_escapes() -> None:
    # dbt-bigquery passes on sqlglot's message, which underlines the bad token for a terminal
    message = ("Database Error in model m (models/m.sql)\n  Syntax error: Line 1, Col: 9.\n"
               "    select \x1b[4mDISTINCT\x1b[0m x from t")
    lines = NodeResult("m", "model", "error", message, None, "models/m.sql").report()
    assert lines[0] == "Database Error in model m (models/m.sql)"
    assert lines[-1] == "    select DISTINCT x from t"
    assert not any("\x1b" in line for line in lines)
