"""DICOM files, directories and zip archives: walking, incremental state, shards."""

from __future__ import annotations
