"""Keeping pyarrow from importing pandas where nothing uses it."""

from __future__ import annotations

import sys

import pyarrow as pa


class _NoPandas:
    """An import finder refusing pandas (see :func:`skip_pandas_check`)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "pandas":
            raise ModuleNotFoundError("not imported by cohortdb's ingest", name=name)


def skip_pandas_check() -> None:
    """Answer pyarrow's "is pandas installed?" with no, unless pandas is already imported.

    The first array pyarrow builds from a Python list checks whether pandas is
    installed, by importing it: a noticeable start-up time and memory,
    inherited by every forked worker. The ingest paths never convert to pandas; an explicit
    ``to_pandas()`` afterwards still works (it imports pandas itself).
    """
    if "pandas" in sys.modules:
        return
    sys.meta_path.insert(0, _NoPandas)  # type: ignore[arg-type]
    try:
        pa.array([0])
    except Exception:  # noqa: BLE001, S110 - only a speed-up: never stop a command from starting
        pass
    finally:
        sys.meta_path.remove(_NoPandas)  # type: ignore[arg-type]


__all__ = ["skip_pandas_check"]
