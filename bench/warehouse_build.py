"""Benchmark: load + ``dbt build`` of a large synthetic warehouse, and mart query times.

The lake is the mock site's at scale (:mod:`cohortdb.synthetic.lake`: guppy
records and DICOM instance rows written directly as Parquet, with value mixes
from the real IDC index of ``idc-index-data``). Per size, this times
``load_duckdb`` and ``build`` (dbt build of every model and test), and on the
largest warehouse the seed 000 cohort (compiled by the product from its
definition, and through ``Warehouse.cohort``) and the facet counts (read-only
connection, warm, best and median of 3).

    PYTHONPATH=. python bench/warehouse_build.py [--sizes 100000,1000000] [--skip-generate | --regenerate]

``--sizes`` are numbers of guppy imaging_study records; the DICOM side gets about
5.7 instances per study. Lakes are cached under ``bench/out/warehouse-<size>/``
(reused when the generator version matches); the warehouse database is rebuilt
on every run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cohortdb.synthetic.lake import GENERATOR_VERSION, generate_lake, lake_state  # noqa: E402
from cohortdb.warehouse.duckdb import database_path  # noqa: E402
from ingest.settings import Settings  # noqa: E402

OUT_DIR = ROOT / "bench" / "out"

SEED_COHORT = "seed000_covid_chest_xr"
"""Seed 000's cohort, timed as the product compiles it from ``cohorts/seed000_covid_chest_xr.yml``."""

FACET_QUERIES = {
    "studies by modality": """
        select modality, count(*) as studies
        from marts.imaging_studies, unnest(modalities) as t(modality)
        group by modality order by studies desc""",
    "studies by sex": """
        select sex, count(*) as studies from marts.imaging_studies
        group by sex order by studies desc""",
    "studies by body part": """
        select body_part, count(*) as studies
        from marts.imaging_studies, unnest(body_parts_examined) as t(body_part)
        group by body_part order by studies desc""",
    "series by manufacturer": """
        select manufacturer, count(*) as series
        from marts.imaging_series group by manufacturer order by series desc""",
    "studies by manufacturer": """
        select manufacturer, count(*) as studies
        from marts.imaging_studies, unnest(manufacturers) as t(manufacturer)
        group by manufacturer order by studies desc""",
    "studies by age band": """
        select cast(floor(age_at_index / 10) * 10 as integer) as age_band, count(*) as studies
        from marts.imaging_studies group by age_band order by age_band""",
}


# --------------------------------------------------------------------------- the lake

def ensure_lake(studies: int, *, skip_generate: bool, regenerate: bool = False
                ) -> tuple[Path, dict[str, int], float | None]:
    """The cached warehouse directory for ``studies`` (generating its lake if needed).

    Returns:
        (warehouse dir, lake row counts, generation seconds or None when cached).
    """
    warehouse = OUT_DIR / f"warehouse-{studies}"
    state = None if regenerate else lake_state(warehouse)
    if state is not None and (state[0] == GENERATOR_VERSION or skip_generate):
        return warehouse, state[1], None
    if skip_generate:
        sys.exit(f"--skip-generate: no generated lake at {warehouse / 'lake'}")
    started = time.perf_counter()
    try:
        counts = generate_lake(warehouse, studies)
    except ModuleNotFoundError as error:
        sys.exit(str(error))
    return warehouse, counts, time.perf_counter() - started


# --------------------------------------------------------------------------- measurement

def time_load(warehouse: Path) -> tuple[float, dict[str, int]]:
    """Seconds of ``load_duckdb`` into a fresh warehouse.duckdb, and its row counts."""
    from cohortdb.warehouse.duckdb import load_duckdb

    settings = Settings(warehouse_dir=warehouse)
    for stale in (database_path(settings), database_path(settings).with_name("warehouse.duckdb.wal")):
        stale.unlink(missing_ok=True)
    started = time.perf_counter()
    counts = load_duckdb(settings)
    return time.perf_counter() - started, counts


def time_build(warehouse: Path) -> tuple[float, str]:
    """Seconds of ``build`` (dbt build of all models, seeds and tests), and its summary."""
    from cohortdb.dbt import dbt_build
    from cohortdb.project import SHIPPED_COHORTS_DIR

    started = time.perf_counter()
    from cohortdb.warehouse import open_target

    outcome = dbt_build(open_target(Settings(warehouse_dir=warehouse)), SHIPPED_COHORTS_DIR)
    seconds = time.perf_counter() - started
    summary = "\n    ".join([outcome.summary(), *outcome.report()])
    return seconds, summary


def slowest_nodes(warehouse: Path, top: int = 8) -> list[tuple[str, float]]:
    """The ``top`` slowest dbt nodes of the last run, from run_results.json."""
    results = json.loads((warehouse / "dbt" / "target" / "run_results.json").read_text())["results"]
    timed = [(r["unique_id"], r["execution_time"]) for r in results]
    return sorted(timed, key=lambda item: -item[1])[:top]


