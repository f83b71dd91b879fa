"""/: the explorer, at its own stable URL (/explore), with the parameters given."""

from __future__ import annotations

import streamlit as st

st.switch_page("app_pages/explore.py", query_params={key: st.query_params.get_all(key) for key in st.query_params})
