"""The sources state of a DICOM ingest: one row per source read (:data:`~ingest.dicom.schema.SOURCES`).

The truth is the state's part files, one per committed batch (written in the
batch's own transaction, named by the ``part`` its rows carry). A snapshot
(one Arrow IPC file beside the part directory) caches their union: reading
the state takes the snapshot's rows whose part is still there and reads only
the parts added since. A missing, stale or unreadable snapshot costs time,
never rows: it is a cache, rewritten after each run that changed the state.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from ingest.dicom.schema import SOURCES
from ingest.lake import part_files, read_parts, write_arrow


def snapshot_path(state_dir: Path) -> Path:
    """The snapshot of the state whose parts are in ``state_dir``."""
    return state_dir.with_name(f"{state_dir.name}.arrow")


def _snapshot(path: Path) -> pa.Table:
    """The rows of the snapshot at ``path`` (none when it is missing or unreadable)."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowException):
        return SOURCES.empty_table()
    return table if table.schema.equals(SOURCES) else SOURCES.empty_table()


def refresh(state_dir: Path, known: pa.Table) -> tuple[pa.Table, bool]:
    """The state now, from ``known`` (the state at some earlier time, e.g. a snapshot):
    its rows whose part file is still there, and the rows of the parts added since.

    Returns the state (one chunk) and whether it differs from ``known``.
    """
    parts = {path.stem: path for path in part_files(state_dir)}
    covered = set(pc.unique(known["part"]).to_pylist()) if known.num_rows else set()
    kept = known
    if covered - parts.keys():
        kept = known.filter(pc.is_in(known["part"], value_set=pa.array(sorted(covered & parts.keys()), pa.string())))
    added = [path for name, path in parts.items() if name not in covered]
    if not added and kept is known:
        return known.combine_chunks(), False
    return pa.concat_tables([kept, read_parts(added, SOURCES, threads=1)]).combine_chunks(), True


def read_state(state_dir: Path) -> tuple[pa.Table, bool]:
    """The state of the parts in ``state_dir``, from its snapshot and the parts added
    since; and whether the snapshot was out of date (or missing while there are parts)."""
    return refresh(state_dir, _snapshot(snapshot_path(state_dir)))


def save_snapshot(state_dir: Path, before: pa.Table, stale: bool) -> None:
    """Bring the snapshot up to date at the end of a run, given the state read at its
    start (``before``: only the parts added since are read) and whether the snapshot
    was ``stale`` then; nothing is written when it is up to date."""
    state, changed = refresh(state_dir, before)
    if changed or stale:
        write_arrow(state, snapshot_path(state_dir))


__all__ = ["read_state", "refresh", "save_snapshot", "snapshot_path"]
