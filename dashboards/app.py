"""The cohortdb dashboard: ``cohortdb dashboard`` runs this file with ``streamlit run``.

A router only (``st.navigation``): each page is a file of ``app_pages/`` with a stable
URL path (/explore, /study, /cohorts, /quality, /sql, /export); the warehouse comes
from ``$COHORTDB_WAREHOUSE`` (the CLI's ``--warehouse``), on the engine ``$COHORTDB_TARGET``
names (the CLI's ``--target``; BigQuery's datasets from its variables).
"""

from __future__ import annotations

import streamlit as st

STYLE = """
<style>
  .block-container { padding-top: 3.2rem; max-width: 1500px; }
  h1 { font-size: 1.7rem !important; padding-bottom: .2rem !important; }
  .facet-group { font-size: .72rem; font-weight: 600; letter-spacing: .08em; text-transform: uppercase;
                 color: #5b6573; margin: .9rem 0 .1rem 0; border-top: 1px solid #e3e7ec; padding-top: .5rem; }
  [data-testid="stMetricValue"] { font-size: 1.9rem; }
  [data-testid="stSidebar"] [data-testid="stVerticalBlock"] { gap: .45rem; }
  details.dicom { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: .8rem; }
</style>
"""

st.set_page_config(page_title="cohortdb", page_icon=":material/radiology:", layout="wide")
st.html(STYLE)
page = st.navigation([
    st.Page("app_pages/home.py", title="cohortdb", url_path="home", default=True, visibility="hidden"),
    st.Page("app_pages/explore.py", title="Explore", url_path="explore", icon=":material/travel_explore:"),
    st.Page("app_pages/study.py", title="Study", url_path="study", icon=":material/radiology:"),
    st.Page("app_pages/cohorts.py", title="Cohorts", url_path="cohorts", icon=":material/bookmarks:"),
    st.Page("app_pages/quality.py", title="Quality", url_path="quality", icon=":material/fact_check:"),
    st.Page("app_pages/sql.py", title="SQL", url_path="sql", icon=":material/terminal:"),
    st.Page("app_pages/export.py", title="Export", url_path="export", icon=":material/download:"),
], position="top")
page.run()
