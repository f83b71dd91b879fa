"""Finding the sources under the given paths, with each directory's listing remembered.

A directory's entries change only together with its modification time (and
its inode change time): adding, removing or renaming an entry updates both.
So a re-run that finds a directory with the same identity (device, inode,
mtime, ctime) as when it was last listed reuses the remembered entry names
instead of listing it again; each file still gets a ``stat`` (size and mtime
tell a file changed in place). A directory modified less than :data:`RACY_NS`
before it was listed is not remembered (a later change could fall in the same
timestamp tick), nor is one that cannot be listed.
"""

from __future__ import annotations

import os
import time
from stat import S_ISLNK
from multiprocessing.pool import Pool
from pathlib import Path
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ingest.dicom.read import Source
from ingest.errors import UserError
from ingest.lake import write_parquet

WALK_SPLIT = 16
"""Subtrees a parallel walk is split into (directories found breadth-first, dealt round-robin)."""
RACY_NS = 2_000_000_000
"""A directory changed this recently (ns) when listed is listed again next time."""

Identity = tuple[int, int, int, int]
"""(st_dev, st_ino, st_mtime_ns, st_ctime_ns) of a directory."""


Listing = tuple[Identity, list[str], list[str]]
"""A directory's identity and entries when it was listed: (identity, subdirectory names, file names)."""


LISTINGS = pa.schema([
    ("directory", pa.string()),
    ("dev", pa.uint64()),
    ("ino", pa.uint64()),
    ("mtime_ns", pa.int64()),
    ("ctime_ns", pa.int64()),
    ("subdirs", pa.list_(pa.string())),
    ("files", pa.list_(pa.string())),
])
"""The remembered listings: one row per directory (absolute path)."""


class Walk(NamedTuple):
    """What :func:`walk_sources` found: files sorted by path, the absolute roots,
    the directory roots, and the listing of every directory walked."""

    sources: list[Source]
    roots: list[str]
    dir_roots: list[str]
    listings: dict[str, Listing]


def _source(path: str) -> Source:
    """A file's size and mtime (of the link itself for a broken symbolic link);
    zeros when it cannot even be ``lstat``-ed (reading it then records why)."""
    try:
        stat = os.stat(path)
    except OSError:
        try:
            stat = os.lstat(path)
        except OSError:
            return Source(path, 0, 0)
        return Source(path, stat.st_size, stat.st_mtime_ns, S_ISLNK(stat.st_mode))
    return Source(path, stat.st_size, stat.st_mtime_ns)


def _prefix(directory: str) -> str:
    return directory if directory.endswith(os.sep) else directory + os.sep


def _list_dir(
    directory: str, identity: Identity, found: dict[str, Source], listings: dict[str, Listing], since_ns: int
) -> list[str]:
    """Add the files of ``directory`` to ``found`` and its listing to ``listings``
    (unless changed after ``since_ns``); return its subdirectories.

    Symbolic links to directories are files here (not followed); fifos, sockets
    and devices are skipped; an unreadable directory has no entries.
    """
    subdirs: list[str] = []
    files: list[str] = []
    try:
        scanner = os.scandir(directory)
    except OSError:
        return subdirs
    with scanner:
        for entry in scanner:
            if entry.is_dir(follow_symlinks=False):
                subdirs.append(entry.name)
            elif entry.is_file() or entry.is_symlink():
                files.append(entry.name)
                try:
                    stat = entry.stat()
                except OSError:  # a broken link
                    found[entry.path] = _source(entry.path)
                    continue
                found[entry.path] = Source(entry.path, stat.st_size, stat.st_mtime_ns)
    if max(identity[2], identity[3]) < since_ns:
        listings[directory] = (identity, subdirs, files)
    prefix = _prefix(directory)
    return [prefix + name for name in subdirs]


def _visit(directory: str, found: dict[str, Source], listings: dict[str, Listing], since_ns: int) -> list[str]:
    """:func:`_list_dir` of ``directory``; its subdirectories."""
    try:
        stat = os.stat(directory)
    except OSError:  # vanished, or not searchable
        return []
    identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
    return _list_dir(directory, identity, found, listings, since_ns)


