"""The walk with remembered directory listings finds exactly what a fresh walk finds."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import time
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydicom.data import get_testdata_file

from ingest.lake import write_arrow
from ingest.settings import Settings, resolve_settings
from ingest.sources.files import ingest as dicom_ingest
from ingest.sources.files import walk
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.shard import listings_path

CT = Path(get_testdata_file("CT_small.dcm"))
TICK = 0.05
"""Seconds: more than a filesystem timestamp tick; directories older than this are remembered here."""


@pytest.fixture(autouse=True)
def short_racy_window(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(walk, "RACY_NS", int(TICK * 1e9))


def _settle() -> None:
    """Let every directory written so far become older than the racy window."""
    time.sleep(2 * TICK)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """patient/study/series/instance directories, a zip, symbolic links (to a file,
    to a directory, broken), a fifo and an empty directory."""
    root = tmp_path / "src"
    for patient in range(2):
        for series in range(2):
            series_dir = root / f"p{patient}" / "study" / f"s{series}"
            series_dir.mkdir(parents=True)
            for instance in range(2):
                shutil.copy(CT, series_dir / f"{instance}.dcm")
    (root / "empty" / "deeper").mkdir(parents=True)
    with zipfile.ZipFile(root / "series.zip", "w") as archive:
        archive.writestr("a.dcm", CT.read_bytes())
    (root / "link.dcm").symlink_to(root / "p0" / "study" / "s0" / "0.dcm")
    (root / "dir_link").symlink_to(root / "p1", target_is_directory=True)
    (root / "broken.dcm").symlink_to(root / "missing.dcm")
    os.mkfifo(root / "fifo")
    _settle()
    return root


def _remember(found: walk.Walk, remembered: pa.Table | None = None) -> pa.Table:
    """The listings saved after ``found`` (over ``remembered``), as the next run loads them."""
    path = Path(found.roots[0]).parent / "listings.arrow"
    walk.save_listings(path, walk.LISTINGS.empty_table() if remembered is None else remembered, found)
    return walk.load_listings(path)


def _files(remembered: pa.Table) -> dict[str, list[str]]:
    """Remembered file names by directory."""
    return dict(zip(remembered["directory"].to_pylist(), remembered["files"].to_pylist(), strict=True))


def _both(paths: list[Path], remembered: pa.Table) -> tuple[walk.Walk, walk.Walk]:
    """The walk reusing ``remembered`` and a fresh one; they must find the same sources."""
    reused = walk.walk_sources(paths, remembered=remembered)
    fresh = walk.walk_sources(paths)
    assert walk.sources(reused.found) == walk.sources(fresh.found)
    return reused, fresh


def test_a_remembered_walk_lists_only_changed_directories(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = walk.walk_sources([tree])
    assert str(tree / "p0" / "study" / "s0") in first.listings
    first_sources = walk.sources(first.found)
    assert {Path(s.path).name for s in first_sources} >= {"series.zip", "link.dcm", "dir_link", "broken.dcm"}
    assert not any(Path(s.path).name == "fifo" for s in first_sources)
    assert next(s for s in first_sources if s.path.endswith("broken.dcm")).broken_link
    remembered = _remember(first)

    listed: list[str] = []
    scandir = os.scandir
    monkeypatch.setattr(walk.os, "scandir", lambda path: listed.append(path) or scandir(path))
    reused = walk.walk_sources([tree], remembered=remembered)
    assert listed == []
    assert walk.sources(reused.found) == first_sources
    assert reused.listings == {}
    assert pc.all(reused.reused).as_py() and len(reused.reused) == len(first.listings)

    shutil.copy(CT, tree / "p1" / "study" / "s1" / "new.dcm")
    reused, _ = _both([tree], remembered)
    assert str(tree / "p1" / "study" / "s1" / "new.dcm") in reused.found["path"].to_pylist()
    assert listed[0] == str(tree / "p1" / "study" / "s1")  # the only directory the remembered walk lists
    assert listed.count(str(tree / "p1" / "study" / "s1")) == 2  # (and once the fresh walk)


def test_files_changed_in_place_added_and_removed_directories(tree: Path) -> None:
    first = _remember(walk.walk_sources([tree]))
    changed = tree / "p0" / "study" / "s1" / "1.dcm"
    changed.write_bytes(CT.read_bytes() + b"\0\0")  # same name, new size and mtime: the directory is unchanged
    shutil.rmtree(tree / "p1" / "study" / "s0")
    (tree / "p0" / "study" / "s2").mkdir()
    shutil.copy(CT, tree / "p0" / "study" / "s2" / "0.dcm")
    (tree / "empty" / "deeper").rmdir()
    _settle()
    reused, fresh = _both([tree], first)
    assert next(s for s in walk.sources(reused.found) if s.path == str(changed)).size == CT.stat().st_size + 2
    kept = _files(_remember(reused, first))
    assert str(tree / "p1" / "study" / "s0") not in kept
    assert str(tree / "empty" / "deeper") not in kept
    assert kept[str(tree / "p0" / "study" / "s2")] == ["0.dcm"]


def test_directories_changed_just_before_listing_are_not_remembered(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(walk, "RACY_NS", 3600 * 10**9)
    assert walk.walk_sources([tree]).listings == {}


def test_a_replaced_directory_is_listed_again(tree: Path) -> None:
    """Same path, same names, a new inode: the old listing is not reused."""
    first = _remember(walk.walk_sources([tree]))
    series = tree / "p0" / "study" / "s0"
    shutil.rmtree(series)
    series.mkdir()
    shutil.copy(CT, series / "other.dcm")
    reused, _ = _both([tree], first)
    assert str(series / "other.dcm") in reused.found["path"].to_pylist()


def test_pool_workers_stat_remembered_directories_and_files(tree: Path) -> None:
    remembered = _remember(walk.walk_sources([tree]))
    resized = tree / "p0" / "study" / "s0" / "0.dcm"
    resized.write_bytes(CT.read_bytes() + b"\0")
    touched = tree / "p1" / "study" / "s1" / "1.dcm"
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # same size, another mtime
    shutil.rmtree(tree / "p1" / "study" / "s0")
    shutil.copy(CT, tree / "p0" / "study" / "s1" / "new.dcm")
    fresh = {s.path: s for s in walk.sources(walk.walk_sources([tree]).found)}
    with multiprocessing.get_context("fork").Pool(
        2, initializer=walk.share_listings, initargs=(remembered,)
    ) as pool:
        reused = walk.walk_sources([tree], pool, remembered)
    assert {s.path: s for s in walk.sources(reused.found)} == fresh
    assert fresh[str(resized)].size == CT.stat().st_size + 1
    assert fresh[str(touched)].mtime_ns == stat.st_mtime_ns + 10**9
    assert str(tree / "p0" / "study" / "s1" / "new.dcm") in fresh
    assert not any("/p1/study/s0/" in path for path in fresh)


@pytest.mark.parametrize(("split", "job_directories"), [(16, 2_000), (2, 1), (3, 2)])
def test_a_pool_walk_in_small_jobs_finds_what_one_process_finds(
    tree: Path, monkeypatch: pytest.MonkeyPatch, split: int, job_directories: int
) -> None:
    """Jobs that stop after a few directories send the rest back to the pool: nothing lost, nothing twice."""
    for index in range(30):
        deep = tree / "wide" / f"w{index % 5}" / f"x{index}" / "y"
        deep.mkdir(parents=True)
        shutil.copy(CT, deep / f"{index}.dcm")
    _settle()  # both walks remember every listing
    monkeypatch.setattr(walk, "WALK_SPLIT", split)
    monkeypatch.setattr(walk, "WALK_JOB_DIRECTORIES", job_directories)
    alone = walk.walk_sources([tree])
    streamed: list[str] = []
    with multiprocessing.get_context("fork").Pool(2) as pool:
        shared = walk.walk_sources([tree], pool, on_found=lambda found: streamed.extend(s.path for s in found))
    assert walk.sources(shared.found) == walk.sources(alone.found)
    assert shared.listings.keys() == alone.listings.keys()
    assert sorted(streamed) == sorted(alone.found["path"].to_pylist())


def test_a_pool_without_the_listings_is_refused(tree: Path) -> None:
    remembered = _remember(walk.walk_sources([tree]))
    with multiprocessing.get_context("fork").Pool(2) as pool, pytest.raises(ValueError, match="share_listings"):
        walk.walk_sources([tree], pool, remembered)


def test_a_subdirectory_without_a_listing_is_listed(tree: Path) -> None:
    """A directory not remembered (changed while listed) under a remembered one is still walked."""
    first = walk.walk_sources([tree])
    del first.listings[str(tree / "p0" / "study" / "s0")]
    reused, _ = _both([tree], _remember(first))
    assert str(tree / "p0" / "study" / "s0" / "1.dcm") in reused.found["path"].to_pylist()


def test_remembered_directories_no_longer_reached_are_ignored(tree: Path) -> None:
    """Listings remembered through a symbolic link (another root) still match, but the
    walk of ``tree`` does not follow the link, so it must not use them."""
    remembered = _remember(walk.walk_sources([tree]))
    remembered = _remember(walk.walk_sources([tree / "dir_link" / "study"]), remembered)
    assert str(tree / "dir_link" / "study" / "s0") in _files(remembered)
    reused, _ = _both([tree], remembered)
    assert not any("/dir_link/" in path for path in reused.found["path"].to_pylist())


def _corpus_paths(settings: Settings) -> set[str]:
    import pyarrow.parquet as pq

    from ingest.lake import part_files

    return {
        path
        for table in ("instances", "errors")
        for part in part_files(settings.dicom_lake / table)
        for path in pq.read_table(part)["source_path"].to_pylist()
    }


def test_ingest_reuses_listings_and_full_ignores_them(settings: Settings, tree: Path) -> None:
    first = ingest_dicom(settings, [tree], workers=2)
    listings_file = listings_path(settings, None)
    assert listings_file.exists()
    again = ingest_dicom(settings, [tree], workers=2)
    assert (again.n_read, again.n_unchanged) == (0, first.n_sources)

    # a stale listing (pretending a directory has no files) is believed by an incremental run...
    series = str(tree / "p0" / "study" / "s0")
    rows = walk.load_listings(listings_file).to_pylist()
    next(row for row in rows if row["directory"] == series)["files"] = []
    write_arrow(pa.Table.from_pylist(rows, schema=walk.LISTINGS), listings_file)
    stale = ingest_dicom(settings, [tree], workers=2)
    assert stale.n_removed == 2
    # ... and ignored by --full, which lists every directory and remembers them again
    full = ingest_dicom(settings, [tree], workers=2, full=True)
    assert full.n_sources == first.n_sources
    assert len(_files(walk.load_listings(listings_file))[series]) == 2
    assert series + "/0.dcm" in _corpus_paths(settings)


def test_ingest_rereads_a_file_touched_in_place_and_drops_a_vanished_directory(settings: Settings, tree: Path) -> None:
    """With remembered listings the pool's workers stat the files: same size, new mtime is a change."""
    ingest_dicom(settings, [tree], workers=2)
    touched = tree / "p0" / "study" / "s1" / "0.dcm"  # (link.dcm points to s0/0.dcm: it would change too)
    stat = touched.stat()
    os.utime(touched, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    shutil.rmtree(tree / "p1" / "study" / "s1")
    again = ingest_dicom(settings, [tree], workers=2)
    assert (again.n_read, again.n_removed) == (1, 2)
    paths = _corpus_paths(settings)
    assert str(touched) in paths
    assert not any("/p1/study/s1/" in path for path in paths)


def test_a_run_killed_after_saving_its_listings_leaves_the_unread_files_to_the_next(
    settings: Settings, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Listings are saved while the batches are read; they say which files are there,
    the state which were read: the next run reads what the killed one did not commit."""
    waiting = dicom_ingest._Reader.commit_read

    def killed(reader: dicom_ingest._Reader, *, wait: bool = True) -> None:
        if wait:
            raise KeyboardInterrupt
        waiting(reader, wait=False)

    _settle()
    monkeypatch.setattr(dicom_ingest._Reader, "commit_read", killed)
    with pytest.raises(KeyboardInterrupt):
        ingest_dicom(settings, [tree], workers=2)
    assert listings_path(settings, None).exists()
    monkeypatch.undo()
    again = ingest_dicom(settings, [tree], workers=2)
    assert again.n_read + again.n_unchanged == again.n_sources > 0
    clean = resolve_settings(tmp_path / "clean")
    ingest_dicom(clean, [tree], workers=2)
    assert _corpus_paths(settings) == _corpus_paths(clean)


def test_listings_of_other_roots_are_kept_and_vanished_ones_dropped(
    settings: Settings, tree: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other" / "nested"
    other.mkdir(parents=True)
    shutil.copy(CT, other / "kept.dcm")
    _settle()
    ingest_dicom(settings, [tree], workers=1)
    ingest_dicom(settings, [other.parent], workers=1)
    shutil.rmtree(tree / "p1")
    _settle()
    ingest_dicom(settings, [tree, CT], workers=1)
    remembered = _files(walk.load_listings(listings_path(settings, None)))
    assert str(other) in remembered
    assert not any(d.startswith(str(tree / "p1")) for d in remembered)
    assert str(tree / "p0" / "study") in remembered
