"""Benchmark: flatten and write N MIDRC-shaped imaging_study records from a JSON dump.

Compares the whole ``--from-json`` ingest (read, flatten, Parquet write, atomic
commit) with ``json.load`` of the same file alone, each in its own process so
peak RSS is measured separately. Target: ingest ≤ 3× json.load.

The two phases alternate ``--repeat`` times (a fresh warehouse each time) and
the best time of each is compared, so that load from other processes on a
shared machine skews the ratio less; every run is printed too.

    python bench/ingest_guppy.py [--records 100000] [--format array|ndjson] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def write_dump(path: Path, count: int, form: str) -> None:
    from cohortdb.synthetic.guppy import generate

    studies = generate(n_cases=(count + 1) // 2, studies_per_case=2, files_per_study=1,
                       seed=11)["imaging_study"][:count]
    with path.open("w") as handle:
        if form == "array":
            json.dump(studies, handle)
        else:
            handle.writelines(json.dumps(s) + "\n" for s in studies)


def phase(name: str, dump: Path, warehouse: Path) -> None:
    started = time.perf_counter()
    if name == "load":
        with dump.open("rb") as handle:
            rows = [json.loads(line) for line in handle] if dump.suffix == ".ndjson" else json.load(handle)
        count = len(rows)
    else:
        from ingest.settings import resolve_settings
        from ingest.sources.guppy.dump import read_dump
        from ingest.sources.guppy.ingest import ingest_indices

        reports = ingest_indices(resolve_settings(warehouse), ["imaging_study"],
                                 lambda index: read_dump(dump, index),
                                 commons=dump.as_uri(), warn=print)
        count = reports[0].rows
    elapsed = time.perf_counter() - started
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": name, "records": count, "seconds": elapsed, "peak_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--format", choices=["array", "ndjson"], default="array")
    parser.add_argument("--repeat", type=int, default=3, help="alternating runs of each phase")
    parser.add_argument("--phase", choices=["load", "ingest"])
    parser.add_argument("--dump", type=Path)
    parser.add_argument("--warehouse", type=Path)
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.dump, args.warehouse)
        return
    with tempfile.TemporaryDirectory() as scratch:
        dump = Path(scratch) / f"imaging_study.{'json' if args.format == 'array' else 'ndjson'}"
        write_dump(dump, args.records, args.format)
        runs: dict[str, list[dict]] = {"load": [], "ingest": []}
        for attempt in range(args.repeat):
            for name in runs:
                out = subprocess.run(
                    [sys.executable, __file__, "--phase", name, "--dump", str(dump),
                     "--warehouse", str(Path(scratch) / f"wh{attempt}")],
                    check=True, capture_output=True, text=True,
                ).stdout.strip().splitlines()[-1]
                runs[name].append(json.loads(out))
        size_mib = dump.stat().st_size / 2**20
        print(f"dump: {args.records:,} records, {size_mib:.0f} MiB ({args.format})")
        best = {}
        for name, results in runs.items():
            each = ", ".join(f"{r['seconds']:.2f}" for r in results)
            r = best[name] = min(results, key=lambda r: r["seconds"])
            peak = max(r["peak_mib"] for r in results)
            print(f"{name:>7}: {r['seconds']:.2f} s best of [{each}], "
                  f"{r['records'] / r['seconds']:,.0f} records/s, peak RSS {peak:.0f} MiB")
        load, ingest = best["load"], best["ingest"]
        rss = max(r["peak_mib"] for r in runs["ingest"]) / max(r["peak_mib"] for r in runs["load"])
        print(f"  ratio: ingest / json.load = {ingest['seconds'] / load['seconds']:.2f}x "
              f"(target <= 3x); RSS ratio {rss:.2f}x")


if __name__ == "__main__":
    main()