def seed_cohort_sql(warehouse: Path) -> str:
    """The seed cohort's query through the product's own compile path (its definition, the one
    guppy-filter translation, the warehouse's relations): what ``Warehouse.cohort`` runs."""
    from cohortdb.cohorts.compile import cohort_select
    from cohortdb.cohorts.definitions import find_cohort
    from cohortdb.cohorts.filter_sql import guppy_columns
    from cohortdb.cohorts.select import guppy_table, warehouse_refs
    from cohortdb.project import SHIPPED_COHORTS_DIR
    from cohortdb.warehouse import open_target

    target = open_target(Settings(warehouse_dir=warehouse))
    cohort = find_cohort(SEED_COHORT, SHIPPED_COHORTS_DIR)
    _, schema = guppy_table(target, cohort.index)
    return cohort_select(cohort, guppy_columns(schema), target.dialect, warehouse_refs(target))


def _timed(run: Callable[[], int], repeats: int) -> tuple[int, float, float]:
    """(rows, best s, median s) of ``repeats`` runs after one warm-up run."""
    rows = run()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        runs.append(time.perf_counter() - started)
    return rows, min(runs), statistics.median(runs)


def time_queries(warehouse: Path, repeats: int = 3) -> list[tuple[str, int, float, float]]:
    """(name, rows, best s, median s) per query, read-only connection, after one warm-up run.

    The seed cohort is timed twice: its compiled query on the open connection, and the
    whole ``Warehouse.cohort`` call (connect, compile, run, polars); both must give the
    rows dbt built into ``cohorts.<seed>``.
    """
    from cohortdb.api import Warehouse

    queries = {"seed 000 cohort (compiled)": seed_cohort_sql(warehouse), **FACET_QUERIES}
    con = duckdb.connect(str(database_path(Settings(warehouse_dir=warehouse))), read_only=True)
    timings = []
    try:
        built = con.execute(f"select count(*) from cohorts.{SEED_COHORT}").fetchall()[0][0]
        for name, sql in queries.items():
            timings.append((name, *_timed(lambda sql=sql: len(con.execute(sql).fetchall()), repeats)))
    finally:
        con.close()
    api = Warehouse(warehouse)
    timings.insert(1, ("seed 000 via Warehouse.cohort", *_timed(lambda: api.cohort(SEED_COHORT).height, repeats)))
    for name, rows, *_ in timings[:2]:
        if rows != built:
            sys.exit(f"{name}: {rows} rows, but dbt built {built} into cohorts.{SEED_COHORT}")
    return timings


# --------------------------------------------------------------------------- report

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000",
                        help="comma-separated numbers of guppy imaging_study records (default: %(default)s)")
    parser.add_argument("--skip-generate", action="store_true",
                        help="use the cached lakes under bench/out/ as they are; never generate")
    parser.add_argument("--regenerate", action="store_true",
                        help="generate the lakes even when cached ones match the generator")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per query (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    sizes = sorted(int(size.replace("_", "")) for size in args.sizes.split(","))
    print("$ " + shlex.join([sys.executable, *sys.argv]), flush=True)
    rows = []
    for size in sizes:
        warehouse, lake_counts, generated = ensure_lake(size, skip_generate=args.skip_generate,
                                                            regenerate=args.regenerate)
        load_s, raw_counts = time_load(warehouse)
        build_s, summary = time_build(warehouse)
        rows.append((size, lake_counts, generated, load_s, build_s, raw_counts))
        gen = "cached" if generated is None else f"{generated:.1f} s"
        print(f"size {size:>9,}: generate {gen}, load {load_s:.1f} s, build {build_s:.1f} s — {summary}",
              flush=True)
    print("\n== warehouse build ==")
    print(f"{'studies':>10} {'instances':>10} {'series':>10} {'cases':>8} {'elements':>9} "
          f"{'generate s':>10} {'load s':>7} {'build s':>8}")
    for _size, lake, generated, load_s, build_s, _ in rows:
        gen = "cached" if generated is None else f"{generated:.1f}"
        print(f"{lake['imaging_study']:>10,} {lake['instances']:>10,} {lake['data_file']:>10,} "
              f"{lake['case']:>8,} {lake['elements']:>9,} {gen:>10} {load_s:>7.1f} {build_s:>8.1f}")
    if len(rows) > 1:
        small, large = rows[0], rows[-1]
        print(f"build ratio {large[0]:,}/{small[0]:,} studies: {large[4] / small[4]:.1f}×  "
              f"(size ratio {large[0] / small[0]:.0f}×; load ratio {large[3] / small[3]:.1f}×)")
    largest = OUT_DIR / f"warehouse-{sizes[-1]}"
    print(f"\n== slowest dbt nodes at {sizes[-1]:,} studies ==")
    for node, seconds in slowest_nodes(largest):
        print(f"{seconds:8.2f} s  {node}")
    print(f"\n== queries at {sizes[-1]:,} studies (read-only, warm, {args.repeats} runs) ==")
    print(f"{'query':<32} {'rows':>6} {'best s':>8} {'median s':>9}  target < 1 s")
    for name, count, best, median in time_queries(largest, args.repeats):
        verdict = "ok" if median < 1 else "SLOW"
        print(f"{name:<32} {count:>6} {best:>8.3f} {median:>9.3f}  {verdict}")


if __name__ == "__main__":
    main()
