"""/explore: the cohort explorer. Tabs per entity (studies, series, cases, files), facets
whose counts ignore their own selection, a header-attribute facet, charts of the
selection and a paged table whose rows open their study. The selection is the URL."""

from __future__ import annotations

import math
from typing import Any

import streamlit as st

from cohortdb import UserError
from dashboards import queries, ui
from dashboards.selection import (
    ENTITIES,
    NO_DATA,
    Entity,
    Facet,
    FacetSelection,
    HeaderSelection,
    Range,
    Selection,
    parse_params,
    to_params,
)

CHARTS = {
    "studies": [("__histogram", "Age at imaging"), ("modalities", "Modality"),
                ("body_parts_examined", "Body part"), ("study_year", "Studies per year")],
    "series": [("modality", "Modality"), ("manufacturer", "Manufacturer"), ("body_part_examined", "Body part"),
               ("view_position", "View position")],
    "cases": [("__histogram", "Age at index"), ("sex", "Sex"), ("race", "Race"), ("covid19_positive", "COVID-19")],
    "files": [("data_type", "Data type"), ("modality", "Modality"), ("data_format", "Format"),
              ("manufacturer", "Manufacturer")],
}
TAB_STATE = "explore_tab"
WRITTEN = "explore_written"  # the URL parameters this page wrote last: a URL that differs came from a link


def _values_key(entity: str, column: str) -> str:
    return f"facet:{entity}:{column}"


def _range_key(entity: str, column: str) -> str:
    return f"range:{entity}:{column}"


def _no_data_key(entity: str, column: str) -> str:
    return f"nodata:{entity}:{column}"


def _load(selection: Selection, bounds: dict[str, tuple[float, float]]) -> None:
    """Put a selection (from the URL) into the widgets' state."""
    entity = ENTITIES[selection.entity]
    st.session_state[TAB_STATE] = entity.label
    for facet in entity.facets:
        chosen = selection.facets.get(facet.column, FacetSelection())
        if facet.categorical:
            st.session_state[_values_key(entity.name, facet.column)] = [
                *chosen.values, *([NO_DATA] if chosen.no_data else [])]
        elif facet.column in bounds:
            lo, hi = _slider_bounds(bounds[facet.column])
            wanted = chosen.range or Range(lo, hi)
            st.session_state[_range_key(entity.name, facet.column)] = (
                _clamp(wanted.lo if wanted.lo is not None else lo, lo, hi),
                _clamp(wanted.hi if wanted.hi is not None else hi, lo, hi))
            st.session_state[_no_data_key(entity.name, facet.column)] = chosen.no_data
    header = selection.header
    st.session_state[f"header:{entity.name}:pattern"] = header.pattern if header else None
    st.session_state[f"header:{entity.name}:values"] = list(header.values) if header else []
    st.session_state[f"header:{entity.name}:range"] = (header.range.lo, header.range.hi) \
        if header and header.range else None
    st.session_state[f"filter:{entity.name}"] = selection.guppy_filter


def _slider_bounds(bounds: tuple[float, float]) -> tuple[float, float]:
    lo, hi = bounds
    if hi - lo >= 20:
        return float(math.floor(lo)), float(math.ceil(hi))
    return lo, hi


def _clamp(value: float, lo: float, hi: float) -> float:
    return min(max(value, lo), hi)


def _selection(entity: Entity, bounds: dict[str, tuple[float, float]]) -> Selection:
    """The selection the widgets hold now."""
    facets: dict[str, FacetSelection] = {}
    for facet in entity.facets:
        if facet.categorical:
            chosen = st.session_state.get(_values_key(entity.name, facet.column)) or []
            facets[facet.column] = FacetSelection(values=tuple(v for v in chosen if v != NO_DATA),
                                                  no_data=NO_DATA in chosen)
        elif facet.column in bounds:
            lo, hi = _slider_bounds(bounds[facet.column])
            value = st.session_state.get(_range_key(entity.name, facet.column)) or (lo, hi)
            narrowed = value[0] > lo or value[1] < hi
            no_data = bool(st.session_state.get(_no_data_key(entity.name, facet.column)))
            facets[facet.column] = FacetSelection(range=Range(value[0], value[1]) if narrowed else None,
                                                  no_data=no_data and narrowed)
    header = None
    pattern = st.session_state.get(f"header:{entity.name}:pattern")
    if pattern:
        values = tuple(st.session_state.get(f"header:{entity.name}:values") or [])
        number = st.session_state.get(f"header:{entity.name}:range")
        header = HeaderSelection(pattern=pattern, values=values,
                                 range=Range(number[0], number[1]) if number else None)
    return Selection(entity=entity.name, facets={k: v for k, v in facets.items() if v.active}, header=header,
                     guppy_filter=st.session_state.get(f"filter:{entity.name}"))


