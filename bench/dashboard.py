"""Benchmark: each dashboard page's queries on the 1,000,000-study warehouse, p95 per interaction.

Every interaction runs what its page asks of :mod:`dashboards.queries` on a reader of
the warehouse built by ``bench/warehouse_build.py`` (its lake generator, its cache under
``bench/out/warehouse-<size>/``; loaded and built here when absent), with the dashboard's
result cache emptied before each run, so every time is a cold query (what a user waits
for after changing a facet). Results that the dashboard caches per warehouse version
(slider bounds, the tag list) are timed apart, on their first call.

    PYTHONPATH=. python bench/dashboard.py [--size 1000000] [--runs 10]

Prints p50 and p95 seconds per interaction and the ratio of p95 to the 1 s target.
"""

from __future__ import annotations

import argparse
import math
import os
import shlex
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import warehouse_build  # noqa: E402

from cohortdb.api import Warehouse  # noqa: E402
from cohortdb.export import manifest_json  # noqa: E402
from cohortdb.project import SHIPPED_COHORTS_DIR  # noqa: E402
from dashboards import queries  # noqa: E402
from dashboards.selection import parse_params, to_guppy  # noqa: E402

TARGET_S = 1.0


def ensure_warehouse(size: int) -> Path:
    """The built warehouse of ``size`` studies (generated, loaded and built when absent)."""
    directory, _, _ = warehouse_build.ensure_lake(size, skip_generate=False)
    if not (directory / "warehouse.duckdb").exists():
        print("building the warehouse (once) ...", flush=True)
        warehouse_build.time_load(directory)
        warehouse_build.time_build(directory)
    return directory


