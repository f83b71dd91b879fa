"""/quality: where the commons and the headers disagree, which PHI attributes the headers
carry, what ingest could not read (or read in part), each with counts and drill-down."""

from __future__ import annotations

import streamlit as st

from cohortdb.warehouse import WarehouseReader
from dashboards import queries, ui

CHECKS = {
    "missing_dicom_headers": "Listed by the commons, no headers ingested",
    "missing_guppy_record": "Headers ingested, not listed by the commons",
    "modality": "Modality differs",
    "body_part_examined": "Body part differs",
    "patient_id": "Patient ID is not the case id",
    "series_count": "Series count differs",
}


def _reconciliation(source: WarehouseReader) -> None:
    summary = queries.reconciliation_summary(source)
    if summary.height == 0:
        st.success("The commons and the headers agree on every study.", icon=":material/check_circle:")
        return
    cells = st.columns(min(summary.height, 6))
    for cell, row in zip(cells, summary.iter_rows(named=True), strict=False):
        cell.metric(CHECKS.get(row["check_name"], row["check_name"]), f"{row['studies']:,}", border=True)
    check = st.selectbox("Show the studies of", summary["check_name"].to_list(), key="quality_check",
                         format_func=lambda c: f"{CHECKS.get(c, c)} ({dict(summary.iter_rows())[c]:,})")
    rows = queries.reconciliation_rows(source, check)
    st.caption("The first 1,000, by Study UID. Select a row to open its study.")
    event = st.dataframe(rows, hide_index=True, width="stretch", on_select="rerun", selection_mode="single-row",
                         key="quality_reconciliation", column_config=ui.columns_config(rows))
    if event is not None and event.selection.rows:
        st.switch_page("app_pages/study.py", query_params={"study": rows["study_uid"][event.selection.rows[0]]})


def _phi(source: WarehouseReader) -> None:
    audit = queries.phi_audit(source)
    if audit.height == 0:
        st.success("No attribute of the PS3.15 Basic Profile is present in the headers.",
                   icon=":material/verified_user:")
        return
    non_empty = audit.filter(audit["n_instances_non_empty"] > 0)
    st.caption(f"{audit.height} attributes of the DICOM PS3.15 Basic Application Level Confidentiality Profile "
               f"are present; {non_empty.height} have a value somewhere. Values are never shown.")
    st.dataframe(audit, hide_index=True, width="stretch", height=460, column_config={
        "pct_instances_non_empty": st.column_config.ProgressColumn("Non-empty in % of instances", format="%.1f%%",
                                                                   min_value=0, max_value=100),
        "basic_profile_action": st.column_config.Column("Action", help="PS3.15 Table E.1-1: D dummy, Z zero, "
                                                        "X remove, U replace UID"),
        **{k: v for k, v in ui.columns_config(audit).items() if k not in ("pct_instances_non_empty",
                                                                          "basic_profile_action")}})


def _errors(source: WarehouseReader) -> None:
    summary = queries.error_summary(source)
    truncated = queries.truncated_instances(source)
    if summary.height == 0:
        st.success("Every source ingested was read whole.", icon=":material/check_circle:")
    else:
        errors = int(summary.filter(summary["severity"] == "error")["sources"].sum())
        warnings = int(summary.filter(summary["severity"] == "warning")["sources"].sum())
        cells = st.columns(3)
        cells[0].metric("Sources not read", f"{errors:,}", border=True)
        cells[1].metric("Read in part (warnings)", f"{warnings:,}", border=True)
        cells[2].metric("Truncated instances", f"{truncated.height:,}", border=True)
        labels = {f"{r['severity']}|{r['error_type']}": f"{r['error_type']} ({r['severity']}): {r['sources']:,}"
                  for r in summary.iter_rows(named=True)}
        chosen = st.selectbox("Show the sources of", list(labels), key="quality_error",
                              format_func=lambda k: labels[k])
        severity, error_type = chosen.split("|", 1)
        st.dataframe(queries.error_rows(source, error_type, severity), hide_index=True,
                     width="stretch")
    if truncated.height:
        st.subheader("Truncated instances")
        st.caption("Files that end early: the elements before `truncated_at` (bytes) are in the warehouse. "
                   "Select a row to open its study.")
        event = st.dataframe(truncated, hide_index=True, width="stretch", on_select="rerun",
                             selection_mode="single-row", key="quality_truncated")
        if event is not None and event.selection.rows:
            uid = truncated["study_instance_uid"][event.selection.rows[0]]
            if uid:
                st.switch_page("app_pages/study.py", query_params={"study": uid})


def main() -> None:
    st.title("Quality")
    source = ui.reader("marts.reconciliation", "marts.phi_audit")
    tabs = st.tabs(["Reconciliation", "PHI audit", "Ingest errors"], key="quality_tab", on_change="rerun")
    with tabs[0]:
        if tabs[0].open is not False:
            st.caption("Where the commons' records and the DICOM headers disagree, one row per study and check.")
            _reconciliation(source)
    with tabs[1]:
        if tabs[1].open:
            _phi(source)
    with tabs[2]:
        if tabs[2].open:
            _errors(source)


main()
