"""Finding the sources under the given paths, with each directory's listing remembered.

A directory's entries change only together with its modification time (and
its inode change time): adding, removing or renaming an entry updates both.
So a re-run that finds a directory with the same identity (device, inode,
mtime, ctime) as when it was last listed reuses the remembered entry names
instead of listing it again; each file still gets a ``stat`` (size and mtime
tell a file changed in place). A directory modified less than :data:`RACY_NS`
before it was listed is not remembered (a later change could fall in the same
timestamp tick), nor is one that cannot be listed.

The remembered listings are one Arrow file (zstd). On a re-run
the pool's workers ``stat`` the remembered directories and their files (each
worker a range of rows); this process then only follows the tree from the
roots (a remembered directory counts only if a directory reached lists it)
and lists again the changed directories reached. What was found stays an
Arrow table, so nothing per file becomes a Python object unless it is read.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import queue
import signal
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from multiprocessing.pool import Pool
from pathlib import Path
from stat import S_ISLNK
from typing import Any, NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from ingest.errors import UserError
from ingest.lake import write_arrow
from ingest.sources.files.read import Source, escape_path, unescape_path

WALK_SPLIT = 16
"""Subtrees a parallel walk is split into (directories found breadth-first, dealt round-robin)."""
WALK_JOB_DIRECTORIES = 2_000
"""Directories one job of a parallel walk lists at most: what a worker holds for it is
bounded whatever the tree's size; the directories left go back to the pool as 2 new jobs."""
STAT_SPLIT = 8
"""Row ranges the remembered directories under the roots are split into for the pool to ``stat``."""
RACY_NS = 2_000_000_000
"""A directory changed this recently (ns) when listed is listed again next time."""

Identity = tuple[int, int, int, int]
"""(st_dev, st_ino, st_mtime_ns, st_ctime_ns) of a directory."""

Listing = tuple[Identity, list[str], list[str]]
"""A directory's identity and entries when it was listed: (identity, subdirectory names, file names)."""

IDENTITY = ("dev", "ino", "mtime_ns", "ctime_ns")

LISTINGS = pa.schema([
    ("directory", pa.string()),
    ("dev", pa.uint64()),
    ("ino", pa.uint64()),
    ("mtime_ns", pa.int64()),
    ("ctime_ns", pa.int64()),
    ("subdirs", pa.list_(pa.string())),
    ("files", pa.list_(pa.string())),
    ("parent", pa.int32()),
])
"""The remembered listings: one row per directory (absolute path), sorted by directory;
``parent`` is the row of the directory listing it as a subdirectory (-1 when none does)."""

FOUND = pa.schema([
    ("path", pa.string()),
    ("size", pa.int64()),
    ("mtime_ns", pa.int64()),
    ("broken_link", pa.bool_()),
])
"""The files a walk found, as :class:`~ingest.dicom.read.Source` fields (bytes, ns)."""


class Walk(NamedTuple):
    """What :func:`walk_sources` found: every file (:data:`FOUND`, in no particular order),
    the absolute roots, the directory roots, which remembered listings still hold (one
    flag per row of the remembered table), and the directories listed in this walk."""

    found: pa.Table
    roots: list[str]
    dir_roots: list[str]
    reused: pa.BooleanArray
    listings: dict[str, Listing]


OnFound = Callable[[list[Source]], None]
"""Told the files of a part of a fresh walk as soon as they are found (each file once)."""


class Stats(NamedTuple):
    """``stat`` results for rows of the remembered listings.

    ``matched``: per directory, 1 when its identity is unchanged (0 when changed,
    vanished, or not looked at). ``sizes`` (bytes), ``mtimes`` (ns) and ``broken``
    (1 for a broken symbolic link): per file of those rows, in order; zeros for
    the files of directories not matched.
    """

    matched: bytearray
    sizes: array[int]
    mtimes: array[int]
    broken: bytearray


def sources(found: pa.Table) -> list[Source]:
    """The files of a :data:`FOUND` table as sources, sorted by path."""
    found = found.sort_by("path")
    return list(map(Source._make, zip(*(found[name].to_pylist() for name in FOUND.names), strict=True)))


