"""Benchmark: `cohortdb ingest dicom` against bare pydicom and the seed-000 approach.

Generates (once, cached under bench/out/) ≥ 20,000 CR/DX-like files plus
≥ 2,000 CT-like files, then measures in ONE run, on the same files and the
same number of processes:

* bare ``pydicom.dcmread(f, stop_before_pixels=True)`` files/s (the baseline);
* the seed 000 approach (``pd.DataFrame(ds.values())`` per file, then concat), on a sample;
* ``ingest_dicom`` (every element flattened, Parquet written, lake committed) files/s,
  in ``--rounds`` rounds, each ingest compared with the baselines just before and after it
  (the median ratio is the result: load from other tenants comes in bursts);
* peak RSS per worker for a quarter, a half and all of the corpus (flat = no growth);
* an incremental re-run over the unchanged corpus (median of 3), as a fraction of the full ingest.

Prints ratios against the baseline; absolute times on a shared machine mean little.
Usage: python bench/ingest_dicom.py [--crdx 20000] [--ct-series 40] [--workers 2] [--rounds 3]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's `ingest`, not an installed one
OUT = ROOT / "bench" / "out"


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*.dcm"))


def _dcmread_chunk(paths: list[str]) -> float:
    import pydicom

    for path in paths:
        pydicom.dcmread(path, stop_before_pixels=True)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _seed_chunk(paths: list[str]) -> int:
    """Seed 000, cell 20, verbatim in spirit: one wide DataFrame per file, then concat."""
    import pandas as pd
    import pydicom

    frames = []
    for path in paths:
        ds = pydicom.dcmread(path)
        df = pd.DataFrame(ds.values())
        df[0] = df[0].apply(
            lambda x: pydicom.dataelem.DataElement_from_raw(x)
            if isinstance(x, pydicom.dataelem.RawDataElement) else x
        )
        df["name"] = df[0].apply(lambda x: x.name)
        df["value"] = df[0].apply(lambda x: x.value)
        df = df[["name", "value"]].set_index("name").T.reset_index(drop=True)
        df["filename"] = path
        df = df.drop(columns=["Pixel Data"], errors="ignore")
        frames.append(df)
    headers = list(set.intersection(*map(set, frames)))
    try:
        return len(pd.concat([df[headers] for df in frames]))
    except Exception:  # noqa: BLE001 - the notebook's concat fails on repeated private names
        return -len(frames)


def _parallel(function, paths: list[str], workers: int) -> tuple[float, list]:  # noqa: ANN001
    chunks = [paths[i::workers * 8] for i in range(workers * 8)]
    started = time.perf_counter()
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        results = pool.map(function, chunks)
    return time.perf_counter() - started, results


def _ingest_here(paths_root: Path, workers: int, warehouse: Path, full: bool):  # noqa: ANN202
    sys.path.insert(0, str(ROOT))
    from ingest.settings import resolve_settings
    from ingest.sources.files.ingest import ingest_dicom

    return ingest_dicom(resolve_settings(warehouse), [paths_root], workers=workers, full=full)


def _ingest(paths_root: Path, workers: int, warehouse: Path, full: bool = True):  # noqa: ANN202
    """``ingest_dicom`` in a fresh interpreter, as ``cohortdb ingest dicom`` runs it.

    Its workers are forked from that process: forked here, they would inherit
    (and count in their RSS) this process's pandas and file lists.
    ``seconds`` is measured inside ``ingest_dicom`` (interpreter start-up excluded).
    """
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as runner:
        return runner.submit(_ingest_here, paths_root, workers, warehouse, full).result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--crdx", type=int, default=20_000)
    parser.add_argument("--ct-series", type=int, default=40, help="CT series of 50 slices each")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--seed-sample", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=3, help="full ingests, each after and before a baseline")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from cohortdb.synthetic.dicom import generate_corpus

    corpus = OUT / f"corpus-{args.crdx}-{args.ct_series}"
    if not corpus.exists():
        started = time.perf_counter()
        tmp = OUT / f".tmp-{corpus.name}"
        shutil.rmtree(tmp, ignore_errors=True)
        generate_corpus(tmp, n_crdx=args.crdx, n_ct_series=args.ct_series, ct_slices=50, n_mr_series=0, seed=1)
        tmp.rename(corpus)
        print(f"generated {corpus} in {time.perf_counter() - started:.0f} s")
    files = _files(corpus)
    print(f"{len(files)} files, {args.workers} processes")
    for path in files:  # warm the page cache for every contender alike
        Path(path).read_bytes()

    def bare() -> tuple[float, float]:
        seconds, rss = _parallel(_dcmread_chunk, files, args.workers)
        return len(files) / seconds, max(rss)

    base_rate, base_rss = bare()
    print(f"bare dcmread(stop_before_pixels):   {base_rate:8.0f} files/s   1.00x   "
          f"(peak RSS/worker {base_rss:.0f} MiB)")

    sample = files[:: max(1, len(files) // args.seed_sample)][: args.seed_sample]
    seed_s, rows = _parallel(_seed_chunk, sample, args.workers)
    seed_rate = len(sample) / seed_s
    concat = "concat failed" if any(r < 0 for r in rows) else "concat ok"
    print(f"seed 000 DataFrame per file:        {seed_rate:8.0f} files/s   {seed_rate / base_rate:.2f}x   "
          f"({len(sample)} files, {concat})")

    with tempfile.TemporaryDirectory(dir=OUT) as scratch:
        ratios, fulls = [], []
        for round_ in range(1, args.rounds + 1):  # each ingest between two baselines: bursts of load hit both
            full = _ingest(corpus, args.workers, Path(scratch) / f"w{round_}")
            after, _ = bare()
            rate = full.n_read / full.seconds
            ratios.append(rate / ((base_rate + after) / 2))
            fulls.append(full)
            print(f"cohortdb ingest dicom (full), round {round_}: {rate:8.0f} files/s   {ratios[-1]:.2f}x "
                  f"the baselines around it ({base_rate:.0f}, {after:.0f} files/s)")
            base_rate = after
        ratios.sort()
        median = ratios[len(ratios) // 2]
        full = fulls[-1]
        rate = full.n_read / full.seconds
        print(f"cohortdb ingest dicom (full):       median {median:.2f}x bare dcmread over {args.rounds} rounds "
              f"(range {ratios[0]:.2f}-{ratios[-1]:.2f}); {rate / seed_rate:.1f}x the seed approach; "
              f"{full.n_elements} element rows, {full.n_fast}/{full.n_instances} via the fast reader")
        peaks = []
        for step in (4, 2):  # every 4th, every 2nd file: the same mix of CR/DX and CT
            part = Path(scratch) / f"part{step}"
            part.mkdir()
            for index, path in enumerate(files[::step]):
                os.link(path, part / f"{index}.dcm")
            small = _ingest(part, args.workers, Path(scratch) / f"wp{step}")
            peaks.append(f"{small.peak_rss_mib:.0f} MiB at {small.n_read} files")
        peaks.append(f"{max(f.peak_rss_mib for f in fulls):.0f} MiB at {full.n_read} files")
        print(f"peak RSS per worker:                {', '.join(peaks)}")
        agains = sorted(
            _ingest(corpus, args.workers, Path(scratch) / f"w{args.rounds}", full=False).seconds
            for _ in range(3)
        )
        seconds = sorted(f.seconds for f in fulls)[len(fulls) // 2]
        print(f"unchanged re-run:                   {agains[1]:8.2f} s   = {agains[1] / seconds:.1%} "
              f"of the full ingest (medians of 3 re-runs and of the {args.rounds} full ingests, {seconds:.2f} s)")

if __name__ == "__main__":
    main()
