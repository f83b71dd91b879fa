"""The ``cohortdb`` command line: the only place typer and rich are imported."""

from __future__ import annotations

from cohortdb.cli.main import app, main

__all__ = ["app", "main"]