def _source(path: str) -> Source:
    """A file's size and mtime (of the link itself for a broken symbolic link);
    zeros when it cannot even be ``lstat``-ed (reading it then records why)."""
    try:
        stat = os.stat(path)
    except OSError:
        try:
            stat = os.lstat(path)
        except OSError:
            if "%" in path and (real := unescape_path(path)) != path:  # a name that is not UTF-8
                try:
                    stat = os.lstat(real)
                except OSError:
                    return Source(path, 0, 0)
                return Source(path, stat.st_size, stat.st_mtime_ns)
            return Source(path, 0, 0)
        return Source(path, stat.st_size, stat.st_mtime_ns, S_ISLNK(stat.st_mode))
    return Source(path, stat.st_size, stat.st_mtime_ns)


def _prefix(directory: str) -> str:
    return directory if directory.endswith(os.sep) else directory + os.sep


def _identity(directory: str) -> Identity | None:
    """The directory's identity now; None when it vanished or cannot be searched."""
    try:
        stat = os.stat(directory)
    except OSError:
        return None
    return (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)


def _list_dir(
    directory: str, identity: Identity, found: dict[str, Source], listings: dict[str, Listing], since_ns: int
) -> list[str]:
    """Add the files of ``directory`` to ``found`` and its listing to ``listings``
    (unless changed after ``since_ns``); return its subdirectories.

    Symbolic links to directories are files here (not followed); fifos, sockets
    and devices are skipped. A directory that cannot be listed is itself a source
    (reading it gives its error row), as is an entry whose name is not UTF-8
    (its path escaped, see :func:`~ingest.sources.files.read.escape_path`).
    """
    subdirs: list[str] = []
    files: list[str] = []
    try:
        scanner = os.scandir(directory)
    except FileNotFoundError:  # vanished meanwhile
        return subdirs
    except OSError:
        found[directory] = Source(directory, 0, identity[2])
        return subdirs
    with scanner:
        for entry in scanner:
            name = entry.name
            if not name.isascii() and (escaped := escape_path(name)) != name:
                files.append(escaped)
                path = _prefix(directory) + escaped
                found[path] = _source(path)
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append(name)
            elif _is_file(entry) or entry.is_symlink():
                files.append(name)
                try:
                    stat = entry.stat()
                except OSError:  # a broken link, or a loop
                    found[entry.path] = _source(entry.path)
                    continue
                found[entry.path] = Source(entry.path, stat.st_size, stat.st_mtime_ns)
    if max(identity[2], identity[3]) < since_ns:
        listings[directory] = (identity, subdirs, files)
    prefix = _prefix(directory)
    return [prefix + name for name in subdirs]


def _is_file(entry: os.DirEntry[str]) -> bool:
    """``entry.is_file()``; False where it cannot tell (a symbolic link loop)."""
    try:
        return entry.is_file()
    except OSError:
        return False


def _visit(directory: str, found: dict[str, Source], listings: dict[str, Listing], since_ns: int) -> list[str]:
    """:func:`_list_dir` of ``directory`` (nothing when it vanished); its subdirectories."""
    identity = _identity(directory)
    return [] if identity is None else _list_dir(directory, identity, found, listings, since_ns)


def _walk_dirs(
    directories: list[str], since_ns: int, limit: int | None = None
) -> tuple[dict[str, Source], dict[str, Listing], list[str]]:
    """Every file under ``directories``, recursively, and every directory's listing;
    after ``limit`` directories (None: no limit), also those left to list."""
    found: dict[str, Source] = {}
    listings: dict[str, Listing] = {}
    stack = list(directories)
    n_listed = 0
    while stack and (limit is None or n_listed < limit):
        directory = stack.pop()
        _test_kill(directory)
        stack += _visit(directory, found, listings, since_ns)
        n_listed += 1
    return found, listings, stack


KILL_WALKER_ON = "COHORTDB_TEST_KILL_WALKER_ON"
"""Test hook: a pool worker about to list (or stat) a directory of this name kills itself (SIGKILL,
as the out-of-memory killer would)."""


def _test_kill(directory: str) -> None:
    if (doomed := os.environ.get(KILL_WALKER_ON)) and os.path.basename(directory) == doomed \
            and multiprocessing.parent_process() is not None:
        os.kill(os.getpid(), signal.SIGKILL)


