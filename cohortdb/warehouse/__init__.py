"""Warehouse targets: load the lake, read it (read-only), export from it."""

from __future__ import annotations
