"""/sql: a read-only query box. One SELECT per run on the published warehouse, no file
access, configuration locked, a time limit and a row cap; the result downloads as CSV."""

from __future__ import annotations

import polars as pl
import streamlit as st

from cohortdb import UserError
from cohortdb.export import delimited_text
from cohortdb.warehouse import Dialect
from dashboards import queries, ui

STUDIES_BY_MODALITY: dict[Dialect, str] = {
    "duckdb": "select modality, count(*) as studies\n"
              "from marts.imaging_studies, unnest(modalities) as t(modality)\n"
              "group by modality order by studies desc",
    "bigquery": "select modality, count(*) as studies\n"
                "from marts.imaging_studies, unnest(modalities) as modality\n"
                "group by modality order by studies desc",
}
"""The one example whose SQL differs by engine (how a list column is unnested)."""
LANGUAGE: dict[Dialect, str] = {"duckdb": "DuckDB SQL", "bigquery": "GoogleSQL (BigQuery)"}
EXAMPLES = {
    "Series by manufacturer and model": "select manufacturer, manufacturer_model_name, count(*) as series\n"
                                        "from marts.imaging_series group by manufacturer, manufacturer_model_name\n"
                                        "order by series desc",
    "kVp of chest radiographs": "select kvp, count(*) as instances from marts.dicom_instances\n"
                                "where modality in ('CR', 'DX') and body_part_examined = 'CHEST'\n"
                                "group by kvp order by kvp",
    "The tag catalog": "select tag_path_pattern, keyword_path_pattern, vr, n_instances, example_values\n"
                       "from marts.tag_catalog order by n_instances desc",
}


def examples(dialect: Dialect) -> dict[str, str]:
    """The example queries, in ``dialect``."""
    return {"Studies by modality": STUDIES_BY_MODALITY[dialect], **EXAMPLES}


def _example(dialect: Dialect) -> None:
    st.session_state["sql"] = examples(dialect)[st.session_state["sql_example"]]


def main() -> None:
    st.title("SQL")
    source = ui.reader()
    st.caption(f"One SELECT in {LANGUAGE[source.dialect]} on the warehouse, read-only: no files, no settings; "
               "stopped after "
               f"{queries.SQL_TIMEOUT_S:g} s; the first {queries.SQL_MAX_ROWS:,} rows are kept. "
               "Schemas: raw, staging, intermediate, marts, cohorts, reference.")
    if "sql" not in st.session_state:
        st.session_state["sql"] = st.query_params.get("q") or STUDIES_BY_MODALITY[source.dialect]
    st.selectbox("Examples", list(examples(source.dialect)), key="sql_example", index=None, on_change=_example,
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
