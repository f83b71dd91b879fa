"""The Parquet lake: part files that appear whole or not at all.

A *transaction* stages new part files under ``lake/_state/pending/<txid>/``,
then writes a ``COMMIT`` journal (atomically, by rename) listing the files to
move into the lake and the files to delete, then applies it. A process killed
before the journal exists leaves only a staging directory, which the next
:func:`recover` deletes; one killed while applying is finished by
:func:`recover`, which replays the (idempotent) journal. Readers only ever see
complete files, because files enter table directories by ``os.replace``.

Writers that may run at the same time on one lake (the shards of a DICOM
ingest) each use a *namespace*: namespace ``NS`` has the lock ``_state/lock-NS``
and stages under ``_state/pending-NS/``; the default namespace (``""``) has
``_state/lock`` and ``_state/pending/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PENDING = "pending"
LOCK = "lock"
JOURNAL = "COMMIT"
PARQUET_OPTIONS = {"compression": "zstd", "compression_level": 1}
READ_THREADS = 4
"""Part files read at once by :func:`read_parts` (and :func:`read_table`), unless told otherwise."""


def _state_name(base: str, namespace: str) -> str:
    """``base`` (``lock``, ``pending``) of ``namespace``: ``base-namespace`` (``base`` for "")."""
    return f"{base}-{namespace}" if namespace else base


def new_part_id() -> str:
    """A unique, roughly time-ordered part name (no extension)."""
    return f"{uuid.uuid1().hex}"


def write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    """Write ``table`` to ``path`` via a temporary name and a rename.

    ``options``: ``pyarrow.parquet.write_table`` arguments besides :data:`PARQUET_OPTIONS`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})
    os.replace(tmp, path)


