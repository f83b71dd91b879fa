"""The mock site (demo, tests, benches): a synthetic DICOM corpus (``dicom*``), MIDRC-shaped
guppy records (``guppy``) and a warehouse lake at scale written directly as Parquet (``lake``)."""

from __future__ import annotations
