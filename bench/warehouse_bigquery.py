"""Benchmark: load + build of the synthetic lake on BigQuery (the emulator) against DuckDB, and
what each mart and the seed cohort would scan on BigQuery.

One process, one lake (bench/warehouse_build.py's, cached under ``bench/out/``): first the
baseline, ``load`` + ``build`` into the embedded DuckDB; then the same on a fresh bqemulator
(``make bqemu``) on 127.0.0.1. Prints both times, their ratio, the emulator's peak RSS, and
checks that every mart has the same row count on both engines.

Bytes scanned: the emulator reports none (its dry runs say 0), so they are computed. BigQuery
bills a query the logical size of every column it reads, of every table it reads (a view is
read as the tables under it): 8 bytes an INT64, FLOAT64, DATE or TIMESTAMP, 1 a BOOL, 2 plus
the UTF-8 bytes a STRING, the sum of the items of an ARRAY and of the fields of a STRUCT, 0 a
NULL. Which columns each model reads comes from DuckDB's plan of the same compiled model
(its scans' projections; a struct read whole, so an upper bound where a query reads one
field), and the sizes from the data itself. Priced at on-demand $6.25 per TiB, not counting
BigQuery's 10 MB minimum per table read.

    PYTHONPATH=. python bench/warehouse_bigquery.py [--studies 100000] [--skip-generate] [--without-fhir]

Then a rebuild on the emulator, whose publishing swaps every table in one transaction, timed
against the first build's publishing (which creates every table).

``--without-fhir`` leaves ``marts.fhir_imaging_studies`` out of both timed builds: the
emulator evaluates JSON functions row by row in Python, so that one model dominates its
time and grows faster than the data (it says nothing of BigQuery itself).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.warehouse_build import ensure_lake  # noqa: E402
from cohortdb.build import build  # noqa: E402
from cohortdb.project import SHIPPED_COHORTS_DIR  # noqa: E402
from cohortdb.warehouse.base import Relation  # noqa: E402
from cohortdb.warehouse.bigquery import BigQueryConfig, BigQueryWarehouse  # noqa: E402
from cohortdb.warehouse.duckdb import DuckDBWarehouse, database_path  # noqa: E402
from ingest.settings import Settings  # noqa: E402
from tests.bigquery.emulator import PROJECT, running_emulator  # noqa: E402

DOLLARS_PER_TIB = 6.25
SEED_COHORT = "seed000_covid_chest_xr"
WITHOUT_FHIR = ("path:seeds path:models/staging path:models/intermediate path:generated imaging_studies "
                "imaging_series dicom_instances patients data_files tag_catalog phi_audit reconciliation")
"""Every dbt node but the FHIR mart (dbt's space-separated union)."""


def logical_bytes_sql(value: str, kind: pa.DataType, depth: int = 0) -> str:
    """A DuckDB expression of the bytes BigQuery counts for ``value`` (SQL of Arrow type ``kind``)."""
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        item = f"b{depth}"
        inner = logical_bytes_sql(item, kind.value_type, depth + 1)
        return f"coalesce(list_sum(list_transform({value}, lambda {item}: {inner})), 0)"
    if pa.types.is_struct(kind):
        fields = [kind.field(i) for i in range(kind.num_fields)]
        parts = " + ".join(logical_bytes_sql(f'{value}."{f.name}"', f.type, depth) for f in fields) or "0"
        return f"(case when {value} is null then 0 else {parts} end)"
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return f"coalesce(strlen({value}) + 2, 0)"  # strlen counts UTF-8 bytes
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return f"coalesce(octet_length({value}) + 2, 0)"
    if pa.types.is_boolean(kind):
        return f"(case when {value} is null then 0 else 1 end)"
    if pa.types.is_decimal(kind):
        return f"(case when {value} is null then 0 else 16 end)"
    return f"(case when {value} is null then 0 else 8 end)"


def scanned_columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, set[str]]:
    """The columns of each base table DuckDB's plan of ``sql`` reads (views expanded)."""
    plan = json.loads(con.execute(f"explain (format json) {sql}").fetchall()[0][1])
    read: dict[str, set[str]] = {}

    def walk(node: dict[str, object]) -> None:
        extra = node.get("extra_info")
        if "SCAN" in str(node.get("name")) and isinstance(extra, dict) and "Table" in extra:
            table = str(extra["Table"]).removeprefix("warehouse.")
            projections = extra.get("Projections") or []
            if isinstance(projections, str):  # one column: the plan gives it bare
                projections = projections.splitlines()
            read.setdefault(table, set()).update(projections)
        for child in node.get("children", []):  # type: ignore[union-attr]
            walk(child)

    for root in plan:
        walk(root)
    return read


def column_bytes(con: duckdb.DuckDBPyConnection, table: str, columns: set[str],
                 cache: dict[tuple[str, str], int]) -> int:
    """BigQuery's logical bytes of ``columns`` of ``table`` (schema.name), summed."""
    todo = sorted(c for c in columns if (table, c) not in cache)
    if todo:
        schema = con.execute(f"select {', '.join(f'{chr(34)}{c}{chr(34)}' for c in todo)} from {table} limit 0"
                             ).to_arrow_table().schema
        sums = ", ".join(f"sum({logical_bytes_sql(f'{chr(34)}{f.name}{chr(34)}', f.type)})" for f in schema)
        values = con.execute(f"select {sums} from {table}").fetchone() or ()
        for name, value in zip(todo, values, strict=True):
            cache[(table, name)] = int(value or 0)
    return sum(cache[(table, c)] for c in columns)