def write_arrow(table: pa.Table, path: Path) -> None:
    """Write ``table`` to ``path`` as an Arrow IPC file (one record batch, zstd buffers:
    path lists compress well), via a temporary name and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    table = table.combine_chunks()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_file(str(tmp), table.schema, options=options) as writer:
        writer.write_table(table)
    os.replace(tmp, path)


def part_files(table_dir: Path) -> list[Path]:
    """The committed part files of one lake table, sorted by name."""
    if not table_dir.is_dir():
        return []
    return sorted(p for p in table_dir.glob("*.parquet") if not p.name.startswith("."))


def read_table(table_dir: Path, schema: pa.Schema) -> pa.Table:
    """All part files of a table as one Arrow table of one chunk (empty, with ``schema``, if none)."""
    return read_parts(part_files(table_dir), schema)


def read_parts(files: list[Path], schema: pa.Schema, threads: int = READ_THREADS) -> pa.Table:
    """Part files as one Arrow table of one chunk (empty, with ``schema``, if none);
    ``threads`` parts are read at once."""
    if not files:
        return schema.empty_table()
    # each part read on its own, several at a time: a pyarrow dataset would import pandas
    with ThreadPoolExecutor(min(threads, len(files))) as pool:
        parts = list(pool.map(lambda path: _read_part(path, schema), files))
    return pa.concat_tables(parts).combine_chunks()


def _read_part(path: Path, schema: pa.Schema) -> pa.Table:
    """One part file as ``schema`` (parts are small: read on one thread; cast only when it differs)."""
    table = pq.ParquetFile(path).read(use_threads=False)
    return table if table.schema.equals(schema) else table.cast(schema)


class Transaction:
    """Stage part files, then commit them (and deletions) all together.

    Args:
        lake_dir: the lake root (``<warehouse>/lake``).
        namespace: whose pending directory stages it (see the module docstring).
    """

    def __init__(self, lake_dir: Path, namespace: str = "") -> None:
        self.lake_dir = lake_dir
        self.txid = new_part_id()
        self.staging = lake_dir / "_state" / _state_name(PENDING, namespace) / self.txid
        self.staging.mkdir(parents=True, exist_ok=True)
        self._moves: list[tuple[str, str]] = []
        self._deletes: list[str] = []

    def stage_path(self, name: str) -> Path:
        """A path inside the staging directory, for writers that write themselves."""
        return self.staging / name

    def add_file(self, staged: Path, target: Path) -> None:
        """Move the staged file ``staged`` to lake path ``target`` on commit."""
        self._moves.append((
            str(staged.relative_to(self.lake_dir)),
            str(target.relative_to(self.lake_dir)),
        ))

    def add(self, table: pa.Table, target: Path) -> None:
        """Write ``table`` now (staged) and move it to ``target`` on commit."""
        staged = self.staging / f"{len(self._moves)}-{target.name}"
        write_parquet(table, staged)
        self.add_file(staged, target)

    def delete(self, paths: Iterable[Path]) -> None:
        """Delete these lake files on commit."""
        self._deletes.extend(str(p.relative_to(self.lake_dir)) for p in paths)

    def write_journal(self) -> None:
        """The point of no return: from here on, :func:`recover` completes the commit."""
        journal = {"moves": self._moves, "deletes": self._deletes}
        tmp = self.staging / f".{JOURNAL}.tmp"
        tmp.write_text(json.dumps(journal))
        os.replace(tmp, self.staging / JOURNAL)

    def commit(self) -> None:
        """Make every staged change visible; survives being killed at any point."""
        self.write_journal()
        _apply(self.lake_dir, self.staging)

    def abort(self) -> None:
        shutil.rmtree(self.staging, ignore_errors=True)


def _apply(lake_dir: Path, staging: Path) -> None:
    journal = json.loads((staging / JOURNAL).read_text())
    for staged, target in journal["moves"]:
        src, dst = lake_dir / staged, lake_dir / target
        if src.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for rel in journal["deletes"]:
        (lake_dir / rel).unlink(missing_ok=True)
    shutil.rmtree(staging, ignore_errors=True)


def recover(lake_dir: Path, namespace: str = "") -> int:
    """Finish the committed transactions of ``namespace`` and discard its uncommitted ones
    (call it holding that namespace's lock).

    Returns:
        The number of staging directories dealt with (0 when the lake was clean).
    """
    pending = lake_dir / "_state" / _state_name(PENDING, namespace)
    if not pending.is_dir():
        return 0
    count = 0
    for staging in sorted(pending.iterdir()):
        if (staging / JOURNAL).exists():
            _apply(lake_dir, staging)
        else:
            shutil.rmtree(staging, ignore_errors=True)
        count += 1
    return count


class LakeLock:
    """An exclusive lock on the lake for one writing process (``fcntl.flock``), in ``namespace``.

    On entry, the namespace's interrupted transactions are recovered (:func:`recover`).
    ``wait``: wait for the lock instead of failing when it is held.

    Raises:
        UserError: when another cohortdb process holds the lock (and not ``wait``).
    """

    def __init__(self, lake_dir: Path, namespace: str = "", *, wait: bool = False) -> None:
        self.path = lake_dir / "_state" / _state_name(LOCK, namespace)
        self.namespace = namespace
        self.wait = wait
        self._fd: int | None = None

    @property
    def fd(self) -> int:
        """The locked file descriptor (forked children must close their copy)."""
        assert self._fd is not None
        return self._fd

    def __enter__(self) -> LakeLock:
        import fcntl

        from ingest.errors import UserError

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | (0 if self.wait else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(self._fd)
            self._fd = None
            holder = f" ({self.namespace})" if self.namespace else ""
            raise UserError(
                f"another cohortdb process{holder} is writing to {self.path.parent.parent}; "
                "wait for it to finish"
            ) from None
        try:
            recover(self.path.parent.parent, self.namespace)
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def namespaces(lake_dir: Path) -> list[str]:
    """Every namespace with a lock file or a pending directory in the lake (the default first)."""
    found = {""}
    state = lake_dir / "_state"
    if state.is_dir():
        for entry in state.iterdir():
            for base in (LOCK, PENDING):
                if entry.name.startswith(f"{base}-"):
                    found.add(entry.name.removeprefix(f"{base}-"))
    return sorted(found)


@contextlib.contextmanager
def lock_every_namespace(lake_dir: Path) -> Iterator[None]:
    """Hold the lock of every namespace of the lake (each recovered): no writer is at work.

    Raises:
        UserError: when any of them is held by another process.
    """
    with contextlib.ExitStack() as stack:
        for namespace in namespaces(lake_dir):
            stack.enter_context(LakeLock(lake_dir, namespace))
        yield
