"""Files/s of fast.parse against pydicom on realistic headers, in one process.

Usage: python bench/fast_vs_pydicom.py [copies]   (default 300 copies per file)

Files are held in memory (bytes), so only parsing is timed, not disk I/O.
Prints files/s of (a) dcmread(stop_before_pixels=True), (b) (a) + flatten_dataset,
(c) fast.parse on a 64 KiB prefix, and (b), (c) as ratios of (a).
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pydicom
import pydicom.data.download

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ingest.dicom.fast import parse  # noqa: E402
from ingest.dicom.flatten import flatten_dataset  # noqa: E402
from ingest.dicom.header import NeedMore  # noqa: E402

FILES = ("CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "liver_1frame.dcm", "test-SR.dcm")
PREFIX = 65536


def corpus(copies: int) -> list[bytes]:
    """``copies`` copies of each benchmark file's bytes."""
    pydicom.data.download._SIMULATE_NETWORK_OUTAGE = True
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = [Path(pydicom.data.get_testdata_file(name)) for name in FILES]
    return [path.read_bytes() for path in paths for _ in range(copies)]


def bare(data: bytes) -> object:
    return pydicom.dcmread(BytesIO(data), stop_before_pixels=True)


def flattened(data: bytes) -> object:
    return flatten_dataset(pydicom.dcmread(BytesIO(data), stop_before_pixels=True))


def fast(data: bytes) -> object:
    try:
        return parse(data[:PREFIX], len(data))
    except NeedMore:
        return parse(data, len(data))


def rate(function: Callable[[bytes], object], files: list[bytes], rounds: int = 3) -> float:
    """Best files/s over ``rounds`` passes."""
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for data in files:
            function(data)
        best = min(best, time.perf_counter() - start)
    return len(files) / best


def main() -> None:
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    files = corpus(copies)
    for data in files[:: copies]:
        assert fast(data).reader == "fast"
    base = rate(bare, files)
    full = rate(flattened, files)
    quick = rate(fast, files)
    print(f"{len(files)} files ({', '.join(FILES)} x {copies})")
    print(f"(a) dcmread(stop_before_pixels)  {base:8.0f} files/s  1.00x")
    print(f"(b) dcmread + flatten_dataset    {full:8.0f} files/s  {full / base:.2f}x")
    print(f"(c) fast.parse                   {quick:8.0f} files/s  {quick / base:.2f}x")


if __name__ == "__main__":
    main()
