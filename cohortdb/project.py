"""Where the dbt project and the default cohort definitions are.

In a checkout (or an editable install) the dbt project is the repository root:
``dbt_project.yml``, ``models/``, ``macros/``, ``seeds/``, ``data-tests/``,
``profiles.yml`` and ``cohorts/``. An installed wheel ships the same files as
package data under ``cohortdb/_project/``.
"""

from __future__ import annotations

import os
from pathlib import Path

COHORTS_ENV = "COHORTDB_COHORTS"


def _project_dir() -> Path:
    package = Path(__file__).resolve().parent
    checkout = package.parent
    if (checkout / "dbt_project.yml").is_file():
        return checkout
    return package / "_project"


PROJECT_DIR = _project_dir()
"""The dbt project: ``dbt_project.yml``, ``profiles.yml``, models, macros, seeds, data tests."""

SHIPPED_COHORTS_DIR = PROJECT_DIR / "cohorts"
"""The cohort definitions that come with the project (the repository's ``cohorts/``)."""


def cohorts_dir(chosen: str | os.PathLike[str] | None = None) -> Path:
    """The directory of cohort definitions, absolute.

    ``chosen`` (``--cohorts``), else ``$COHORTDB_COHORTS``, else ``./cohorts``
    when the current directory has one, else :data:`SHIPPED_COHORTS_DIR`.
    """
    if chosen or os.environ.get(COHORTS_ENV):
        return Path(chosen or os.environ[COHORTS_ENV]).expanduser().resolve()
    local = Path("cohorts")
    if local.is_dir():
        return local.resolve()
    return SHIPPED_COHORTS_DIR