def _clear(entity: Entity) -> None:
    for key in list(st.session_state):
        if isinstance(key, str) and key.split(":")[0] in ("facet", "range", "nodata", "header", "filter") \
                and key.split(":")[1] == entity.name:
            del st.session_state[key]


def _facet_widget(entity: Entity, facet: Facet, counts: queries.FacetCounts | None,
                  bounds: dict[str, tuple[float, float]]) -> None:
    if facet.categorical:
        key = _values_key(entity.name, facet.column)
        found = dict(counts.counts.iter_rows()) if counts is not None else {}
        chosen = st.session_state.get(key) or []
        options = list(found) + [v for v in chosen if v not in found]
        st.multiselect(facet.label, options, key=key, format_func=lambda v: f"{v} ({found.get(v, 0):,})",
                       placeholder="any")
        return
    if facet.column not in bounds:
        st.caption(f"{facet.label}: no values")
        return
    lo, hi = _slider_bounds(bounds[facet.column])
    if lo == hi:
        st.caption(f"{facet.label}: {lo:g} only")
        return
    whole = hi - lo >= 20 or (float(lo).is_integer() and float(hi).is_integer() and hi - lo >= 4)
    step = 1.0 if whole else round((hi - lo) / 100, 6) or 0.01
    st.slider(facet.label, min_value=lo, max_value=hi, step=step, key=_range_key(entity.name, facet.column),
              format="%d" if whole else "%.2f")
    if counts is not None and counts.no_data:
        st.checkbox(f"also rows with no data ({counts.no_data:,})", key=_no_data_key(entity.name, facet.column),
                    help="Kept when the range is narrowed; rows without a value are otherwise left out.")


def _header_facet(source: Any, entity: Entity, selection: Selection) -> None:
    try:
        choices = queries.tag_choices(source)
    except UserError:
        st.caption("Header attributes: the warehouse has no tag_catalog")
        return
    labels = dict(zip(choices["tag_path_pattern"], choices["label"], strict=True))
    numeric = dict(zip(choices["tag_path_pattern"], choices["numeric"], strict=True))
    pattern_key = f"header:{entity.name}:pattern"
    if st.session_state.get(pattern_key) not in labels:
        st.session_state[pattern_key] = None
    pattern = st.selectbox("Header attribute", list(labels), key=pattern_key, index=None,
                           format_func=lambda p: labels.get(p, p), placeholder="any DICOM tag, by keyword",
                           help="Studies with an instance whose header has this element (any depth; `*` is any "
                                "sequence item) with one of the values, or a number in the range.")
    if not pattern or selection.header is None:
        return
    found = queries.header_values(source, selection)
    if numeric.get(pattern) and found.lo is not None and found.hi is not None and found.lo < found.hi:
        range_key = f"header:{entity.name}:range"
        lo, hi = float(found.lo), float(found.hi)
        current = st.session_state.get(range_key)
        if current is None or not (lo <= current[0] <= hi and lo <= current[1] <= hi):
            st.session_state[range_key] = (lo, hi)
        st.slider("Value", min_value=lo, max_value=hi, key=range_key)
    else:
        values_key = f"header:{entity.name}:values"
        counted = dict(found.counts.iter_rows())
        chosen = st.session_state.get(values_key) or []
        st.multiselect("Value", list(counted) + [v for v in chosen if v not in counted], key=values_key,
                       format_func=lambda v: f"{v} ({counted.get(v, 0):,})", placeholder="any value")


def _charts(entity: Entity, explored: queries.Explored) -> None:
    columns = st.columns(len(CHARTS[entity.name]))
    for column, (name, title) in zip(columns, CHARTS[entity.name], strict=True):
        data = explored.charts.get(name)
        with column:
            if data is None or data.height == 0:
                st.caption(f"{title}: no data")
            elif name == "__histogram":
                st.altair_chart(ui.histogram(data, title, queries.HISTOGRAM_BIN), width="stretch")
            else:
                ordered = name in ("study_year",)
                shown = data.sort("value") if ordered else data
                st.altair_chart(ui.bar_chart(shown, title, sort=not ordered, top=12 if not ordered else 40),
                                width="stretch")


def _summary(selection: Selection) -> str:
    entity = ENTITIES[selection.entity]
    parts = []
    for column, chosen in selection.facets.items():
        facet = entity.facet(column)
        label = facet.label if facet else column
        shown = list(chosen.values)
        if chosen.range:
            shown.append(f"{chosen.range.lo:g}–{chosen.range.hi:g}")
        if chosen.no_data:
            shown.append(NO_DATA)
        parts.append(f"**{label}**: {', '.join(shown)}")
    if selection.header:
        header = selection.header
        shown = list(header.values) + ([f"{header.range.lo:g}–{header.range.hi:g}"] if header.range else [])
        parts.append(f"**{header.pattern}**: {', '.join(shown) or 'present'}")
    if selection.guppy_filter:
        parts.append("**guppy filter** (from the cohorts page)")
    return " · ".join(parts)


