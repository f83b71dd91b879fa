"""Which shard owns a source, ``--shard K/N`` parsing, and the names of a shard's state."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pytest

from ingest.errors import UserError
from ingest.settings import resolve_settings
from ingest.sources.files.shard import (
    Shard,
    in_shard,
    listings_path,
    namespace,
    parse_shard,
    shard_of,
    sources_dir,
)


def test_a_source_belongs_to_the_sha1_of_its_path_modulo_n() -> None:
    # the contract: the first 8 bytes of SHA-1(path) as a big-endian integer, modulo N, plus 1
    assert hashlib.sha1(b"/data/a.dcm").digest()[:8].hex() == "ac2ca05cd2218a01"
    assert int("ac2ca05cd2218a01", 16) % 7 == 2
    assert shard_of("/data/a.dcm", 7) == 3
    assert [shard_of("/data/a.dcm", n) for n in (1, 2, 3)] == [1, 2, 2]
    assert [shard_of("/data/series.zip", n) for n in (1, 2, 3, 7)] == [1, 2, 1, 1]


def test_a_path_is_hashed_as_its_bytes_on_disk() -> None:
    undecodable = os.fsdecode(b"/data/caf\xe9.dcm")  # not UTF-8: a surrogate escape
    expected = int.from_bytes(hashlib.sha1(b"/data/caf\xe9.dcm").digest()[:8], "big") % 5 + 1
    assert shard_of(undecodable, 5) == expected


def test_shards_partition_the_sources_roughly_evenly() -> None:
    paths = [f"/c/{patient:03d}/{series}.dcm" for patient in range(300) for series in range(10)]
    for count in (1, 2, 3, 8):
        shards = [Shard(k, count) for k in range(1, count + 1)]
        sizes = [sum(in_shard(pa.array(paths), shard).to_pylist()) for shard in shards]
        assert sum(sizes) == len(paths)  # every source in exactly one shard
        assert min(sizes) > len(paths) / count * 0.8
    chunked = pa.chunked_array([paths[:5], paths[5:20]])
    masks = [in_shard(chunked, Shard(k, 4)).to_pylist() for k in (1, 2, 3, 4)]
    assert [[shard_of(p, 4) == k for p in paths[:20]] for k in (1, 2, 3, 4)] == masks


@pytest.mark.parametrize(
    ("text", "shard"), [("1/1", Shard(1, 1)), ("3/4", Shard(3, 4)), ("04/12", Shard(4, 12))]
)
def test_parse_shard(text: str, shard: Shard) -> None:
    assert parse_shard(text) == shard
    assert str(shard) == f"{shard.index}/{shard.count}"


@pytest.mark.parametrize(
    "text", ["0/3", "4/3", "1/0", "0/0", "3", "1/2/3", "a/b", "-1/2", "1 / 2", "", "1/"]
)
def test_bad_shards_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match="--shard"):
        parse_shard(text)


def test_an_unsharded_run_keeps_the_plain_names_and_a_shard_has_its_own(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path)
    state = settings.lake_dir / "_state"
    assert sources_dir(settings, None) == state / "dicom_sources"
    assert listings_path(settings, None) == state / "dicom_directories.arrow"
    assert namespace(None) == ""
    shard = Shard(2, 3)
    assert sources_dir(settings, shard) == state / "dicom_sources-2-of-3"
    assert listings_path(settings, shard) == state / "dicom_directories-2-of-3.arrow"
    assert namespace(shard) == "dicom-2-of-3"
