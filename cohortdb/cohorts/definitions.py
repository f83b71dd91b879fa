"""Cohort definitions: ``<name>.yml|json`` files holding a guppy filter and DICOM conditions.

A definition holds the guppy ``index`` it selects from (imaging_study, case or
data_file), a guppy ``filter`` (guppy's own JSON, in YAML or JSON syntax), an
optional ``description`` and optional ``dicom_conditions``: SQL conditions on
``marts.dicom_instances`` columns, met together by at least one instance of the
selected study (case: of the case's studies; data_file: of its series).
Parsing, loading and saving live here; compiling in :mod:`cohortdb.cohorts.compile`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ingest.errors import UserError
from ingest.sources.guppy.filter_file import filter_problem

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
SUFFIXES = (".yml", ".yaml", ".json")


@dataclass(frozen=True)
class IndexShape:
    """How a guppy index maps to its mart: the key column in the raw records and the mart,
    and which mart column matches which ``marts.dicom_instances`` column (``dicom_key``)."""

    mart: str
    mart_key: str
    record_key: str
    files_join: str
    mart_dicom_key: str
    dicom_key: str


INDICES: dict[str, IndexShape] = {
    "imaging_study": IndexShape(
        mart="imaging_studies", mart_key="study_uid",
        record_key="coalesce(study_uid, submitter_id)",
        files_join="files.study_uid = selected.study_uid",
        mart_dicom_key="study_uid", dicom_key="study_instance_uid",
    ),
    "case": IndexShape(
        mart="patients", mart_key="case_id", record_key="submitter_id",
        files_join="files.case_id = selected.case_id",
        mart_dicom_key="case_id", dicom_key="patient_id",
    ),
    "data_file": IndexShape(
        mart="data_files", mart_key="object_id", record_key="object_id",
        files_join="files.object_id = selected.object_id",
        mart_dicom_key="series_uid", dicom_key="series_instance_uid",
    ),
}


@dataclass(frozen=True)
class Cohort:
    """One cohort definition; ``path`` is the file it was read from or saved to (None: not saved)."""

    name: str
    index: str
    filter: dict[str, Any] | None
    description: str = ""
    dicom_conditions: list[str] = field(default_factory=list)
    path: Path | None = None

    def document(self) -> dict[str, Any]:
        """The definition as it is saved (no name: the file name is the name)."""
        document: dict[str, Any] = {}
        if self.description:
            document["description"] = self.description
        document["index"] = self.index
        document["filter"] = self.filter or {}
        if self.dicom_conditions:
            document["dicom_conditions"] = list(self.dicom_conditions)
        return document


def parse_cohort(name: str, document: Any, where: str) -> Cohort:
    """A :class:`Cohort` from a parsed definition.

    Raises:
        UserError: one line naming ``where`` (a file, or what the caller was given) and the bad part.
    """
    if not NAME.match(name):
        raise UserError(f"{where}: cohort name {name!r} must be lowercase letters, digits and _ "
                        "(starting with a letter, at most 63)")
    if not isinstance(document, dict):
        raise UserError(f"{where}: a cohort definition must be a mapping")
    unknown = set(document) - {"index", "filter", "description", "dicom_conditions", "name"}
    if unknown:
        raise UserError(f"{where}: unknown keys {sorted(unknown)}")
    index = document.get("index")
    if index not in INDICES:
        raise UserError(f"{where}: index must be one of {', '.join(INDICES)}, not {index!r}")
    filter_ = document.get("filter") or {}
    problem = filter_problem(filter_)
    if problem:
        raise UserError(f"{where}: not a valid guppy filter: {problem}")
    conditions = document.get("dicom_conditions") or []
    if isinstance(conditions, str):
        conditions = [conditions]
    if not isinstance(conditions, list) or not all(isinstance(c, str) and c.strip() for c in conditions):
        raise UserError(f"{where}: dicom_conditions must be a list of SQL conditions")
    description = document.get("description") or ""
    return Cohort(name=name, index=index, filter=filter_ or None, description=str(description).strip(),
                  dicom_conditions=[c.strip() for c in conditions])


def make_cohort(name: str, filter_: Mapping[str, Any] | None, *, index: str = "imaging_study",
                description: str = "", dicom_conditions: Sequence[str] = (), where: str | None = None) -> Cohort:
    """A validated :class:`Cohort` from its parts (what a dashboard or a notebook has).

    ``where`` starts error messages (default ``cohort <name>``).

    Raises:
        UserError: an invalid name, index, filter or condition.
    """
    document = {"index": index, "filter": dict(filter_ or {}), "description": description,
                "dicom_conditions": list(dicom_conditions)}
    return parse_cohort(name, document, where or f"cohort {name}")


def read_cohort(path: Path) -> Cohort:
    """The definition in one file; its name is the ``name`` key, else the file's stem.

    Raises:
        UserError: the file cannot be read or parsed, or is not a valid definition.
    """
    try:
        text = path.read_text(encoding="utf-8")
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UserError(f"cannot read cohort {path}: {first}") from None
    name = (document or {}).get("name", path.stem) if isinstance(document, dict) else path.stem
    return dataclasses.replace(parse_cohort(str(name), document, str(path)), path=path)


def load_cohorts(directory: Path) -> list[Cohort]:
    """Every definition in ``directory`` (``*.yml``, ``*.yaml``, ``*.json``), sorted by name.

    A missing directory holds none.

    Raises:
        UserError: ``directory`` is a file (a definition given where its directory was meant);
            a file that cannot be parsed or is not a valid definition; two files defining the same name.
    """
    cohorts: dict[str, Cohort] = {}
    if not directory.is_dir():
        if directory.exists():
            raise UserError(f"the cohorts directory {directory} is a file: "
                            "give the directory of the definitions (--cohorts DIR)")
        return []
    for path in sorted(directory.iterdir()):
        if path.suffix not in SUFFIXES or path.name.startswith("."):
            continue
        cohort = read_cohort(path)
        if cohort.name in cohorts:
            raise UserError(f"cohort {cohort.name!r} is defined twice: {cohorts[cohort.name].path} and {path}")
        cohorts[cohort.name] = cohort
    return [cohorts[n] for n in sorted(cohorts)]


def find_cohort(name: str, directory: Path) -> Cohort:
    """The definition named ``name`` in ``directory``.

    Raises:
        UserError: no such definition (the message lists the ones there are).
    """
    cohorts = load_cohorts(directory)
    for cohort in cohorts:
        if cohort.name == name:
            return cohort
    known = ", ".join(c.name for c in cohorts) or "none"
    raise UserError(f"no cohort named {name!r} in {directory} (there: {known})")


def save_cohort(cohort: Cohort, directory: Path, *, overwrite: bool = False) -> Path:
    """Write ``cohort`` as ``<directory>/<name>.yml`` (atomically) and return the path.

    The file holds the description, index, filter (guppy's JSON as YAML) and
    DICOM conditions; :func:`read_cohort` gives back an equal definition.

    Raises:
        UserError: a definition of that name exists (in any suffix) and not
            ``overwrite``, or the directory cannot be written.
    """
    cohort = make_cohort(cohort.name, cohort.filter, index=cohort.index, description=cohort.description,
                         dicom_conditions=cohort.dicom_conditions)
    path = directory / f"{cohort.name}.yml"
    existing = [directory / f"{cohort.name}{suffix}" for suffix in SUFFIXES]
    clash = [p for p in existing if p.exists() and (p != path or not overwrite)]
    if clash:
        raise UserError(f"cohort {cohort.name!r} already exists: {clash[0]}"
                        + ("" if overwrite else " (overwrite it explicitly, or choose another name)"))
    text = ("# Saved by cohortdb; the filter is guppy's own JSON.\n"
            + yaml.safe_dump(cohort.document(), sort_keys=False, allow_unicode=True))
    partial = directory / f".{cohort.name}.yml.partial"
    try:
        directory.mkdir(parents=True, exist_ok=True)
        partial.write_text(text, encoding="utf-8")
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise UserError(f"cannot save cohort {cohort.name!r} in {directory}: {error.strerror or error}") from None
    return path
