"""``python -m cohortdb`` is the ``cohortdb`` command."""

from __future__ import annotations

from cohortdb.cli.main import main

main()
