"""Reading one source found on disk: a DICOM file (one instance), a zip archive (one per
member), or anything else (a read error)."""

from __future__ import annotations

import errno
import mmap
import os
import re
import stat
import sys
import tempfile
import zipfile
import zlib
from typing import IO, BinaryIO, NamedTuple, cast

from ingest.dicom.flatten import Nodes
from ingest.dicom.header import Header, ReadError
from ingest.dicom.read import FIRST_READ, read_header

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


class Source(NamedTuple):
    """One file found on disk (a DICOM file, a zip archive, or anything else).

    ``size`` is in bytes; ``mtime_ns`` is the modification time in nanoseconds
    since the epoch (both of the link itself for a broken symbolic link).
    """

    path: str
    size: int
    mtime_ns: int
    broken_link: bool = False


def escape_path(path: str) -> str:
    """``path`` as it is stored: itself when it is valid UTF-8; else, losslessly, with each byte that
    is not UTF-8 (a lone surrogate from ``os.fsdecode``) as ``%XX`` and each ``%`` as ``%25``."""
    if path.isascii():
        return path
    try:
        path.encode()
    except UnicodeEncodeError:
        return "".join(
            "%25" if char == "%" else f"%{ord(char) - 0xDC00:02X}" if 0xDC80 <= ord(char) <= 0xDCFF else char
            for char in path
        )
    return path


def unescape_path(path: str) -> str:
    """The name on disk of a path :func:`escape_path` gave (the path itself if it was not escaped)."""
    return re.sub(r"%(25|[89A-F][0-9A-F])",
                  lambda m: "%" if m[1] == "25" else chr(0xDC00 + int(m[1], 16)), path)


def _bad_name(path: str) -> ReadError | None:
    """The error of a path whose name on disk is not UTF-8 (stored escaped); None for another path."""
    if "%" not in path or os.path.lexists(path):
        return None
    real = unescape_path(path)
    if real == path or not os.path.lexists(real):
        return None
    kind = "directory" if os.path.isdir(real) else "file"
    return ReadError("bad_name", f"{kind} name is not valid UTF-8 (its bytes as %XX in source_path); "
                                 "rename it to ingest it")


def _unlistable(path: str) -> ReadError:
    """The error of a directory the walk could not list."""
    try:
        with os.scandir(path):
            pass
    except OSError as exc:
        return ReadError("unreadable", f"directory cannot be listed ({exc.strerror or exc})")
    return ReadError("unreadable", "directory could not be listed during the walk")


Outcome = tuple[str | None, Header | ReadError]
"""(zip member name or None, the header or why it could not be read)."""


def _outcomes(member: str | None, header: Header) -> list[Outcome]:
    """The header, and the warning of a truncated one (a ``dicom_errors`` row too)."""
    return [(member, header)] if header.warning is None else [(member, header), (member, header.warning)]


def _read_zip(path: str, nodes: Nodes | None) -> list[Outcome]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return [(None, ReadError("bad_zip", f"corrupted zip archive ({exc})"))]
    with archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if not members:
            return [(None, ReadError("empty_zip", "zip archive holds no files"))]
        outcomes: list[Outcome] = []
        for info in members:
            try:
                with archive.open(info) as stream, _Member(stream) as member:
                    head = member.read(FIRST_READ)
                    fp = cast(BinaryIO, member)  # reads, seeks and tells: all the readers use
                    outcomes += _outcomes(info.filename, read_header(head, info.file_size, fp, nodes))
            except ReadError as exc:
                outcomes.append((info.filename, exc))
            except _ZIP_ERRORS as exc:
                outcomes.append((info.filename, ReadError("bad_zip", f"cannot extract member ({exc})")))
        return outcomes


_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError)

SPOOL_MEMORY_BYTES = 32 << 20
"""Bytes of a zip member kept in memory as it is read; beyond, they go to a temporary file."""
MAX_MEMBER_BYTES = 1 << 30
"""Bytes of a zip member read at most (its header must end before): a member is read only as far as
its header goes (never its pixel data), so only a header this long, or a hostile one, reaches it."""
_CHUNK = 1 << 20


