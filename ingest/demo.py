"""``cohortdb demo``: a synthetic corpus → lake → DuckDB, with example queries."""

from __future__ import annotations

import duckdb
import typer

from ingest.dicom.ingest import ingest_dicom
from ingest.load.duckdb import connect, load_duckdb
from ingest.output import print_rows
from ingest.settings import Settings

EXAMPLES: list[tuple[str, str]] = [
    (
        "Instances per modality and manufacturer",
        "select modality, manufacturer, count(*) as instances\n"
        "from raw.dicom_instances group by all order by instances desc limit 8",
    ),
    (
        "Chest radiographs by view and KVP band",
        "select view_position, round(kvp, -1) as kvp_band, count(*) as instances\n"
        "from raw.dicom_instances where modality in ('CR', 'DX')\n"
        "group by all order by view_position, kvp_band limit 8",
    ),
    (
        "De-identification methods (a sequence, flattened to tag paths)",
        "select value_text as code, count(distinct file_id) as instances\n"
        "from raw.dicom_elements\n"
        "where tag_path like '(0012,0064)\\_\\_%\\_\\_(0008,0100)' escape '\\'\n"
        "group by all order by code",
    ),
    (
        "Deepest nested elements",
        "select keyword_path, vr, value_text from raw.dicom_elements where value_text is not null\n"
        "order by depth desc, keyword_path limit 5",
    ),
    (
        "Private tags and their creators",
        "select private_creator, tag, count(*) as n from raw.dicom_elements\n"
        "where private_creator is not null group by all order by n desc limit 5",
    ),
]


def run_demo(settings: Settings) -> None:
    """Generate, ingest, load, then print each example query and its result."""
    from ingest.dicom.synthetic import generate_corpus

    corpus = settings.warehouse_dir / "demo-dicom"
    if not corpus.exists():
        typer.echo(f"generating a synthetic DICOM corpus in {corpus} …")
        generate_corpus(corpus, n_crdx=300, n_ct_series=2, ct_slices=40, n_mr_series=2, mr_slices=20, seed=0)
    summary = ingest_dicom(settings, [corpus])
    typer.echo(summary.line())
    load_duckdb(settings)
    with connect(settings, read_only=True) as con:
        for title, query in EXAMPLES:
            typer.echo(f"\n-- {title}\n{query};")
            try:
                result = con.execute(query)
            except duckdb.Error as exc:  # an example must never hide the rest
                typer.echo(f"(failed: {exc})")
                continue
            print_rows([d[0] for d in result.description], result.fetchall(), "table")
    w = settings.warehouse_dir
    typer.echo(
        f"\nNext: cohortdb --warehouse {w} sql \"select * from raw.dicom_instances limit 5\"\n"
        f"      or open {settings.duckdb_path} with DuckDB; the Parquet lake is in {settings.lake_dir}"
    )