def interactions(source: Any, directory: Path) -> dict[str, Callable[[], object]]:
    """What each page asks for, one entry per user interaction."""
    def explore(params: dict[str, list[str]], page: int = 1) -> Callable[[], object]:
        selection = parse_params(params)[0]
        return lambda: (queries.explore(source, selection), queries.table_page(source, selection, page))

    def header(params: dict[str, list[str]]) -> Callable[[], object]:
        selection = parse_params(params)[0]
        return lambda: (queries.explore(source, selection), queries.header_values(source, selection),
                        queries.table_page(source, selection, 1))

    study_uid = queries.run(source, "select study_uid from marts.imaging_studies where in_dicom and n_series > 2 "
                                    "order by study_uid limit 1").item()
    file_id = queries.run(source, "select file_id from raw.dicom_elements order by file_id limit 1").item()
    male_cr = parse_params({"sex": ["Male"], "modalities": ["CR"]})[0]
    wh = Warehouse(directory, cohorts=SHIPPED_COHORTS_DIR)
    return {
        "explore: open (studies, no selection)": explore({}),
        "explore: sex = Male": explore({"sex": ["Male"]}),
        "explore: + modality CR, DX": explore({"sex": ["Male"], "modalities": ["CR", "DX"]}),
        "explore: + age 40..60": explore({"sex": ["Male"], "modalities": ["CR", "DX"], "age_at_imaging": ["40..60"]}),
        "explore: + mRALE 10..24, no data": explore({"sex": ["Male"], "midrc_mrale_score": ["10..24", "no data"]}),
        "explore: + manufacturer, body part": explore({"manufacturers": ["SIEMENS"], "body_parts_examined": ["CHEST"],
                                                       "sex": ["Female"]}),
        "explore: table page 500": explore({"sex": ["Male"]}, page=500),
        "explore: header facet KVP 80..120": header({"tag_path_pattern": ["(0018,0060)"],
                                                     "value_number": ["80..120"]}),
        "explore: header facet Modality = CT": header({"tag_path_pattern": ["(0008,0060)"], "value_text": ["CT"],
                                                       "sex": ["Male"]}),
        "explore: guppy filter (pasted)": explore({"filter": ['{"AND": [{"IN": {"sex": ["Female"]}}, '
                                                              '{">=": {"age_at_imaging": 60}}]}']}),
        "explore: series tab": explore({"tab": ["series"]}),
        "explore: series tab, manufacturer + kVp": explore({"tab": ["series"], "modality": ["CR", "DX"],
                                                            "kvp_max": ["80..110"]}),
        "explore: cases tab, sex + age": explore({"tab": ["cases"], "sex": ["Female"], "age_at_index": ["50..70"]}),
        "explore: files tab, modality": explore({"tab": ["files"], "modality": ["CT"]}),
        "study: open (study, series, instances)": lambda: (queries.study(source, study_uid),
                                                           queries.study_series(source, study_uid),
                                                           queries.study_instances(source, study_uid)),
        "study: header tree of an instance": lambda: (queries.instance_elements(source, file_id),
                                                      queries.instance_source(source, file_id)),
        "quality: reconciliation + drill-down": lambda: (queries.reconciliation_summary(source),
                                                         queries.reconciliation_rows(source, "modality")),
        "quality: PHI audit": lambda: queries.phi_audit(source),
        "quality: ingest errors + truncated": lambda: (queries.error_summary(source),
                                                       queries.truncated_instances(source)),
        "sql: studies by modality": lambda: queries.user_sql(source, "select modality, count(*) from "
                                                                     "marts.imaging_studies, unnest(modalities) "
                                                                     "as t(modality) group by all"),
        "cohorts: selection as filter + saved list": lambda: (to_guppy(male_cr), wh.cohorts()),
        "cohorts: diff of two saved cohorts": lambda: queries.cohort_diff(
            source, "seed000_covid_chest_xr", "portable_chest_high_kvp", "study_uid"),
        "export: manifest of Male CR (download)": lambda: manifest_json(queries.selection_manifest(source, male_cr)),
        "export: FHIR of Male CR (download)": lambda: queries.selection_fhir(source, male_cr),
        "export: CSV rows of Male CR (download)": lambda: queries.selection_rows(source, male_cr),
    }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000, help="studies (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=10, help="cold runs per interaction (default: %(default)s)")
    args = parser.parse_args(argv)
    print("$ " + shlex.join([sys.executable, *sys.argv]), flush=True)
    directory = ensure_warehouse(args.size)
    started = time.perf_counter()
    source = queries.reader(queries.target(directory))
    assert source is not None
    print(f"reader of {directory / 'warehouse.duckdb'}: opened in {time.perf_counter() - started:.3f} s")
    started = time.perf_counter()
    for warming in [t for t in threading.enumerate() if t.name == "cohortdb-warm"]:
        warming.join()
    print(f"cached per version, computed when a version is opened: every tab's landing view "
          f"{time.perf_counter() - started:.3f} s")
    for name, static in (("slider bounds, studies tab", lambda: queries.range_bounds(source, "studies")),
                         ("slider bounds, series tab", lambda: queries.range_bounds(source, "series")),
                         ("header attribute list (tag_catalog)", lambda: queries.tag_choices(source))):
        started = time.perf_counter()
        static()
        print(f"cached per version, first call: {name:<40} {time.perf_counter() - started:.3f} s")
    load_before = " ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\n{'interaction (cold: result cache emptied)':<46} {'p50 s':>7} {'p95 s':>7} {'p95/1s':>7}")
    slow = 0
    for name, interaction in interactions(source, directory).items():
        times = []
        for _ in range(args.runs):
            queries.forget_results()
            started = time.perf_counter()
            interaction()
            times.append(time.perf_counter() - started)
        p95 = percentile(times, 0.95)
        slow += p95 >= TARGET_S
        print(f"{name:<46} {statistics.median(times):>7.3f} {p95:>7.3f} {p95 / TARGET_S:>6.2f}×"
              f"  {'ok' if p95 < TARGET_S else 'SLOW'}", flush=True)
    print(f"\n{slow} interaction(s) at or over the {TARGET_S:g} s target (p95 of {args.runs} cold runs)")
    print(f"load average before and after: {load_before}, {' '.join(f'{v:.2f}' for v in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs (times are absolute: a busy machine slows every one)")


if __name__ == "__main__":
    main()