class _Member:
    """A zip member, read forward only as far as a reader asks, seekable over what was read (kept in
    memory up to :data:`SPOOL_MEMORY_BYTES`, then in a temporary file), at most :data:`MAX_MEMBER_BYTES`."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream = stream
        self._memory: bytearray | None = bytearray()
        self._file: BinaryIO | None = None
        self._filled = 0
        self._ended = False
        self._position = 0

    def __enter__(self) -> _Member:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is not None:
            self._file.close()

    def _fill(self, end: int) -> None:
        """Read the member up to byte ``end`` (0-based, exclusive), or to its end when shorter."""
        while self._filled < end and not self._ended:
            if self._filled >= MAX_MEMBER_BYTES:
                raise ReadError("too_large", f"the header runs past the first {MAX_MEMBER_BYTES >> 20} MiB "
                                             "of the zip member; extract it to ingest it")
            chunk = self._stream.read(min(_CHUNK, end - self._filled, MAX_MEMBER_BYTES - self._filled))
            if not chunk:
                self._ended = True
                break
            if self._memory is not None and self._filled + len(chunk) > SPOOL_MEMORY_BYTES:
                self._file = tempfile.TemporaryFile()  # noqa: SIM115 - closed on exit
                self._file.write(self._memory)
                self._memory = None
            if self._memory is not None:
                self._memory += chunk
            else:
                self._file.write(chunk)  # type: ignore[union-attr]
            self._filled += len(chunk)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all that is left when negative) from the current position."""
        self._fill(sys.maxsize if n < 0 else self._position + n)
        end = self._filled if n < 0 else min(self._filled, self._position + n)
        start, self._position = self._position, max(self._position, end)
        if start >= end:
            return b""
        if self._memory is not None:
            return bytes(self._memory[start:end])
        return os.pread(self._file.fileno(), end - start, start)  # type: ignore[union-attr]

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            self._fill(sys.maxsize)
            offset += self._filled
        elif whence == os.SEEK_CUR:
            offset += self._position
        self._position = max(0, offset)
        return self._position

    def tell(self) -> int:
        return self._position

    def bytes_until(self, end: int) -> bytes | mmap.mmap:
        """The first ``end`` bytes (fewer when the member is shorter), read if not yet."""
        self._fill(end)
        if self._memory is not None:
            return bytes(self._memory)
        self._file.flush()  # type: ignore[union-attr]
        return mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)  # type: ignore[union-attr]


def _not_a_file(path: str) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a directory
    (followed through symbolic links); None otherwise (opening it then says what is wrong)."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))
    return next((kind for test, kind in kinds if test(mode)), "a special file")


def read_source(source: Source, nodes: Nodes | None = None) -> list[Outcome]:
    """Every instance (or error) of one source: one for a file, one per member for a zip.

    ``nodes``: the node table the rows share (a new one when None).
    """
    if "%" in source.path and (bad := _bad_name(source.path)):
        return [(None, bad)]
    if source.broken_link:
        try:
            os.stat(source.path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return [(None, ReadError("broken_symlink", "symbolic link loop (too many levels of links)"))]
        target = os.readlink(source.path)
        return [(None, ReadError("broken_symlink", f"symbolic link to missing {escape_path(target)}"))]
    if kind := _not_a_file(source.path):  # a FIFO would block open() for ever, a device could too
        return [(None, ReadError("not_a_file", f"{kind}, not a regular file"))]
    try:
        fp = open(source.path, "rb")  # noqa: SIM115 - closed below, read in two steps
    except OSError as exc:
        if os.path.isdir(source.path):
            return [(None, _unlistable(source.path))]
        return [(None, ReadError("unreadable", exc.strerror or str(exc)))]
    with fp:
        try:
            head = fp.read(FIRST_READ)
        except OSError as exc:
            return [(None, ReadError("unreadable", exc.strerror or str(exc)))]
        if head[:4] in _ZIP_MAGIC:
            return _read_zip(source.path, nodes)
        try:
            return _outcomes(None, read_header(head, source.size, fp, nodes))
        except ReadError as exc:
            return [(None, exc)]


__all__ = ["Outcome", "Source", "escape_path", "read_source", "unescape_path"]
