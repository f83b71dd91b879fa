"""Ships the dbt project (at the repository root) as package data: ``cohortdb/_project/``.

Everything else is in pyproject.toml. build_py copies the project's files into the
wheel (``pip install .``) and names them as sources, so an sdist carries them too;
an editable install copies nothing (``cohortdb.project`` then finds the repository
root).
"""

from __future__ import annotations

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

PROJECT_FILES = ("dbt_project.yml", "profiles.yml")
PROJECT_DIRS = ("models", "macros", "seeds", "data-tests", "cohorts")


def _shipped(path: Path) -> bool:
    return (
        path.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in path.parts)
    )


def project_files() -> list[str]:
    """The dbt project's files, relative to the repository root."""
    files = [f for f in PROJECT_FILES if Path(f).is_file()]
    for top in PROJECT_DIRS:
        files += sorted(p.as_posix() for p in Path(top).rglob("*") if _shipped(p))
    return files


class BuildPyWithProject(build_py):
    """build_py that also copies the dbt project to ``cohortdb/_project`` (wheel) and
    lists it among its sources (sdist)."""

    def _get_data_files(self) -> list[tuple[str, str, str, list[str]]]:
        # setuptools computes build_py.data_files (copied, and listed as outputs) here
        data_files = super()._get_data_files()
        build_dir = str(Path(self.build_lib, "cohortdb", "_project"))
        return [*data_files, ("cohortdb._project", "", build_dir, project_files())]

    def get_source_files(self) -> list[str]:
        return [*super().get_source_files(), *project_files()]


setup(cmdclass={"build_py": BuildPyWithProject})
