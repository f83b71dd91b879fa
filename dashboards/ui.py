"""What every page shares: the warehouse reader (or a clear message instead of it),
the explorer's current selection, error display and chart helpers.

Pages lay out widgets; queries live in :mod:`dashboards.queries`; this module only
connects the two with Streamlit's state.
"""

from __future__ import annotations

import shlex
from typing import NoReturn

import altair as alt
import polars as pl
import streamlit as st

from cohortdb import UserError
from cohortdb.warehouse import Target, WarehouseReader, WarehouseTarget
from cohortdb.warehouse.bigquery import BigQueryWarehouse
from dashboards import queries
from dashboards.selection import Selection, parse_params

SELECTION_STATE = "explore_params"
"""The explorer's current selection as URL parameters (other pages act on it)."""
ACCENT = "#1f5fa6"
NO_DATA_COLOR = "#b8bec6"


def stop(message: str, *, hint: str = "", kind: str = "info") -> NoReturn:
    """Show a message (and a hint, in code) instead of the page, and end the run."""
    show = {"info": st.info, "warning": st.warning, "error": st.error}[kind]
    show(message, icon=":material/info:" if kind == "info" else ":material/warning:")
    if hint:
        st.code(hint, language="bash")
    st.stop()
    raise AssertionError("unreachable")  # st.stop raises


def warehouse() -> WarehouseTarget:
    """The warehouse the dashboard was started on; a message instead when it cannot be named
    (BigQuery without a project), and the run ends."""
    try:
        return queries.target()
    except UserError as error:
        stop(f"The warehouse cannot be opened: {error}", kind="error")


ENGINES = {Target.DUCKDB: "DuckDB", Target.BIGQUERY: "BigQuery"}
"""How a page names the engine it reads, under its title."""


def _place(target: WarehouseTarget) -> str:
    """Where the warehouse is, as a user knows it: its directory, or BigQuery's datasets."""
    return str(target.settings.warehouse_dir) if target.target is Target.DUCKDB else target.location


def _build_hint(target: WarehouseTarget) -> str:
    """The command that builds this warehouse."""
    options = f"--warehouse {shlex.quote(str(target.settings.warehouse_dir))}"
    if isinstance(target, BigQueryWarehouse):
        config = target.config
        options += f" --target bigquery --project {config.project} --dataset-prefix {config.dataset_prefix}"
        if config.api_endpoint:
            options += f" --api-endpoint {config.api_endpoint}"
    return f"cohortdb {options} build"


def reader(*needed: str) -> WarehouseReader:
    """The reader of the warehouse's published version, after checking that it has the
    relations ``needed``; otherwise a clear message (never a traceback) and the run ends."""
    target = warehouse()
    place = _place(target)
    try:
        source = queries.reader(target)
    except UserError as error:
        stop(f"The warehouse in {place} cannot be opened: {error}", kind="error")
    if source is None:
        stop(f"There is no warehouse in {place} yet.",
             hint=f"{_build_hint(target)}      # after ingest; or: cohortdb demo")
    absent = queries.missing(source, *needed)
    if absent:
        stop(f"This page needs {', '.join(absent)}, which the warehouse in {place} does not have "
             "(it was loaded but not built, or built by an older cohortdb).",
             hint=_build_hint(target), kind="warning")
    st.caption(f"{ENGINES[target.target]} · {place}")
    return source


def current_selection() -> Selection:
    """The explorer's selection: this page's URL parameters if it has any, else the one
    last made on the explorer in this session."""
    own = {key: st.query_params.get_all(key) for key in st.query_params}
    params = own if own else st.session_state.get(SELECTION_STATE, {})
    selection, _ = parse_params(params)
    return selection


def error(exc: UserError) -> None:
    """A user-fixable problem, as the CLI prints it: the message, never a traceback."""
    st.error(str(exc), icon=":material/error:")


def bar_chart(data: pl.DataFrame, title: str, *, category: str = "value", sort: bool = True,
              top: int = 12, height: int = 220) -> alt.Chart:
    """Horizontal bars of ``n`` by ``category`` (the biggest ``top``), ``no data`` in grey."""
    shown = data.sort("n", descending=True).head(top) if sort else data
    return (
        alt.Chart(shown.to_arrow(), title=title, height=height)
        .mark_bar(cornerRadiusEnd=3)
        .encode(
            x=alt.X("n:Q", title=None, axis=alt.Axis(format="~s", tickCount=4)),
            y=alt.Y(f"{category}:N", title=None, sort="-x" if sort else None,
                    axis=alt.Axis(labelLimit=140)),
            color=alt.condition(alt.datum[category] == "no data", alt.value(NO_DATA_COLOR), alt.value(ACCENT)),
            tooltip=[alt.Tooltip(f"{category}:N", title=title), alt.Tooltip("n:Q", format=",")],
        )
    )


def histogram(data: pl.DataFrame, title: str, bin_width: int, height: int = 220) -> alt.Chart:
    """Columns of ``n`` by ``bin`` (the lower end of each ``bin_width`` wide bin)."""
    shown = data.with_columns(
        (pl.col("bin").cast(pl.String) + "–" + (pl.col("bin") + bin_width - 1).cast(pl.String)).alias("range"))
    return (
        alt.Chart(shown.to_arrow(), title=title, height=height)
        .mark_bar(color=ACCENT, cornerRadiusTopLeft=2, cornerRadiusTopRight=2)
        .encode(
            x=alt.X("range:N", title=None, sort=None, axis=alt.Axis(labelAngle=0, labelOverlap=True)),
            y=alt.Y("n:Q", title=None, axis=alt.Axis(format="~s", tickCount=4)),
            tooltip=[alt.Tooltip("range:N", title=title), alt.Tooltip("n:Q", format=",")],
        )
    )


def columns_config(frame: pl.DataFrame) -> dict[str, object]:
    """Readable column titles (``n_series`` → ``Series``) for ``st.dataframe``."""
    titles = {"study_uid": "Study UID", "case_id": "Case", "n_series": "Series", "n_instances": "Instances",
              "series_instance_uid": "Series UID", "study_instance_uid": "Study UID", "object_id": "Object id",
              "sop_instance_uid": "SOP Instance UID", "in_guppy": "In commons", "in_dicom": "Headers",
              "age_at_imaging": "Age", "midrc_mrale_score": "mRALE", "body_parts_examined": "Body parts",
              "file_size_bytes": "Size (bytes)", "n_studies": "Studies"}
    config: dict[str, object] = {}
    for name in frame.columns:
        title = titles.get(name, name.replace("_", " ").capitalize())
        dtype = frame.schema[name]
        if dtype in (pl.Float32, pl.Float64):
            config[name] = st.column_config.NumberColumn(title, format="%.1f")
        elif dtype == pl.Boolean:
            config[name] = st.column_config.CheckboxColumn(title)
        elif dtype == pl.Date:
            config[name] = st.column_config.DateColumn(title, format="YYYY-MM-DD")
        else:
            config[name] = st.column_config.Column(title)
    return config