def _walk_remembered(
    root: str, found: dict[str, Source], listings: dict[str, Listing], since_ns: int,
    remembered: dict[str, Listing],
) -> list[str]:
    """Walk ``root`` reusing the remembered listings of unchanged directories (changed
    ones are listed again); return the directories never seen, not walked here."""
    fresh: list[str] = []
    stack = [root]
    while stack:
        directory = stack.pop()
        listing = remembered.get(directory)
        if listing is None:
            fresh.append(directory)
            continue
        try:
            stat = os.stat(directory)
        except OSError:  # vanished, or not searchable
            continue
        identity = (stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
        if listing[0] != identity:
            stack += _list_dir(directory, identity, found, listings, since_ns)
            continue
        listings[directory] = listing
        prefix = _prefix(directory)
        for name in listing[2]:
            path = prefix + name
            try:
                stat = os.stat(path)
            except OSError:
                found[path] = _source(path)
                continue
            found[path] = Source(path, stat.st_size, stat.st_mtime_ns)
        stack += [prefix + name for name in listing[1]]
    return fresh


def _walk_dirs(directories: list[str], since_ns: int) -> tuple[dict[str, Source], dict[str, Listing]]:
    """Every file under ``directories``, recursively, and every directory's listing."""
    found: dict[str, Source] = {}
    listings: dict[str, Listing] = {}
    stack = list(directories)
    while stack:
        stack += _visit(stack.pop(), found, listings, since_ns)
    return found, listings


def _walk_tree(
    root: str, found: dict[str, Source], listings: dict[str, Listing], since_ns: int,
    remembered: dict[str, Listing], pool: Pool | None,
) -> None:
    """Walk ``root``: remembered directories here, the never-seen subtrees shared among ``pool``."""
    fresh = _walk_remembered(root, found, listings, since_ns, remembered) if remembered else [root]
    if pool is None or not fresh:
        part = _walk_dirs(fresh, since_ns)
        found.update(part[0])
        listings.update(part[1])
        return
    frontier = fresh
    while frontier and len(frontier) < WALK_SPLIT:
        frontier = [sub for directory in frontier for sub in _visit(directory, found, listings, since_ns)]
    jobs = [(frontier[i::WALK_SPLIT], since_ns) for i in range(WALK_SPLIT)]
    for part_found, part_listings in pool.starmap(_walk_dirs, jobs):
        found.update(part_found)
        listings.update(part_listings)


def walk_sources(
    paths: list[str | os.PathLike[str]], pool: Pool | None = None, remembered: dict[str, Listing] | None = None
) -> Walk:
    """All files under ``paths`` (recursively), sorted by path.

    ``pool``: processes to share the walk of never-seen trees with.
    ``remembered``: listings of a previous walk (:func:`load_listings`); None lists every directory.

    Raises:
        UserError: when a path does not exist.
    """
    since_ns = time.time_ns() - RACY_NS
    sources: dict[str, Source] = {}
    listings: dict[str, Listing] = {}
    roots: list[str] = []
    dir_roots: list[str] = []
    for given in paths:
        path = os.path.abspath(os.fspath(given))
        if not os.path.lexists(path):
            raise UserError(f"{given}: no such file or directory")
        roots.append(path)
        if not os.path.isdir(path):
            sources[path] = _source(path)
        else:
            dir_roots.append(path)
            _walk_tree(path, sources, listings, since_ns, remembered or {}, pool)
    return Walk(sorted(sources.values()), roots, dir_roots, listings)


# ---------------------------------------------------------------- remembered listings

def load_listings(path: Path) -> dict[str, Listing]:
    """The listings saved at ``path`` (empty when there are none, or they cannot be read)."""
    try:
        table = pq.ParquetFile(path).read()
    except (OSError, pa.ArrowException):
        return {}
    if not table.schema.equals(LISTINGS):
        return {}
    identities = zip(*(table[name].to_pylist() for name in ("dev", "ino", "mtime_ns", "ctime_ns")), strict=True)
    listings = zip(identities, _lists(table["subdirs"]), _lists(table["files"]), strict=True)
    return dict(zip(table["directory"].to_pylist(), listings, strict=True))


def _lists(column: pa.ChunkedArray) -> list[list[str]]:
    """A list<string> column as Python lists (one conversion of all the names, then slices)."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    names = array.flatten().to_pylist()
    bounds = pc.subtract(array.offsets, array.offsets[0]).to_pylist()
    return [names[start:end] for start, end in zip(bounds, bounds[1:], strict=False)]


def save_listings(path: Path, remembered: dict[str, Listing], walk: Walk) -> None:
    """Save ``walk``'s listings, keeping those of ``remembered`` outside the directories it walked
    (nothing is written when every directory walked was unchanged and none vanished)."""
    prefixes = tuple(_prefix(root) for root in walk.dir_roots)
    roots = set(walk.dir_roots)
    kept = {d: listing for d, listing in remembered.items() if d not in roots and not d.startswith(prefixes)}
    if len(kept) + len(walk.listings) == len(remembered) and all(
        remembered.get(d) is listing for d, listing in walk.listings.items()
    ):
        return
    kept.update(walk.listings)
    directories = sorted(kept)
    listings = [kept[d] for d in directories]
    columns = {"directory": directories}
    for index, name in enumerate(("dev", "ino", "mtime_ns", "ctime_ns")):
        columns[name] = [listing[0][index] for listing in listings]
    columns["subdirs"] = [listing[1] for listing in listings]
    columns["files"] = [listing[2] for listing in listings]
    write_parquet(pa.table(columns, schema=LISTINGS), path)


__all__ = ["Listing", "Walk", "load_listings", "save_listings", "walk_sources"]
