"""The mock site: a synthetic DICOM corpus and MIDRC-shaped guppy records (demo, tests, benches)."""

from __future__ import annotations
