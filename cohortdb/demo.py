"""The demo pipeline: a synthetic corpus → lake → DuckDB → dbt build, and example queries.

No printing of results here: :func:`run_demo` reports progress through
``echo`` and the CLI prints :data:`EXAMPLES` with their results.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import duckdb

from cohortdb.build import build
from cohortdb.dbt import BuildOutcome, require_dbt
from ingest.errors import UserError
from ingest.settings import Settings, make_warehouse_dir
from ingest.sources.files.ingest import ingest_dicom

EXAMPLES: list[tuple[str, str]] = [
    (
        "Studies by source: commons (guppy) records, DICOM headers, or both",
        "select in_guppy, in_dicom, count(*) as studies, sum(n_instances) as instances\n"
        "from marts.imaging_studies group by all order by all",
    ),
    (
        "A cohort: male chest radiographs with an mRALE score of 10 or more",
        "select study_uid, case_id, age_at_imaging, modalities, midrc_mrale_score\n"
        "from marts.imaging_studies\n"
        "where sex = 'Male' and midrc_mrale_score >= 10\n"
        "  and (list_contains(modalities, 'CR') or list_contains(modalities, 'DX'))\n"
        "order by midrc_mrale_score desc limit 5",
    ),
    (
        "Where the commons and the headers disagree",
        "select check_name, count(*) as studies from marts.reconciliation group by all order by all",
    ),
    (
        "Identifying attributes (PS3.15 Basic Profile) still present and non-empty",
        "select keyword, basic_profile_action, n_instances_non_empty, max_depth\n"
        "from marts.phi_audit where n_instances_non_empty > 0\n"
        "order by n_instances_non_empty desc, keyword limit 8",
    ),
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
        "from staging.stg_dicom__elements\n"
        "where tag_path_pattern = '(0012,0064)__*__(0008,0100)'\n"
        "group by all order by code",
    ),
    (
        "Deepest nested elements",
        "select distinct depth, keyword_path, vr, value_text from raw.dicom_elements\n"
        "where value_text is not null order by depth desc, keyword_path limit 5",
    ),
    (
        "Private tags and their creators",
        "select private_creator, tag, count(*) as n from raw.dicom_elements\n"
        "where private_creator is not null group by all order by n desc limit 5",
    ),
]


SERIES_QUERY = """
select patient_id, any_value(patient_sex) as patient_sex,
       try_cast(regexp_extract(any_value(patient_age), '^(\\d+)Y$', 1) as integer) as patient_age_years,
       study_instance_uid, min(study_date) as study_date, any_value(study_description) as study_description,
       series_instance_uid, any_value(modality) as modality, any_value(body_part_examined) as body_part_examined,
       any_value(manufacturer) as manufacturer, any_value(manufacturer_model_name) as manufacturer_model_name,
       any_value(series_description) as series_description, any_value(view_position) as view_position,
       count(*) as n_instances
from read_parquet($files)
where study_instance_uid is not null and series_instance_uid is not null
group by patient_id, study_instance_uid, series_instance_uid
order by patient_id, study_instance_uid, series_instance_uid
"""


def ingest_linked_guppy(settings: Settings, seed: int = 0, echo: Callable[[str], None] = print) -> None:
    """Write MIDRC-shaped guppy dumps describing the DICOM series in the lake
    (``<warehouse>/demo-guppy/<index>.json``), then ingest them like `--from-json`."""
    from cohortdb.synthetic.guppy import records_for_series
    from ingest.lake import part_files
    from ingest.sources.guppy.dump import read_dump
    from ingest.sources.guppy.ingest import ingest_indices
    from ingest.sources.guppy.json_text import dumps

    files = [str(f) for f in part_files(settings.dicom_lake / "instances")]
    con = duckdb.connect()
    result = con.execute(SERIES_QUERY, {"files": files})
    columns = [d[0] for d in result.description]
    series = [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    con.close()
    dump_dir = settings.warehouse_dir / "demo-guppy"
    dump_dir.mkdir(parents=True, exist_ok=True)
    for index, records in records_for_series(series, seed=seed).items():
        (dump_dir / f"{index}.json").write_text(dumps(records), encoding="utf-8")
    reports = ingest_indices(
        settings, ["case", "imaging_study", "data_file"],
        lambda index: read_dump(dump_dir / f"{index}.json", index),
        commons="demo", warn=echo,
    )
    echo(", ".join(f"{r.rows} {r.index} records" for r in reports) + f" (guppy dumps in {dump_dir})")


DEMO_MARKER = ".cohortdb-demo"
"""In a warehouse directory the demo made (so it may add its synthetic data there again)."""


def check_demo_warehouse(settings: Settings) -> None:
    """Raise unless the warehouse directory is new, empty, or one the demo made.

    Raises:
        UserError: it holds something else (a user's warehouse would get synthetic data).
    """
    directory = settings.warehouse_dir
    if not directory.is_dir() or not any(directory.iterdir()):
        return
    if (directory / DEMO_MARKER).exists() or (directory / "demo-dicom").is_dir():  # (older demos: no marker)
        return
    raise UserError(f"{directory} is not a demo warehouse: the demo would add synthetic data to it; "
                    "give another --warehouse (or --force)")


def run_demo(settings: Settings, cohorts: Path, echo: Callable[[str], None] = print, *,
             force: bool = False) -> BuildOutcome:
    """Generate (once), ingest, load and build the demo warehouse in ``settings``' directory.

    ``force``: also into a directory the demo did not make.

    Raises:
        UserError: dbt is not installed, the directory is not a demo warehouse (unless ``force``),
            or the build failed (its problems are echoed first).
    """
    from cohortdb.synthetic.dicom import generate_corpus

    require_dbt()
    if not force:
        check_demo_warehouse(settings)
    make_warehouse_dir(settings)
    (settings.warehouse_dir / DEMO_MARKER).touch()
    corpus = settings.warehouse_dir / "demo-dicom"
    if not corpus.exists():
        echo(f"generating a synthetic DICOM corpus in {corpus} …")
        generate_corpus(corpus, n_crdx=300, n_ct_series=2, ct_slices=40, n_mr_series=2, mr_slices=20, seed=0)
    summary = ingest_dicom(settings, [corpus])
    echo(summary.line())
    ingest_linked_guppy(settings, echo=echo)
    built = build(settings, cohorts)
    echo(built.outcome.summary())
    if built.failed_at is not None:
        for line in built.outcome.report():
            echo(line)
        raise UserError(f"the demo's dbt build failed (kept in {built.failed_at})")
    return built.outcome
