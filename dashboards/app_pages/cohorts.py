"""/cohorts: the explorer's selection as a guppy filter (copy it, or save it as a cohort
file through the cohorts library), a pasted filter loaded into the explorer, the saved
cohorts with their sizes, and the difference of two cohorts."""

from __future__ import annotations

import json

import polars as pl
import streamlit as st

from cohortdb import UserError
from cohortdb.api import Warehouse
from cohortdb.cohorts.definitions import INDICES
from cohortdb.warehouse import WarehouseReader
from dashboards import queries, ui
from dashboards.selection import ENTITIES, FILTER_PARAM, TAB_PARAM, from_guppy, to_guppy, to_params

TAB_OF_INDEX = {entity.guppy_index: entity.name for entity in ENTITIES.values() if entity.guppy_index}


def _current(source: WarehouseReader) -> None:
    selection = ui.current_selection()
    entity = ENTITIES[selection.entity]
    form = to_guppy(selection)
    st.subheader("This selection")
    if form.index is None:
        st.info(f"The {entity.label.lower()} tab has no guppy index: select on the studies, cases or files "
                "tab to make a cohort.", icon=":material/info:")
        return
    explored = queries.explore(source, selection)
    st.caption(f"{explored.metrics[0][1]:,} {entity.label.lower()} in the explorer · guppy index "
               f"`{form.index}`. A cohort selects the commons' records, so rows known only from DICOM headers "
               "are not in it.")
    st.code(json.dumps(form.filter, indent=2), language="json")
    if form.dicom_conditions:
        st.markdown("DICOM conditions (met by one instance of each selected row):")
        st.code("\n".join(form.dicom_conditions), language="sql")
    if form.left_out:
        st.warning(f"Not expressible in a cohort definition, left out: {', '.join(form.left_out)}.",
                   icon=":material/warning:")
    with st.form("save_cohort"):
        st.markdown("**Save as a cohort** (the next `cohortdb build` builds it into `cohorts.<name>`)")
        name = st.text_input("Name", placeholder="lowercase letters, digits and _", key="cohort_name")
        description = st.text_input("Description", key="cohort_description")
        overwrite = st.checkbox("Replace a cohort of that name", key="cohort_overwrite")
        if st.form_submit_button("Save cohort", icon=":material/bookmark_add:"):
            try:
                path = _warehouse().save_cohort(name.strip(), form.filter, index=form.index,
                                                description=description.strip(),
                                                dicom_conditions=form.dicom_conditions, overwrite=overwrite)
            except UserError as exc:
                ui.error(exc)
            else:
                st.success(f"Saved {path}", icon=":material/check_circle:")


def _load() -> None:
    st.subheader("Load a guppy filter")
    st.caption("Paste a filter from the MIDRC data explorer (or any guppy filter JSON) to open it in the explorer.")
    index = st.selectbox("Guppy index", list(TAB_OF_INDEX), key="load_index")
    text = st.text_area("Filter JSON", key="load_filter", height=140,
                        placeholder='{"AND": [{"IN": {"sex": ["Female"]}}, {">=": {"age_at_imaging": 60}}]}')
    if not st.button("Open in the explorer", key="load_button", icon=":material/travel_explore:"):
        return
    try:
        parsed = json.loads(text or "{}")
    except json.JSONDecodeError as error:
        ui.error(UserError(f"not JSON: {error.msg} (line {error.lineno}, column {error.colno})"))
        return
    if not isinstance(parsed, dict):
        ui.error(UserError("a guppy filter is a JSON object"))
        return
    tab = TAB_OF_INDEX[index]
    as_facets = from_guppy(tab, parsed)
    params = to_params(as_facets) if as_facets is not None else {FILTER_PARAM: [json.dumps(parsed)]}
    if tab != "studies":
        params[TAB_PARAM] = [tab]
    st.switch_page("app_pages/explore.py", query_params=params)


def _warehouse() -> Warehouse:
    target = ui.warehouse()
    return Warehouse(target.settings.warehouse_dir, target=target.target)


def _saved(source: WarehouseReader) -> None:
    st.subheader("Saved cohorts")
    try:
        saved = _warehouse().cohorts()
    except UserError as exc:
        ui.error(exc)
        return
    if saved.height == 0:
        st.info("No cohort is saved yet.", icon=":material/info:")
        return
    st.caption(f"Definitions in {_warehouse().cohorts_dir}; `rows_built` is the size of `cohorts.<name>` in the "
               "warehouse (empty until `cohortdb build` builds it).")
    st.dataframe(saved.drop("file"), hide_index=True, width="stretch")
    st.subheader("Compare two cohorts")
    names = saved["name"].to_list()
    index_of = dict(zip(saved["name"], saved["index"], strict=True))
    cells = st.columns(2)
    first = cells[0].selectbox("Cohort A", names, key="diff_a", index=0)
    second = cells[1].selectbox("Cohort B", names, key="diff_b", index=min(1, len(names) - 1))
    if index_of[first] != index_of[second]:
        st.warning("The two cohorts select from different indices; compare cohorts of one index.")
        return
    key = INDICES[index_of[first]].mart_key
    try:
        diff = queries.cohort_diff(source, first, second, key)
    except UserError as exc:
        ui.error(exc)
        return
    cells = st.columns(3)
    for cell, side in zip(cells, queries.DIFF_SIDES, strict=True):
        cell.metric(side, f"{diff.counts[side]:,}", border=True)
        cell.dataframe(pl.DataFrame({key: diff.keys[side]}, schema={key: pl.String}), hide_index=True, height=240,
                       width="stretch")


def main() -> None:
    st.title("Cohorts")
    source = ui.reader(*(f"marts.{e.mart}" for e in ENTITIES.values()))
    left, right = st.columns([3, 2], gap="large")
    with left:
        try:
            _current(source)
        except UserError as exc:
            ui.error(exc)
    with right:
        _load()
    st.divider()
    _saved(source)


main()
