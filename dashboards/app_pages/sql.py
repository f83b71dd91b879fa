"""/sql: a read-only query box. One SELECT per run on the published warehouse, no file
access, configuration locked, a time limit and a row cap; the result downloads as CSV."""

from __future__ import annotations

import polars as pl
import streamlit as st

from cohortdb import UserError
from cohortdb.export import delimited_text
from cohortdb.warehouse import Dialect
from dashboards import queries, ui


def _example(dialect: Dialect) -> None:
    st.session_state["sql"] = queries.sql_examples(dialect)[st.session_state["sql_example"]]


def main() -> None:
    st.title("SQL")
    source = ui.reader()
    examples = queries.sql_examples(source.dialect)
    st.caption(f"One SELECT in {queries.SQL_LANGUAGE[source.dialect]} on the warehouse, read-only: no files, "
               f"no settings; stopped after {queries.SQL_TIMEOUT_S:g} s; the first {queries.SQL_MAX_ROWS:,} rows "
               "are kept. Schemas: raw, staging, intermediate, marts, cohorts, reference.")
    if "sql" not in st.session_state:
        st.session_state["sql"] = st.query_params.get("q") or next(iter(examples.values()))
    st.selectbox("Examples", list(examples), key="sql_example", index=None, on_change=_example,
                 args=(source.dialect,), placeholder="start from an example")
    st.text_area("Query", key="sql", height=180)
    if not st.button("Run", key="run", type="primary", icon=":material/play_arrow:"):
        if "sql_result" in st.session_state:  # a rerun (the download button): the last result again
            _show(*st.session_state["sql_result"])
        return
    query = st.session_state["sql"]
    try:
        result, more = queries.user_sql(source, query)
    except UserError as exc:
        st.session_state.pop("sql_result", None)
        ui.error(exc)
        return
    st.session_state["sql_result"] = (result, more)
    _show(result, more)


def _show(result: pl.DataFrame, more: bool) -> None:
    note = f"{result.height:,} rows" + (f" (the first {queries.SQL_MAX_ROWS:,}; there are more)" if more else "")
    st.caption(note)
    st.dataframe(result, hide_index=True, width="stretch", height=min(38 + 35 * max(result.height, 1), 560))
    st.download_button("Download CSV", lambda: delimited_text(result.to_arrow()), "query.csv", "text/csv",
                       key="sql_download", icon=":material/download:", on_click="ignore")


main()