def bytes_scanned(settings: Settings) -> list[tuple[str, int, str]]:
    """Per mart model and the seed cohort: bytes BigQuery would scan, and the tables read."""
    compiled = settings.warehouse_dir / "dbt" / "target" / "compiled" / "cohortdb"
    models = [*sorted((compiled / "models" / "intermediate").glob("*.sql")),
              *sorted((compiled / "models" / "marts").glob("*.sql")),
              compiled / "generated" / "cohorts" / f"{SEED_COHORT}.sql"]
    cache: dict[tuple[str, str], int] = {}
    found = []
    with duckdb.connect(str(database_path(settings)), read_only=True) as con:
        for path in models:
            read = scanned_columns(con, path.read_text())
            total = sum(column_bytes(con, table, columns, cache) for table, columns in read.items())
            found.append((path.stem, total, ", ".join(sorted(read))))
    return found


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--studies", type=int, default=100_000,
                        help="guppy imaging_study records (default: %(default)s)")
    parser.add_argument("--skip-generate", action="store_true", help="use the cached lake whatever its version")
    parser.add_argument("--without-fhir", action="store_true", help="leave the FHIR mart out of the timed builds")
    args = parser.parse_args(argv)
    select = WITHOUT_FHIR if args.without_fhir else None
    if select:  # not the tests of the selected marts that also read the FHIR mart
        os.environ["DBT_INDIRECT_SELECTION"] = "cautious"

    warehouse, counts, generated = ensure_lake(args.studies, skip_generate=args.skip_generate)
    settings = Settings(warehouse_dir=warehouse)
    print(f"lake: {args.studies} studies, " + ", ".join(f"{k} {v}" for k, v in counts.items())
          + (f" (generated in {generated:.0f} s)" if generated else " (cached)"))

    duck = DuckDBWarehouse(settings)
    database_path(settings).unlink(missing_ok=True)
    started = time.perf_counter()
    duck_built = build(settings, SHIPPED_COHORTS_DIR, duck)
    duck_s = time.perf_counter() - started
    assert duck_built.outcome.success, duck_built.outcome.report()
    scanned = bytes_scanned(settings)  # of the whole build, FHIR included
    if select:
        database_path(settings).unlink()
        started = time.perf_counter()
        duck_built = build(settings, SHIPPED_COHORTS_DIR, duck, select=select)
        duck_s = time.perf_counter() - started
        assert duck_built.outcome.success, duck_built.outcome.report()
    print(f"DuckDB   load + build: {duck_s:7.1f} s   {duck_built.outcome.summary()}")

    with tempfile.TemporaryDirectory(prefix="bench-bq-") as tmp, \
            running_emulator(Path(tmp) / "bqemulator.log") as (url, pid):
        bq = BigQueryWarehouse(settings, BigQueryConfig(PROJECT, "bench", api_endpoint=url))
        published: list[float] = []
        publish = bq._publish

        def timed_publish(*args: object) -> None:
            begun = time.perf_counter()
            publish(*args)  # type: ignore[arg-type]
            published.append(time.perf_counter() - begun)

        bq._publish = timed_publish  # type: ignore[method-assign]
        started = time.perf_counter()
        bq_built = build(settings, SHIPPED_COHORTS_DIR, bq, select=select)
        bq_s = time.perf_counter() - started
        print(f"emulator load + build: {bq_s:7.1f} s   {bq_built.outcome.summary()}")
        for line in bq_built.outcome.report():
            print("   ", line)
        if not bq_built.outcome.success:
            sys.exit("the BigQuery build failed")
        print(f"ratio emulator / DuckDB: {bq_s / duck_s:.2f}x; emulator peak RSS {peak_rss_mib(pid):.0f} MiB")
        started = time.perf_counter()
        rebuilt = build(settings, SHIPPED_COHORTS_DIR, bq, select=select)
        rebuild_s = time.perf_counter() - started
        if not rebuilt.outcome.success:
            sys.exit("the BigQuery rebuild failed")
        print(f"emulator rebuild:      {rebuild_s:7.1f} s   publishing {published[-1]:.1f} s (every table swapped in "
              f"one transaction) vs {published[0]:.1f} s on the first build (every table created): "
              f"{published[-1] / published[0]:.2f}x")
        differ = []
        for relation in (r for r in duck.relations() if r.schema == "marts"):
            n_duck = duck.query(f"select count(*) from {duck.relation_sql(relation)}").column(0)[0].as_py()
            on_bq = Relation(relation.schema, relation.name, relation.kind)
            n_bq = bq.query(f"select count(*) from {bq.relation_sql(on_bq)}").column(0)[0].as_py()
            if n_duck != n_bq:
                differ.append(f"{relation.name}: {n_duck} vs {n_bq}")
        print("marts' row counts: " + ("equal on both engines" if not differ else "DIFFER " + "; ".join(differ)))

    print(f"\nbytes BigQuery would scan, per model of a whole build (computed; on-demand ${DOLLARS_PER_TIB}/TiB):")
    print(f"  {'model':28} {'MiB':>10} {'$':>10}  tables read")
    for name, total, tables in scanned:
        print(f"  {name:28} {total / 2**20:10.1f} {total / 2**40 * DOLLARS_PER_TIB:10.4f}  {tables}")
    whole = sum(total for name, total, _ in scanned if name != SEED_COHORT)
    print(f"  {'intermediate + marts':28} {whole / 2**20:10.1f} {whole / 2**40 * DOLLARS_PER_TIB:10.4f}")


if __name__ == "__main__":
    main()
