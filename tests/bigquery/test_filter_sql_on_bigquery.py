"""Guppy filters' BigQuery translation run on BigQuery (the emulator), for what
sqlglot cannot check: how the server reads the string literals."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
from google.cloud import bigquery

from cohortdb.cohorts.filter_sql import filter_to_sql

# Every character GoogleSQL has a named escape for, and the two it must escape.
NAMED = "\a\b\f\n\r\t\v\\'"


@pytest.mark.parametrize("text", [
    "line one\nline two", "a\r\nb", "tab\there", "O'Brien \\ co", NAMED, "x" + NAMED + "y"])
def test_a_value_with_escaped_characters_matches_itself(bq: Any, text: str) -> None:
    where = filter_to_sql({"=": {"s": text}}, {"s": pa.string()}, "bigquery")
    # the text with its escapable characters written out or dropped, as a wrong literal would read
    others = {text + "x", text.replace("\\", ""), text.replace("\n", "\\n"), text.replace("\n", "\\x0a"),
              text.replace("'", ""), "x"} - {text}
    job = bq.query(f"select s from unnest(@values) as s where {where}",
                   job_config=bigquery.QueryJobConfig(query_parameters=[
                       bigquery.ArrayQueryParameter("values", "STRING", [text, *sorted(others)])]))
    assert [row[0] for row in job.result()] == [text], where
