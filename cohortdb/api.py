"""The Python API for notebooks: ``from cohortdb import Warehouse``.

    >>> from cohortdb import Warehouse
    >>> wh = Warehouse("demo-warehouse")
    >>> wh.sql("select modality, count(*) as n from marts.dicom_instances where kvp > ? group by all", [80])
    >>> wh.cohort("seed000_covid_chest_xr")                     # a saved cohort's studies
    >>> wh.cohort({"AND": [{"=": {"sex": "Male"}}]}, index="imaging_study")

Results are polars DataFrames (``*_arrow`` methods give Arrow tables). Every
call opens the warehouse read-only for its own duration, so a notebook never
holds a lock between calls and sees a rebuilt warehouse on its next call.
Errors a user can fix raise :class:`~ingest.errors.UserError` with a one-line
message.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from cohortdb.cohorts.definitions import Cohort, find_cohort, load_cohorts, make_cohort, save_cohort
from cohortdb.cohorts.select import built_sizes, select_cohort, select_records
from cohortdb.project import cohorts_dir
from cohortdb.warehouse import Target, WarehouseTarget, open_target
from ingest.errors import UserError
from ingest.settings import resolve_settings

if TYPE_CHECKING:
    import polars as pl

Definition = str | Mapping[str, Any] | Cohort
"""A saved cohort's name, a guppy filter (parsed JSON), or a :class:`Cohort`."""


def _frame(table: pa.Table) -> pl.DataFrame:
    import polars as pl

    frame = pl.from_arrow(table)
    assert isinstance(frame, pl.DataFrame)
    return frame


