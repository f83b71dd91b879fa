"""The shard layout of a lake's DICOM state: unsharded, or N shards (``--shard K/N``).

The first sharded run of a lake records N in ``_state/dicom_shards``; an
unsharded lake has no record. Sources are assigned to shards by N, so a run
in another layout than the lake's would read sources again that another
shard (or the unsharded state) already holds: it is refused, unless ``--full``
asks to start the DICOM tables afresh in the new layout. Recording N, or
changing the layout, happens under the unsharded lake lock (waited for), so
that shards starting together agree and no unsharded run is at work.
"""

from __future__ import annotations

import contextlib

from ingest.dicom.schema import TABLES
from ingest.errors import UserError
from ingest.lake import LakeLock, Transaction, part_files
from ingest.settings import Settings
from ingest.sources.files.shard import Shard, listings_path, namespace, sources_dir
from ingest.sources.files.state import snapshot_path

SHARDS_RECORD = "dicom_shards"
"""The file under ``_state/`` holding the lake's shard count N (absent: unsharded)."""


def recorded_shards(settings: Settings) -> int | None:
    """The shard count N recorded in the lake; None for an unsharded (or empty) lake.

    Raises:
        UserError: the record is not a positive integer.
    """
    path = settings.state_dir / SHARDS_RECORD
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    if not text.isdigit() or int(text) < 1:
        raise UserError(f"{path} should hold the number of DICOM shards, not {text!r}")
    return int(text)


def _describe(count: int | None) -> str:
    """A layout in words: ``in 3 shards`` or ``without --shard``."""
    return f"in {count} shard{'s' if count > 1 else ''}" if count else "without --shard"


def _option(count: int | None) -> str:
    return f"with --shard K/{count}" if count else "without --shard"


def _shards(count: int | None) -> list[Shard | None]:
    """The shards of a layout (``[None]`` for the unsharded one)."""
    return [Shard(index, count) for index in range(1, count + 1)] if count else [None]


def layout_conflict(settings: Settings, shard: Shard | None) -> str | None:
    """Why a run of ``shard`` (None: unsharded) cannot go on with the lake's DICOM state
    without ``--full``; None when it can (same layout, or a fresh lake). Takes no lock."""
    recorded, wanted = recorded_shards(settings), shard.count if shard else None
    if recorded == wanted or (recorded is None and not part_files(sources_dir(settings, None))):
        return None
    return (
        f"the DICOM sources of {settings.lake_dir} were ingested {_describe(recorded)}: "
        f"run {_option(recorded)}, or add --full to drop every DICOM row ingested so far "
        f"and ingest again {_describe(wanted)}"
    )


def check_layout(settings: Settings, shard: Shard | None, *, full: bool) -> None:
    """Make sure the lake's DICOM state is in the layout of a run of ``shard`` (None:
    unsharded); call it holding the run's own lock, before reading the state.

    A fresh lake takes the run's layout. With ``full``, a lake in another layout
    loses every DICOM row and its state, and takes the run's layout.

    Raises:
        UserError: the lake is in another layout and not ``full``; or, to change
            layouts, a shard of the old layout is at work.
    """
    wanted = shard.count if shard else None
    if recorded_shards(settings) == wanted:
        return
    with contextlib.ExitStack() as stack:
        if shard is not None:  # an unsharded run holds this lock already
            stack.enter_context(LakeLock(settings.lake_dir, wait=True))
        recorded = recorded_shards(settings)
        if recorded == wanted:  # another shard of this layout recorded it meanwhile
            return
        conflict = layout_conflict(settings, shard)
        if conflict and not full:
            raise UserError(conflict)
        old_shards = _shards(recorded) if conflict and recorded else []  # (unsharded: lock held)
        for old_shard in old_shards:
            stack.enter_context(LakeLock(settings.lake_dir, namespace(old_shard)))
        _relayout(settings, recorded, wanted, drop=conflict is not None)


def _relayout(settings: Settings, old: int | None, new: int | None, *, drop: bool) -> None:
    """One transaction recording layout ``new`` and, when ``drop``, deleting every DICOM
    part file and the state of layout ``old``; holding every lock of both layouts."""
    tx = Transaction(settings.lake_dir)
    for table in TABLES if drop else []:
        tx.delete(part_files(settings.dicom_lake / table))
    for old_shard in _shards(old) if drop else []:
        tx.delete(part_files(sources_dir(settings, old_shard)))
        tx.delete([listings_path(settings, old_shard), snapshot_path(sources_dir(settings, old_shard))])
    record = settings.state_dir / SHARDS_RECORD
    if new:
        staged = tx.stage_path(SHARDS_RECORD)
        staged.write_text(f"{new}\n")
        tx.add_file(staged, record)
    else:
        tx.delete([record])
    tx.commit()
    for old_shard in _shards(old) if drop and old else []:  # (a lock file is never deleted)
        with contextlib.suppress(OSError):
            sources_dir(settings, old_shard).rmdir()
