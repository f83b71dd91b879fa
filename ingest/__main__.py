"""``python -m ingest`` is the ``cohortdb`` command."""

from __future__ import annotations

from ingest.cli import main

main()
