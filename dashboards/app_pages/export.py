"""/export: the explorer's selection as CSV, TSV or Parquet, the gen3 drs-pull manifest of
its data files and its studies as FHIR NDJSON. Files are made when a button is pressed."""

from __future__ import annotations

import io

import streamlit as st

from cohortdb import UserError
from cohortdb.export import delimited_text, manifest_json
from dashboards import queries, ui
from dashboards.selection import ENTITIES


def main() -> None:
    st.title("Export")
    source = ui.reader(*(f"marts.{e.mart}" for e in ENTITIES.values()), "marts.fhir_imaging_studies")
    selection = ui.current_selection()
    entity = ENTITIES[selection.entity]
    try:
        explored = queries.explore(source, selection)
    except UserError as exc:
        ui.error(exc)
        return
    total = explored.metrics[0][1]
    st.metric(f"{entity.label} selected", f"{total:,}")
    st.page_link("app_pages/explore.py", label="Change the selection in the explorer",
                 icon=":material/travel_explore:")
    if total == 0:
        st.info("Nothing is selected: there is nothing to export.", icon=":material/info:")
        return
    stem = f"cohortdb-{entity.name}"

    st.subheader("Table")
    st.caption(f"Every column of marts.{entity.mart} for the selected rows. In CSV and TSV, lists and "
               "structs are JSON, as `cohortdb export csv` writes them; Parquet keeps them nested.")
    cells = st.columns(3)
    cells[0].download_button("CSV", lambda: delimited_text(queries.selection_rows(source, selection).to_arrow()),
                             f"{stem}.csv", "text/csv", key="export_csv", icon=":material/table:",
                             on_click="ignore")
    cells[1].download_button("TSV", lambda: delimited_text(queries.selection_rows(source, selection).to_arrow(),
                                                           "tsv"),
                             f"{stem}.tsv", "text/tab-separated-values", key="export_tsv", icon=":material/table:",
                             on_click="ignore")

    def parquet() -> bytes:
        buffer = io.BytesIO()
        queries.selection_rows(source, selection).write_parquet(buffer, compression="zstd")
        return buffer.getvalue()

    cells[2].download_button("Parquet", parquet, f"{stem}.parquet", "application/vnd.apache.parquet",
                             key="export_parquet", icon=":material/table:", on_click="ignore")

    st.subheader("Files")
    st.caption("The data files of the selection as a gen3 manifest: "
               "`gen3 drs-pull manifest manifest.json DIR` or `cohortdb download` fetches them.")
    st.download_button("drs-pull manifest (JSON)",
                       lambda: manifest_json(queries.selection_manifest(source, selection)),
                       "manifest.json", "application/json", key="export_manifest", icon=":material/cloud_download:",
                       on_click="ignore")

    st.subheader("FHIR")
    st.caption("One FHIR R4 ImagingStudy per selected study, one JSON per line: series and instances where "
               "the headers were ingested, what the commons knows otherwise.")
    st.download_button("ImagingStudy NDJSON",
                       lambda: queries.selection_fhir(source, selection),
                       "imaging-studies.ndjson", "application/fhir+ndjson", key="export_fhir",
                       icon=":material/local_hospital:", on_click="ignore")


main()