class Warehouse:
    """A built cohortdb warehouse, read-only.

    Args:
        path: the warehouse directory (``--warehouse``); default ``$COHORTDB_WAREHOUSE``,
            else ``./warehouse``.
        target: the engine it was loaded into (``duckdb``).
        cohorts: the directory of saved cohort definitions (``--cohorts``); default
            ``$COHORTDB_COHORTS``, else ``./cohorts``, else the project's.
        allow_files: let :meth:`sql` use DuckDB's file functions (``read_csv``, ``COPY … TO``);
            off by default, as in ``cohortdb sql``.

    Raises:
        UserError: the directory holds no loaded warehouse.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *, target: Target | str = Target.DUCKDB,
                 cohorts: str | os.PathLike[str] | None = None, allow_files: bool = False) -> None:
        self.settings = resolve_settings(path)
        self.allow_files = allow_files
        self.cohorts_dir = cohorts_dir(cohorts)
        self._target: WarehouseTarget = open_target(self.settings, target)
        if not self._target.exists():
            raise UserError(f"no warehouse at {self._target.location}; build one with "
                            f"`cohortdb --warehouse {self.settings.warehouse_dir} build` (or `demo`)")

    def __repr__(self) -> str:
        return f"Warehouse({str(self.settings.warehouse_dir)!r}, target={self._target.target.value!r})"

    # ------------------------------------------------------------------ SQL

    def sql_arrow(self, query: str, params: Sequence[Any] | None = None) -> pa.Table:
        """The result of one read-only query (a SELECT) as an Arrow table; ``?`` placeholders
        take ``params`` in order. It cannot change the warehouse, touch files (unless
        ``allow_files``), attach databases or change settings."""
        return self._target.user_query(query, params, allow_files=self.allow_files)

    def sql(self, query: str, params: Sequence[Any] | None = None) -> pl.DataFrame:
        """The result of a read-only query as a polars DataFrame; ``?`` placeholders take ``params``."""
        return _frame(self.sql_arrow(query, params))

    def tables(self) -> pl.DataFrame:
        """Every schema's tables and views: columns ``schema``, ``name``, ``kind`` (table/view)."""
        relations = self._target.relations()
        return _frame(pa.table({
            "schema": pa.array([r.schema for r in relations], pa.string()),
            "name": pa.array([r.name for r in relations], pa.string()),
            "kind": pa.array([r.kind for r in relations], pa.string()),
        }))

    # -------------------------------------------------------------- cohorts

    def _definition(self, definition: Definition, index: str, dicom_conditions: Sequence[str]) -> Cohort:
        if isinstance(definition, Cohort):
            return definition
        if isinstance(definition, str):
            if dicom_conditions:
                raise UserError("dicom_conditions go with a filter, not with a saved cohort's name")
            return find_cohort(definition, self.cohorts_dir)
        if isinstance(definition, Mapping):
            return make_cohort("adhoc", definition, index=index, dicom_conditions=dicom_conditions, where="cohort")
        raise UserError(f"a cohort is a saved cohort's name, a guppy filter (dict) or a Cohort, "
                        f"not {type(definition).__name__}")

    def cohort_arrow(self, definition: Definition, *, index: str = "imaging_study",
                     dicom_conditions: Sequence[str] = ()) -> pa.Table:
        """:meth:`cohort` as an Arrow table."""
        return select_cohort(self._target, self._definition(definition, index, dicom_conditions))

    def cohort(self, definition: Definition, *, index: str = "imaging_study",
               dicom_conditions: Sequence[str] = ()) -> pl.DataFrame:
        """The rows of a cohort: its index's mart rows (``marts.imaging_studies`` for
        imaging_study, ``patients`` for case, ``data_files`` for data_file) that the
        guppy filter selects and, with DICOM conditions, that have an instance meeting
        them all; sorted by the mart's key.

        Args:
            definition: a saved cohort's name (``cohorts/<name>.yml``), a guppy filter,
                or a :class:`Cohort`. A saved cohort is evaluated from its current
                definition, so it may differ from ``cohorts.<name>`` until the next build.
            index: the guppy index a filter selects from (ignored for a name).
            dicom_conditions: SQL conditions on ``marts.dicom_instances`` columns.

        Raises:
            UserError: an unknown cohort, an invalid filter, or a warehouse not built.
        """
        return _frame(self.cohort_arrow(definition, index=index, dicom_conditions=dicom_conditions))

    def records(self, index: str, filter_: Mapping[str, Any] | None = None) -> pl.DataFrame:
        """The guppy records of ``raw.guppy_<index>`` a filter selects (all without one),
        sorted by submitter_id: what ``cohortdb cohort --index --filter`` prints."""
        return _frame(select_records(self._target, index, dict(filter_) if filter_ else None))

    def cohorts(self) -> pl.DataFrame:
        """The saved cohorts: ``name``, ``index``, ``rows_built`` (null when not built),
        ``dicom_conditions`` (count), ``description``, ``file``."""
        saved = load_cohorts(self.cohorts_dir)
        sizes = built_sizes(self._target, [c.name for c in saved])
        return _frame(pa.table({
            "name": pa.array([c.name for c in saved], pa.string()),
            "index": pa.array([c.index for c in saved], pa.string()),
            "rows_built": pa.array([sizes.get(c.name) for c in saved], pa.int64()),
            "dicom_conditions": pa.array([len(c.dicom_conditions) for c in saved], pa.int64()),
            "description": pa.array([c.description for c in saved], pa.string()),
            "file": pa.array([str(c.path) if c.path else None for c in saved], pa.string()),
        }))

    def save_cohort(self, name: str, filter_: Mapping[str, Any] | None, *, index: str = "imaging_study",
                    description: str = "", dicom_conditions: Sequence[str] = (),
                    overwrite: bool = False) -> Path:
        """Save a definition as ``<cohorts>/<name>.yml`` (the next ``cohortdb build`` builds it).

        Raises:
            UserError: an invalid definition, or one of that name exists and not ``overwrite``.
        """
        cohort = make_cohort(name, filter_, index=index, description=description,
                             dicom_conditions=dicom_conditions)
        return save_cohort(cohort, self.cohorts_dir, overwrite=overwrite)
