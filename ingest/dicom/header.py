"""What reading one DICOM header produces, whichever reader produced it."""

from __future__ import annotations

from dataclasses import dataclass

from ingest.dicom.flatten import ElementRows


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
            ``invalid``, ``unreadable``, ``broken_symlink``, ``bad_zip``, ``empty_zip``,
            ``not_a_file`` (a FIFO, socket or device), ``worker_died``.
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
