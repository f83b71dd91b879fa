"""Cohorts: guppy filters as SQL; cohort definitions parsed, validated, compiled, selected, saved."""

from __future__ import annotations