POLL_SECONDS = 0.5
"""How often the main process, waiting for the walk's jobs, checks that the pool's workers are alive."""


class _Jobs:
    """Jobs run in a pool's workers. A job whose worker died (SIGKILL, the out-of-memory killer:
    the pool replaces the worker, but the job is lost) is run again here, in the main process:
    every job pending then, since which one was lost is unknown (a late result is ignored)."""

    def __init__(self, pool: Pool, func: Callable[..., Any], here: Callable[..., Any]) -> None:
        self.pool, self.func, self.here = pool, func, here
        self._done: queue.SimpleQueue[tuple[int, Any]] = queue.SimpleQueue()
        self._pending: dict[int, tuple[Any, ...]] = {}
        self._workers = _children()
        self._ids = itertools.count()

    def submit(self, *args: Any) -> None:
        job = next(self._ids)
        self._pending[job] = args
        self.pool.apply_async(self.func, args, callback=lambda r: self._done.put((job, r)),
                              error_callback=lambda e: self._done.put((job, e)))

    def results(self) -> Iterator[tuple[tuple[Any, ...], Any]]:
        """(arguments, result) of each job as it ends, until none is pending (more may be
        submitted meanwhile). Raises what a job raised."""
        while self._pending:
            try:
                job, result = self._done.get(timeout=POLL_SECONDS)
            except queue.Empty:
                alive = _children()
                if self._workers - alive:
                    self._workers = alive
                    for job, args in list(self._pending.items()):
                        del self._pending[job]
                        yield args, self.here(*args)
                continue
            if job not in self._pending:
                continue  # run here already
            args = self._pending.pop(job)
            if isinstance(result, BaseException):
                raise result
            yield args, result


def _children() -> set[int]:
    """The pids of this process's live child processes (a pool's workers among them)."""
    return {process.pid for process in multiprocessing.active_children() if process.pid is not None}


def _walk_fresh(
    directories: list[str], found: dict[str, Source], listings: dict[str, Listing], since_ns: int,
    pool: Pool | None, on_found: OnFound | None = None,
) -> None:
    """List every directory under ``directories`` (never seen before), the subtrees shared among ``pool``
    (each job lists at most :data:`WALK_JOB_DIRECTORIES`, the rest goes back to the pool);
    ``on_found`` is given the files of each job as soon as it is done."""

    def take(part_found: dict[str, Source], part_listings: dict[str, Listing]) -> None:
        found.update(part_found)
        listings.update(part_listings)
        if on_found and part_found:
            on_found(list(part_found.values()))

    if pool is None or not directories:
        take(*_walk_dirs(directories, since_ns)[:2])
        return
    frontier = directories
    first_found: dict[str, Source] = {}
    first_listings: dict[str, Listing] = {}
    while frontier and len(frontier) < WALK_SPLIT:
        frontier = [sub for d in frontier for sub in _visit(d, first_found, first_listings, since_ns)]
    take(first_found, first_listings)
    # a lost job's subtrees are listed here, whole
    jobs = _Jobs(pool, _walk_dirs, lambda subtrees, since, _: _walk_dirs(subtrees, since))

    def submit(subtrees: list[str], n_jobs: int) -> None:
        for index in range(min(n_jobs, len(subtrees))):
            jobs.submit(subtrees[index::n_jobs], since_ns, WALK_JOB_DIRECTORIES)

    submit(frontier, WALK_SPLIT)
    for _, (part_found, part_listings, left) in jobs.results():
        submit(left, 2)
        take(part_found, part_listings)


# ---------------------------------------------------------------- stat of remembered directories

_shared: pa.Table | None = None
"""The remembered listings in a pool worker (see :func:`share_listings`)."""


def share_listings(remembered: pa.Table) -> None:
    """In a forked pool worker (as its initializer): the listings :func:`walk_sources`
    will be given with this pool (inherited by the fork, not copied)."""
    global _shared  # noqa: PLW0603 - per-process state, set once when the worker starts
    _shared = remembered


