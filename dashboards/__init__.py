"""The Streamlit dashboard (reads the warehouse through :mod:`cohortdb`)."""

from __future__ import annotations
