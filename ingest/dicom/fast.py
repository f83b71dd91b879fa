"""Placeholder until the fast reader lands: declines everything (pydicom reads)."""

from __future__ import annotations

from ingest.dicom.header import Header, Unsupported


def parse(buf: bytes, file_size: int) -> Header:
    raise Unsupported("fast reader not available")