def _stat_shared(start: int, stop: int, n_rows: int) -> Stats:
    """:func:`_stat_rows` of rows ``start``..``stop`` of the shared listings (in a worker).

    Raises:
        ValueError: when the worker was not given the same listings (``n_rows`` rows).
    """
    if _shared is None or _shared.num_rows != n_rows:
        raise ValueError("pool workers were not given these listings (see share_listings)")
    return _stat_rows(_shared.slice(start, stop - start))


def _zero_stats(n_directories: int, n_files: int) -> Stats:
    """:class:`Stats` of nothing matched."""
    return Stats(bytearray(n_directories), array("q", bytes(8 * n_files)), array("q", bytes(8 * n_files)),
                 bytearray(n_files))


def _stat_rows(rows: pa.Table) -> Stats:
    """``stat`` each directory of ``rows`` and, when its identity is unchanged, its files."""
    directories = rows["directory"].to_pylist()
    identities = zip(*(rows[name].to_pylist() for name in IDENTITY), strict=True)
    files = _array(rows["files"])
    names = files.flatten().to_pylist()
    bounds = pc.subtract(files.offsets, files.offsets[0]).to_pylist()
    matched, sizes, mtimes, broken = _zero_stats(len(directories), len(names))
    for row, (directory, identity) in enumerate(zip(directories, identities, strict=True)):
        _test_kill(directory)
        if _identity(directory) != identity:
            continue
        matched[row] = 1
        prefix = _prefix(directory)
        for index in range(bounds[row], bounds[row + 1]):
            try:
                stat = os.stat(prefix + names[index])
            except OSError:
                _, sizes[index], mtimes[index], broken[index] = _source(prefix + names[index])
                continue
            sizes[index], mtimes[index] = stat.st_size, stat.st_mtime_ns
    return Stats(matched, sizes, mtimes, broken)