def _table(source: Any, entity: Entity, selection: Selection, total: int) -> None:
    pages = max(1, math.ceil(total / queries.PAGE_SIZE))
    page_key = "page:" + str(hash(str(sorted(to_params(selection).items()))))
    page = st.session_state.get(page_key, 1)
    rows = queries.table_page(source, selection, min(page, pages))
    hint = " Select a row to open its study." if entity.study_column else ""
    st.caption(f"{entity.label} {((page - 1) * queries.PAGE_SIZE) + 1 if total else 0:,}–"
               f"{min(page * queries.PAGE_SIZE, total):,} of {total:,}, by {entity.key}.{hint}")
    event = st.dataframe(rows, key=f"table:{entity.name}", on_select="rerun", selection_mode="single-row",
                         hide_index=True, column_config=ui.columns_config(rows), width="stretch", height=420)
    if pages > 1:
        st.pagination(pages, key=page_key, max_visible_pages=9)
    chosen = list(event.selection.rows) if event is not None else []
    if chosen and entity.study_column and chosen[0] < rows.height:
        uid = rows[entity.study_column][chosen[0]]
        if uid:
            st.session_state.pop(f"table:{entity.name}", None)
            st.switch_page("app_pages/study.py", query_params={"study": uid})


def main() -> None:
    st.title("Cohort explorer")
    source = ui.reader(*(f"marts.{e.mart}" for e in ENTITIES.values()))

    url = {key: st.query_params.get_all(key) for key in st.query_params}
    if url != st.session_state.get(WRITTEN):  # first run, or a link / back button gave a URL
        given, ignored = parse_params(url)
        _load(given, queries.range_bounds(source, given.entity))
        st.session_state["explore_ignored"] = ignored
    for note in st.session_state.get("explore_ignored", []):
        st.warning(f"Ignored in the URL: {note}", icon=":material/link_off:")

    labels = [e.label for e in ENTITIES.values()]
    if st.session_state.get(TAB_STATE) not in labels:
        st.session_state[TAB_STATE] = labels[0]
    tabs = st.tabs(labels, key=TAB_STATE, on_change="rerun")
    open_label = st.session_state.get(TAB_STATE) or labels[0]
    entity = next(e for e in ENTITIES.values() if e.label == open_label)
    bounds = queries.range_bounds(source, entity.name)
    selection = _selection(entity, bounds)
    params = to_params(selection)
    st.query_params.from_dict(params)
    st.session_state[WRITTEN] = params
    st.session_state[ui.SELECTION_STATE] = params

    try:
        explored = queries.explore(source, selection)
    except UserError as exc:
        ui.error(exc)
        if st.button("Clear the selection", key="clear_after_error"):
            _clear(entity)
            st.rerun()
        st.stop()

    with st.sidebar:
        st.subheader(f"Filter {entity.label.lower()}")
        chosen_any = bool(selection.facets or selection.header or selection.guppy_filter)
        if chosen_any and st.button("Clear all", icon=":material/filter_alt_off:", key=f"clear:{entity.name}"):
            _clear(entity)
            st.rerun()
        group = None
        for facet in entity.facets:
            if facet.group != group:
                group = facet.group
                st.markdown(f"<div class='facet-group'>{group}</div>", unsafe_allow_html=True)
            _facet_widget(entity, facet, explored.facets.get(facet.column), bounds)
        st.markdown("<div class='facet-group'>DICOM header</div>", unsafe_allow_html=True)
        _header_facet(source, entity, selection)

    for tab, label in zip(tabs, labels, strict=True):
        if label != entity.label:
            continue
        with tab:
            cells = st.columns(len(explored.metrics))
            for cell, (label_, value) in zip(cells, explored.metrics, strict=True):
                cell.metric(label_, f"{value:,}", border=True)
            summary = _summary(selection)
            links = st.columns([5, 1.3, 1])
            links[0].markdown(summary or "All rows: pick facet values in the sidebar to narrow them down.")
            links[1].page_link("app_pages/cohorts.py", label="Save as cohort", icon=":material/bookmark_add:",
                               query_params=params or None)
            links[2].page_link("app_pages/export.py", label="Export", icon=":material/download:",
                               query_params=params or None)
            total = explored.metrics[0][1]
            if total == 0:
                st.info("No rows match this selection." if selection.facets or selection.header
                        else f"The {entity.mart} mart is empty: ingest data, then run cohortdb build.")
                return
            _charts(entity, explored)
            _table(source, entity, selection, total)


main()
