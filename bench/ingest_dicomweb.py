"""Benchmark: `cohortdb ingest dicomweb` against a plain sequential metadata loop, on a real Orthanc.

Generates (once, cached under bench/out/) a synthetic CT corpus, about 500 studies and
20,000 instances at ``--scale 1``, uploads it (once: Orthanc's storage is cached too) to
Debian's Orthanc + DICOMweb plugin on 127.0.0.1, then measures in ONE run, ``--rounds``
times alternately:

* the baseline: a sequential loop over the studies fetching each ``/studies/{uid}/metadata``
  with ``requests`` (its default headers) and ``json.loads``;
* the ceiling of any client of this server: ``--concurrency`` threads fetching the same metadata
  (no compression, ``orjson``) and doing nothing with it;
* ``ingest_dicomweb`` into a fresh lake (listing, metadata, small bulk values, rows,
  Parquet, commit), with ``--concurrency`` threads;

as instances/s, their ratio (median over the rounds: load from other tenants comes in bursts),
and Orthanc's CPU share (its CPU seconds per wall second, of the machine's cores) in each,
since Orthanc's own work is the floor. Then an incremental re-run (nothing changed).

Usage: python bench/ingest_dicomweb.py [--scale 1.0] [--concurrency 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # measure this checkout's `ingest`, not an installed one
OUT = ROOT / "bench" / "out"

SERIES_AT_SCALE_1 = 1000
SLICES = 20


def _corpus(scale: float) -> tuple[str, list[Path]]:
    """The name and files of the synthetic CT corpus for ``scale`` (generated once)."""
    from cohortdb.synthetic.dicom import generate_corpus

    n_series = max(2, round(SERIES_AT_SCALE_1 * scale))
    target = OUT / f"dicomweb-corpus-{n_series}x{SLICES}"
    done = target / ".complete"
    if not done.exists():
        print(f"generating {n_series} CT series of {SLICES} slices under {target} …", flush=True)
        generate_corpus(target, n_crdx=0, n_ct_series=n_series, ct_slices=SLICES, n_mr_series=0, mr_slices=1,
                        seed=11, workers=os.cpu_count())
        done.write_text("")
    return target.name, sorted(target.rglob("*.dcm"))


def _server(files: list[Path], name: str):  # type: ignore[no-untyped-def]
    """Orthanc over a storage cached under bench/out/, the corpus uploaded once."""
    import requests

    from tests.orthanc.server import start

    server = start(OUT / f"orthanc-{name}")
    stats = requests.get(f"{server.url}/statistics", auth=server.auth, timeout=30).json()
    if stats["CountInstances"] < len(files):
        print(f"uploading {len(files)} files to Orthanc …", flush=True)
        started = time.perf_counter()
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda path: server.upload(path.read_bytes()), files))
        print(f"  {len(files) / (time.perf_counter() - started):.0f} files/s", flush=True)
    return server


def _cpu(pid: int) -> float:
    import psutil

    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _baseline(server, study_uids: list[str]) -> int:  # type: ignore[no-untyped-def]
    """The plain loop: one session, sequential, ``json.loads`` of each study's metadata."""
    import requests

    session = requests.Session()
    session.auth = server.auth
    n = 0
    for uid in study_uids:
        response = session.get(f"{server.dicomweb}/studies/{uid}/metadata",
                               headers={"Accept": "application/dicom+json"}, timeout=120)
        response.raise_for_status()
        n += len(json.loads(response.content))
    return n


def _ceiling(server, study_uids: list[str], threads: int) -> int:  # type: ignore[no-untyped-def]
    """Fetch-only: ``threads`` sessions, no gzip, ``orjson``; no rows made."""
    import threading

    import orjson
    import requests

    local = threading.local()

    def fetch(uid: str) -> int:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
            session.auth = server.auth
            session.headers["Accept-Encoding"] = "identity"
        response = session.get(f"{server.dicomweb}/studies/{uid}/metadata",
                               headers={"Accept": "application/dicom+json"}, timeout=120)
        response.raise_for_status()
        return len(orjson.loads(response.content))

    with ThreadPoolExecutor(threads) as pool:
        return sum(pool.map(fetch, study_uids))


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children (the ingest's worker processes)."""
    import resource

    return sum(resource.getrusage(who).ru_utime + resource.getrusage(who).ru_stime
               for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))


