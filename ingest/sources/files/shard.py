"""Sharding the DICOM source list (``--shard K/N``): which sources a shard owns, and its names.

A source belongs to shard K (1-based) of N when the first 8 bytes of the SHA-1
of its absolute path on disk, read as a big-endian integer, leave K-1 modulo N.
A zip archive is one source: all its members go with the archive's path. Each
shard keeps its own lake state (lock, pending transactions, sources table,
directory listings), named with the suffix ``-K-of-N``, so the N shards of a
lake can run at the same time; an unsharded run (``shard`` None) keeps the
plain names.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from ingest.errors import UserError
from ingest.settings import Settings

_SHARD = re.compile(r"(\d+)/(\d+)")


@dataclass(frozen=True)
class Shard:
    """Shard ``index`` (1-based, 1 <= index <= count) of ``count`` shards."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def owns(self, path: str) -> bool:
        """Whether this shard owns the source at absolute ``path``."""
        return shard_of(path, self.count) == self.index


def parse_shard(text: str) -> Shard:
    """``"K/N"`` as a :class:`Shard` (K 1-based).

    Raises:
        UserError: not two integers ``K/N`` with 1 <= K <= N.
    """
    match = _SHARD.fullmatch(text)
    if not match:
        raise UserError(f"--shard {text!r}: expected K/N, e.g. 1/4 (shard K of N, K from 1)")
    index, count = int(match[1]), int(match[2])
    if not 1 <= index <= count:
        raise UserError(f"--shard {text!r}: K must be between 1 and N (K/N, K from 1)")
    return Shard(index, count)


def shard_of(path: str, count: int) -> int:
    """The shard (1-based) of ``count`` that owns the source at absolute ``path``."""
    digest = hashlib.sha1(os.fsencode(path)).digest()
    return int.from_bytes(digest[:8], "big") % count + 1


def in_shard(paths: pa.Array | pa.ChunkedArray, shard: Shard) -> pa.BooleanArray:
    """Per absolute source path of ``paths``: whether ``shard`` owns it."""
    owned = [shard.owns(path) for path in paths.to_pylist()]
    return pa.array(owned, pa.bool_())


def suffix(shard: Shard | None) -> str:
    """``-K-of-N`` for a shard; empty for an unsharded run (today's names)."""
    return f"-{shard.index}-of-{shard.count}" if shard else ""


def namespace(shard: Shard | None) -> str:
    """The lock and pending-transactions namespace (:class:`~ingest.lake.LakeLock`) of a run."""
    return f"dicom{suffix(shard)}" if shard else ""


def sources_dir(settings: Settings, shard: Shard | None) -> Path:
    """The state table of the sources a run has read (``_state/dicom_sources[-K-of-N]/``)."""
    return settings.state_dir / f"dicom_sources{suffix(shard)}"


def listings_path(settings: Settings, shard: Shard | None) -> Path:
    """The remembered directory listings of a run (``_state/dicom_directories[-K-of-N].arrow``)."""
    return settings.state_dir / f"dicom_directories{suffix(shard)}.arrow"
