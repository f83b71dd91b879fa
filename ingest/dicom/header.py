"""What reading one DICOM header produces, whichever reader produced it."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

from ingest.dicom.flatten import MAX_DEPTH, MAX_ELEMENTS, ElementRows


@dataclass
class Header:
    """The flattened header of one instance.

    Attributes:
        rows: every element before the pixel data (file meta first).
        has_pixel_data: a (7FE0,0010)/(7FE0,0008)/(7FE0,0009) element follows the header.
        pixel_data_length: its declared length in bytes; None when undefined
            (encapsulated) or absent. The pixel data itself is never read.
        reader: ``"fast"`` or ``"pydicom"`` (which path produced the rows).
        size: bytes of the stream read (the file, or the zip member uncompressed).
    """

    rows: ElementRows
    has_pixel_data: bool = False
    pixel_data_length: int | None = None
    reader: str = "pydicom"
    size: int | None = None
    truncated_at: int | None = None
    """Set when the stream ends early: the elements before this byte offset were read."""
    warning: ReadError | None = None
    """Why the header is incomplete (a ``warning`` row of ``dicom_errors``), with ``truncated_at``."""


class ReadError(Exception):
    """A source that cannot be read as DICOM; becomes one row of ``dicom_errors``.

    Args:
        error_type: a short category: ``empty``, ``not_dicom``, ``truncated``,
            ``invalid``, ``too_deep``, ``unreadable``, ``broken_symlink``, ``bad_zip``, ``empty_zip``,
            ``bad_name``, ``reader_failed``, ``not_a_file`` (a FIFO, socket or device),
            ``too_large`` (over :data:`MAX_ELEMENTS` elements, or a zip member's header over its cap),
            ``worker_died`` (see ``docs/tables.md``).
        message: one line a user can act on.
    """

    def __init__(self, error_type: str, message: str, *, severity: str = "error") -> None:
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.severity = severity


class Unsupported(Exception):
    """The fast reader declines this input; the pydicom reader must be used."""


class NeedMore(Exception):
    """The fast reader needs more of the file than it was given (the header is longer)."""


_INTERNAL = (AttributeError, TypeError, KeyError, IndexError, NameError, AssertionError, ZeroDivisionError,
             OverflowError, UnicodeError, LookupError)
"""Exceptions whose text speaks of Python objects, not of the file."""
_INTERNAL_PHRASES = ("object has no attribute", "object is not", "embedded null", "unsupported operand",
                     "not subscriptable", "argument", "unpack", "index out of range", "codec can't")


def describe_failure(exc: BaseException) -> str:
    """One line a user understands for an unexpected exception while reading a source
    (no Python internals: those become the exception's type name only)."""
    if isinstance(exc, RecursionError):
        return "sequences nested too deeply to read"
    if isinstance(exc, MemoryError):
        return "a length in the header is too large to read"
    text = str(exc).splitlines()[0].strip() if str(exc).strip() else ""
    if isinstance(exc, zlib.error):
        return f"deflated data set is corrupt (zlib: {text.partition(': ')[2] or text})"
    if not text or isinstance(exc, _INTERNAL) or any(phrase in text for phrase in _INTERNAL_PHRASES):
        return f"malformed header: the reader failed on it ({type(exc).__name__})"
    return text


__all__ = ["MAX_DEPTH", "MAX_ELEMENTS", "Header", "NeedMore", "ReadError", "Unsupported", "describe_failure"]