CPU_MS: dict[str, list[tuple[float, float]]] = {}
"""Per measurement name: (Orthanc's, the client's) CPU milliseconds per instance, each round."""


def _measure(server, run, name: str = "") -> tuple[int, float, float]:  # type: ignore[no-untyped-def]
    """(instances, seconds, Orthanc's CPU share of the machine) of ``run()``."""
    cpu, own, started = _cpu(server.pid), _own_cpu(), time.perf_counter()
    n = run()
    seconds = time.perf_counter() - started
    orthanc_cpu = _cpu(server.pid) - cpu
    CPU_MS.setdefault(name, []).append((1000 * orthanc_cpu / n, 1000 * (_own_cpu() - own) / n))
    return n, seconds, orthanc_cpu / seconds / (os.cpu_count() or 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0: ~500 studies, ~20,000 instances")
    parser.add_argument("--concurrency", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bulk-max-bytes", type=int, default=64)
    args = parser.parse_args()

    from ingest.settings import resolve_settings
    from ingest.sources.dicomweb.client import Auth, DicomWebClient
    from ingest.sources.dicomweb.ingest import ingest_dicomweb
    from tests.orthanc.server import PASSWORD, USER

    name, files = _corpus(args.scale)
    server = _server(files, name)
    try:
        client = DicomWebClient(server.dicomweb, Auth(USER, PASSWORD))
        study_uids = [study.study_uid for study in client.studies()]
        print(f"{len(study_uids)} studies, {len(files)} instances in Orthanc {server.url} "
              f"(pid {server.pid}); {os.cpu_count()} cores", flush=True)
        ratios, ceilings = [], []
        with tempfile.TemporaryDirectory(prefix="bench-dicomweb-") as tmp:
            for round_ in range(1, args.rounds + 1):
                base_n, base_s, base_cpu = _measure(server, lambda: _baseline(server, study_uids), "baseline")
                top_n, top_s, top_cpu = _measure(server, lambda: _ceiling(server, study_uids, 4), "fetch-only")
                settings = resolve_settings(Path(tmp) / f"w{round_}")
                summary = None

                def ingest(settings=settings):  # type: ignore[no-untyped-def]
                    nonlocal summary
                    summary = ingest_dicomweb(settings, DicomWebClient(server.dicomweb, Auth(USER, PASSWORD)),
                                              concurrency=args.concurrency, bulk_max_bytes=args.bulk_max_bytes)
                    return summary.n_instances

                ours_n, ours_s, ours_cpu = _measure(server, ingest, "cohortdb")
                assert summary is not None and ours_n == base_n, (ours_n, base_n)
                ratio = (ours_n / ours_s) / (base_n / base_s)
                ratios.append(ratio)
                ceilings.append((top_n / top_s) / (base_n / base_s))
                print(f"round {round_}: baseline {base_n / base_s:,.0f} instances/s (Orthanc CPU "
                      f"{base_cpu:.0%}), fetch-only ceiling {top_n / top_s:,.0f} (Orthanc CPU {top_cpu:.0%}), "
                      f"cohortdb {ours_n / ours_s:,.0f} instances/s (Orthanc CPU {ours_cpu:.0%}, "
                      f"{summary.n_elements:,} elements, {summary.n_bulk} bulk values, {summary.n_requests} "
                      f"requests): {ratio:.2f}x", flush=True)
            rerun_started = time.perf_counter()
            again = ingest_dicomweb(settings, DicomWebClient(server.dicomweb, Auth(USER, PASSWORD)),
                                    concurrency=args.concurrency)
            rerun = time.perf_counter() - rerun_started
        print(f"\nmedian ratio cohortdb / baseline: {statistics.median(ratios):.2f}x (target >= 2x) over "
              f"{len(ratios)} rounds; the fetch-only ceiling is {statistics.median(ceilings):.2f}x the baseline")
        for name, values in CPU_MS.items():
            print(f"CPU per instance, {name}: Orthanc {statistics.median(v[0] for v in values):.2f} ms, "
                  f"client {statistics.median(v[1] for v in values):.2f} ms")
        print(f"incremental re-run (nothing changed): {rerun:.2f} s, {again.n_unchanged} studies unchanged, "
              f"{again.n_read} read")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