def _array(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """One array (no copy when the column has a single chunk)."""
    if isinstance(column, pa.Array):
        return column
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _stat_remembered(remembered: pa.Table, dir_roots: list[str], pool: Pool | None) -> Stats:
    """:class:`Stats` of every remembered row, looking only at the rows from the first
    to the last directory under ``dir_roots`` (split in :data:`STAT_SPLIT` ranges among ``pool``)."""
    n_rows = remembered.num_rows
    files = _array(remembered["files"])
    n_files = len(files.flatten())
    whole = _zero_stats(n_rows, n_files)
    rows = pc.indices_nonzero(under_mask(remembered["directory"], dir_roots)) if n_rows else pa.array([])
    if not len(rows):
        return whole
    bounds = [rows[len(rows) * i // STAT_SPLIT].as_py() for i in range(STAT_SPLIT)] + [rows[-1].as_py() + 1]
    ranges = [(start, stop) for start, stop in zip(bounds, bounds[1:], strict=False) if start < stop]
    if pool is None:
        parts = [_stat_rows(remembered.slice(start, stop - start)) for start, stop in ranges]
    else:
        jobs = _Jobs(pool, _stat_shared, lambda start, stop, _: _stat_rows(remembered.slice(start, stop - start)))
        for start, stop in ranges:
            jobs.submit(start, stop, n_rows)
        by_start = {args[0]: stats for args, stats in jobs.results()}
        parts = [by_start[start] for start, _ in ranges]
    first, last = ranges[0][0], ranges[-1][1]
    offset = files.offsets[0].as_py()
    file_first, file_last = files.offsets[first].as_py() - offset, files.offsets[last].as_py() - offset
    whole.matched[first:last] = b"".join(part.matched for part in parts)
    whole.sizes[file_first:file_last] = array("q", b"".join(part.sizes.tobytes() for part in parts))
    whole.mtimes[file_first:file_last] = array("q", b"".join(part.mtimes.tobytes() for part in parts))
    whole.broken[file_first:file_last] = b"".join(part.broken for part in parts)
    return whole


def under_mask(directories: pa.ChunkedArray | pa.Array, dir_roots: list[str]) -> pa.BooleanArray:
    """Per path of ``directories``: whether it is one of ``dir_roots`` or inside one."""
    mask = pc.is_in(directories, value_set=pa.array(dir_roots, pa.string()))
    for root in dir_roots:
        mask = pc.or_(mask, pc.starts_with(directories, _prefix(root)))
    return _array(mask)


def _follow(
    remembered: pa.Table, matched: bytearray, dir_roots: list[str],
    found: dict[str, Source], listings: dict[str, Listing], since_ns: int,
) -> tuple[bytearray, list[str]]:
    """Follow the tree from ``dir_roots``: which remembered rows are reached with their identity
    unchanged (1 per row: their listing holds); changed directories reached are listed again here.

    Returns also the directories reached that have no remembered listing (never seen, or
    not remembered), left to list. Rows are sorted by directory: a parent's row comes first.
    """
    directories = _array(remembered["directory"])
    parents = remembered["parent"].to_pylist()
    reused = bytearray(len(parents))
    admitted = bytearray(len(parents))
    rows = _rows(directories, dir_roots)  # of every directory once one changed directory is listed again
    fresh = [root for root in dir_roots if root not in rows]

    def admit(directory: str) -> None:
        if len(rows) < len(parents):
            rows.update(zip(directories.to_pylist(), range(len(parents)), strict=True))
        row = rows.get(directory)
        if row is None:
            fresh.append(directory)
        else:
            admitted[row] = 1

    for row in rows.values():
        admitted[row] = 1
    n_children = 0  # rows listed by a reused row
    for row, parent in enumerate(parents):
        if parent >= 0 and reused[parent]:
            n_children += 1
        elif not admitted[row]:
            continue
        if matched[row]:
            reused[row] = 1
        else:
            for sub in _visit(directories[row].as_py(), found, listings, since_ns):
                admit(sub)
    return reused, fresh + _unremembered(remembered, reused, n_children)


def _rows(directories: pa.Array, paths: list[str]) -> dict[str, int]:
    """The rows of those of ``paths`` that are in ``directories`` (without a dictionary of all of them)."""
    rows = pc.indices_nonzero(pc.is_in(directories, value_set=pa.array(paths, pa.string())))
    return dict(zip(directories.take(rows).to_pylist(), rows.to_pylist(), strict=True))


def _unremembered(remembered: pa.Table, reused: bytearray, n_children: int) -> list[str]:
    """The subdirectories listed by ``reused`` rows that have no row themselves
    (``n_children``: how many rows the reused rows list)."""
    subdirs = _array(remembered["subdirs"])
    listed = _flags(reused)
    if pc.sum(pc.filter(pc.list_value_length(subdirs), listed)).as_py() in (None, n_children):
        return []
    directories = _array(remembered["directory"])
    children, owners = _paths(directories, subdirs)
    missing = pc.and_(pc.take(listed, owners), pc.invert(pc.is_in(children, value_set=directories)))
    return children.filter(missing).to_pylist()


def _flags(values: bytearray) -> pa.BooleanArray:
    """Bytes of 0/1 as a boolean array."""
    return pc.not_equal(pa.Array.from_buffers(pa.uint8(), len(values), [None, pa.py_buffer(values)]), 0)


def _int64(values: array[int]) -> pa.Int64Array:
    """An ``array("q")`` as an Arrow array (sharing its memory)."""
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def _paths(prefixes: pa.Array, lists: pa.ListArray) -> tuple[pa.Array, pa.Array]:
    """The full paths of the names in ``lists`` (one list per directory), and each one's row."""
    owners = pc.list_parent_indices(lists)
    with_sep = pc.binary_join_element_wise(prefixes, "", os.sep)
    prefixed = pc.if_else(pc.ends_with(prefixes, os.sep), prefixes, with_sep)
    return pc.binary_join_element_wise(pc.take(prefixed, owners), pc.list_flatten(lists), ""), owners


def _found(remembered: pa.Table, reused: bytearray, stats: Stats, listed: dict[str, Source]) -> pa.Table:
    """:data:`FOUND`: the files of the ``reused`` remembered rows (with their ``stats``), and ``listed``."""
    files = _array(remembered["files"])
    paths, owners = _paths(_array(remembered["directory"]), files)
    table = pa.table(
        [paths, _int64(stats.sizes), _int64(stats.mtimes), _flags(stats.broken)], schema=FOUND
    ).filter(pc.take(_flags(reused), owners))
    if not listed:
        return table
    more = pa.table(list(zip(*listed.values(), strict=True)), schema=FOUND)
    return pa.concat_tables([table.filter(pc.invert(pc.is_in(table["path"], value_set=more["path"]))), more])


def walk_sources(
    paths: Sequence[str | os.PathLike[str]], pool: Pool | None = None, remembered: pa.Table | None = None,
    on_found: OnFound | None = None,
) -> Walk:
    """All files under ``paths`` (recursively).

    ``pool``: processes to share the work with; with ``remembered``, each must have been
    given the same table by :func:`share_listings`.
    ``remembered``: listings of previous walks (:func:`load_listings`); None lists every directory.
    ``on_found``: given, while the walk goes on, the files found in directories listed
    afresh (not those of remembered listings, nor the files given as paths).

    Raises:
        UserError: when a path does not exist.
    """
    since_ns = time.time_ns() - RACY_NS
    remembered = LISTINGS.empty_table() if remembered is None else remembered
    listed: dict[str, Source] = {}
    listings: dict[str, Listing] = {}
    roots: list[str] = []
    dir_roots: list[str] = []
    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if not os.path.lexists(path):
            raise UserError(f"{given}: no such file or directory")
        if (escaped := escape_path(path)) != path:  # not UTF-8: one bad_name row, not walked
            roots.append(escaped)
            listed[escaped] = _source(escaped)
            continue
        roots.append(path)
        if os.path.isdir(path):
            dir_roots.append(path)
        else:
            listed[path] = _source(path)
    stats = _stat_remembered(remembered, dir_roots, pool)
    reused, fresh = _follow(remembered, stats.matched, dir_roots, listed, listings, since_ns)
    _walk_fresh(fresh, listed, listings, since_ns, pool, on_found)
    return Walk(_found(remembered, reused, stats, listed), roots, dir_roots, _flags(reused), listings)


# ---------------------------------------------------------------- remembered listings

def load_listings(path: Path) -> pa.Table:
    """The listings saved at ``path`` (no rows when there are none, or they cannot be read)."""
    try:
        table = pa.ipc.open_file(pa.memory_map(str(path))).read_all()
    except (OSError, pa.ArrowException):
        return LISTINGS.empty_table()
    if not table.schema.equals(LISTINGS):
        return LISTINGS.empty_table()
    return table


def _listings_table(listings: dict[str, Listing]) -> pa.Table:
    """``listings`` as rows of :data:`LISTINGS` (``parent`` not yet known: -1)."""
    values = list(listings.values())
    columns: list[list[object]] = [list(listings)]
    columns += [[listing[0][index] for listing in values] for index in range(len(IDENTITY))]
    columns += [[listing[1] for listing in values], [listing[2] for listing in values], [-1] * len(values)]
    return pa.table(columns, schema=LISTINGS)


def _with_parents(table: pa.Table) -> pa.Table:
    """``table`` sorted by directory, with each row's ``parent``."""
    table = table.sort_by("directory").combine_chunks()
    subdirs = _array(table["subdirs"])
    children, owners = _paths(_array(table["directory"]), subdirs)
    at = pc.index_in(table["directory"], value_set=children)
    parent = pc.fill_null(pc.take(owners, at), -1).cast(pa.int32())
    return table.set_column(LISTINGS.get_field_index("parent"), "parent", parent)


def save_listings(path: Path, remembered: pa.Table, walk: Walk) -> None:
    """Save ``walk``'s listings (those it reused and those it listed), keeping those of
    ``remembered`` outside its directory roots (``remembered``: the table the walk was
    given, or any when it was given none). Nothing is written when the walk listed
    no directory and reused every remembered one under its roots."""
    outside = pc.invert(under_mask(remembered["directory"], walk.dir_roots))
    keep = pc.or_(outside, walk.reused) if len(walk.reused) else outside
    if not walk.listings and pc.all(keep).as_py() is not False:
        return
    listed = _listings_table(walk.listings)
    keep = pc.and_(keep, pc.invert(pc.is_in(remembered["directory"], value_set=listed["directory"])))
    write_arrow(_with_parents(pa.concat_tables([remembered.filter(keep), listed])), path)


__all__ = [
    "FOUND", "LISTINGS", "Listing", "Walk",
    "load_listings", "save_listings", "share_listings", "sources", "under_mask", "walk_sources",
]
