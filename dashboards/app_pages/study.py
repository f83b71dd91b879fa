"""/study?study=UID: one study's series and instances, an instance's whole header as a
tree (sequences collapsible, private creators shown) and a preview of its image."""

from __future__ import annotations

import streamlit as st

from dashboards import header_tree, queries, thumbnail, ui


def _pick(label: str, options: list[str], param: str, labels: dict[str, str], key: str) -> str | None:
    """A selectbox whose choice is also the URL parameter ``param``."""
    if not options:
        return None
    wanted = st.query_params.get(param)
    if st.session_state.get(key) not in options:
        st.session_state[key] = wanted if wanted in options else options[0]
    chosen: str = st.selectbox(label, options, key=key, format_func=lambda o: labels.get(o, o))
    st.query_params[param] = chosen
    return chosen


def _facts(row: dict[str, object]) -> None:
    modalities = ", ".join(row.get("modalities") or []) or "–"  # type: ignore[arg-type]
    cells = st.columns(6)
    cells[0].metric("Case", str(row.get("case_id") or "–"))
    cells[1].metric("Sex · age", f"{row.get('sex') or '–'} · {row.get('age_at_imaging') or '–'}")
    cells[2].metric("Modalities", modalities)
    cells[3].metric("Date", str(row.get("study_date") or row.get("study_year") or "–"))
    cells[4].metric("Series", f"{row.get('n_series', 0):,}")
    cells[5].metric("Instances", f"{row.get('n_instances', 0):,}")
    sources = [name for name, flag in (("in the commons", row.get("in_guppy")), ("headers held", row.get("in_dicom")))
               if flag]
    st.caption(f"{row.get('study_description') or 'No description'} · {' · '.join(sources)}"
               + (f" · mRALE {row['midrc_mrale_score']}" if row.get("midrc_mrale_score") is not None else ""))


def main() -> None:
    st.title("Study")
    source = ui.reader("marts.imaging_studies", "marts.imaging_series")
    given = st.query_params.get("study") or ""
    typed = st.text_input("Study Instance UID", value=given, key="study_uid_input",
                          placeholder="open a study from the explorer's table, or paste its UID")
    uid = typed.strip()
    if uid != given:
        st.query_params.clear()
        if uid:
            st.query_params["study"] = uid
    if not uid:
        st.info("Pick a row of the explorer's table to open its study here.", icon=":material/info:")
        st.page_link("app_pages/explore.py", label="Go to the explorer", icon=":material/travel_explore:")
        return
    row = queries.study(source, uid)
    if row is None:
        st.warning("No study with this UID in the warehouse.", icon=":material/search_off:")
        return
    _facts(row)

    series = queries.study_series(source, uid)
    instances = queries.study_instances(source, uid)
    if series.height == 0 or instances.height == 0:
        st.info("The commons lists this study, but no DICOM headers of it have been ingested "
                "(see Quality → reconciliation).", icon=":material/cloud_off:")
        return
    st.subheader("Series")
    st.dataframe(series, hide_index=True, width="stretch", column_config=ui.columns_config(series),
                 height=min(38 + 35 * series.height, 300))

    left, right = st.columns([3, 2])
    with left:
        series_labels = {r["series_instance_uid"]: f"#{r['series_number'] or '?'} {r['modality'] or ''} · "
                         f"{r['series_description'] or 'no description'} · {r['n_instances']} instances"
                         for r in series.iter_rows(named=True)}
        chosen_series = _pick("Series", list(series_labels), "series", series_labels, "study_series")
        in_series = instances.filter(instances["series_instance_uid"] == chosen_series)
        if in_series.height == 0:
            in_series = instances
        instance_labels = {r["file_id"]: f"#{r['instance_number'] if r['instance_number'] is not None else '?'} · "
                           f"{r['sop_instance_uid']}" + (" · truncated" if r["truncated"] else "")
                           for r in in_series.iter_rows(named=True)}
        file_id = _pick("Instance", list(instance_labels), "instance", instance_labels, "study_instance")
    if file_id is None:
        return
    located = queries.instance_source(source, file_id) or {}
    with right:
        shown = thumbnail.preview(located.get("source_path"), located.get("source_member"))
        if shown.image is not None:
            st.image(shown.image, caption=shown.note, width="stretch", clamp=True)
        else:
            st.info(shown.note, icon=":material/image_not_supported:")
        where = located.get("source_path") or ""
        if located.get("source_member"):
            where += f" › {located['source_member']}"
        st.caption(f"Read from `{where}`")

    st.subheader("Header")
    rows = queries.instance_elements(source, file_id).to_dicts()
    search = st.text_input("Find in the header", key="header_search",
                           placeholder="keyword, tag or value, e.g. KVP, 0018, CHEST")
    kept = header_tree.filtered(rows, search)
    private = sum(1 for r in rows if r.get("private_creator"))
    st.caption(f"{len(kept):,} of {len(rows):,} elements · {private:,} private · sequences open and close with a "
               "click")
    st.html(header_tree.render(header_tree.build(kept), open_depth=1 if search.strip() else 0))


main()
