"""Benchmark: `cohortdb ingest dicom` over a seeded fuzz corpus (10,000 mutated files by default).

Mutations of pydicom's bundled test files (byte flips, truncations, corrupted lengths,
inserted/deleted bytes, VR swaps, nesting bombs, 2 GB length claims) plus the three
small known crashers (see ``tests/ingest/sources/files/dicom_fuzz.py``). Prints files/s,
the peak RSS of a worker, and the accounting: instances, errors by error_type, and
whether every source is counted exactly once; then checks a re-run changes nothing.
Usage: python bench/fuzz_dicom.py [--files 10000] [--workers 2] [--seed 0]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's `ingest`, not an installed one
sys.path.insert(0, str(ROOT / "tests" / "ingest" / "sources" / "files"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq
    import pydicom.data

    pydicom.data.download._SIMULATE_NETWORK_OUTAGE = True
    from dicom_fuzz import write_corpus

    from ingest.lake import part_files
    from ingest.settings import resolve_settings
    from ingest.sources.files.ingest import ingest_dicom

    work = Path(tempfile.mkdtemp(prefix="fuzz-dicom-"))
    try:
        corpus = work / "corpus"
        corpus.mkdir()
        kinds = write_corpus(corpus, args.files, seed=args.seed)
        settings = resolve_settings(work / "warehouse")
        started = time.perf_counter()
        summary = ingest_dicom(settings, [corpus], workers=args.workers)
        seconds = time.perf_counter() - started

        def table(name: str) -> pa.Table:
            files = part_files(settings.dicom_lake / name)
            return pa.concat_tables(pq.read_table(f) for f in files)

        instances, errors = table("instances"), table("errors")
        failed = errors.filter(pc.equal(errors["severity"], "error"))
        paths = instances["source_path"].to_pylist() + failed["source_path"].to_pylist()
        once = sorted(paths) == sorted(str(corpus / name) for name in kinds)
        print(f"{len(kinds)} files ({collections.Counter(kinds.values()).most_common()}), {args.workers} processes")
        print(f"ingest: {len(kinds) / seconds:.0f} files/s ({seconds:.1f} s), peak RSS/worker "
              f"{summary.peak_rss_mib:.0f} MiB")
        print(f"accounting: {instances.num_rows} instances + {failed.num_rows} failed sources = "
              f"{instances.num_rows + failed.num_rows} of {len(kinds)} sources; each exactly once: {once}; "
              f"{errors.num_rows - failed.num_rows} warnings (instances kept in part)")
        for kind, count in collections.Counter(errors["error_type"].to_pylist()).most_common():
            print(f"  {kind:14} {count}")
        rows = list(zip(errors["error_type"].to_pylist(), errors["message"].to_pylist(), strict=True))
        for kind in ("reader_failed", "invalid"):
            messages = collections.Counter(message[:90] for t, message in rows if t == kind)
            for message, count in messages.most_common(6):
                print(f"  {kind}: {count} x {message}")
        again = ingest_dicom(settings, [corpus], workers=args.workers)
        print(f"re-run: {again.n_read} read, {again.n_unchanged} unchanged, {again.n_removed} removed")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
