"""A warehouse lake at scale, written directly as Parquet (no DICOM files are written).

Guppy ``imaging_study`` / ``case`` / ``data_file`` records and ``dicom/instances``
rows (the INSTANCES schema) whose modality / body part / manufacturer / model /
series and study descriptions are sampled from the real IDC index shipped by
``idc-index-data`` (reweighted to a MIDRC-like modality mix). ``dicom/elements``
holds ~20 elements for 1 % of the instances, so tag_catalog / phi_audit run on
a modest table. DuckDB writes it in SQL, part by part; the guppy values come
from the pools of :mod:`cohortdb.synthetic.guppy` (written into the SQL as
literals), so the lake and the smaller generators agree on them.

Shape of the data (all deterministic, from hashes of row numbers):

* study ``s`` of a universe of ``U = ceil(size * 20 / 19)``: ``s % 20 == 0`` has
  DICOM headers only, ``s % 20 == 1`` a guppy record only, the rest both;
* 2–3 studies per case (case ``(2 s) // 5``); demographics per case;
* CR/DX/MG studies: 1–3 series of 1–3 instances; CT/MR/PT: 2–5 series of
  1–4 instances; one guppy data_file per series;
* 1 guppy study in 15 disagrees with its headers on modality (CR ↔ DX, CT ↔ MR);
* half the studies carry imaging_study_annotations (mRALE score 70 %,
  auto-annotation 60 %), as in seed 000; unlike the record generators, the
  lake plants no cases without ethnicity and no high scores the day after a
  positive test;
* a case's index event (its first COVID-19 test) falls in the COVID-19 era and
  its studies 0–59 days after it (``days_to_study``); its COVID-19 tests follow
  its status, as the record generators': a ``Yes`` case's first test positive
  (and one case in 3 a positive retest), a ``No`` case's negative, none else;
* the LOINC procedure is the generic one of the study's modality and body
  region (:data:`cohortdb.synthetic.guppy.REGION_LOINC`), none for other regions.

Needs ``idc-index-data`` (the ``bench`` extra). :data:`GENERATOR_VERSION` changes
whenever the output does, so that a cached lake is known to be stale.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from cohortdb.synthetic import guppy
from cohortdb.warehouse.guppy_fields import DECLARED, duckdb_type
from ingest.dicom.schema import ELEMENTS, INSTANCES
from ingest.lake import write_parquet

GENERATOR_VERSION = 4
"""Bumped whenever the lake written for a size changes."""
STATE_FILE = Path("_state") / "bench.json"
"""Below the lake: the generator version and row counts of the last generation."""
STUDIES_PER_PART = 170_000
"""Universe studies per part file: about 1M instance rows, 430k data_file rows."""

MODALITY_SHARES = {"CR": 0.30, "DX": 0.28, "CT": 0.25, "MR": 0.08, "MG": 0.03,
                   "PT": 0.02, "US": 0.02, "NM": 0.01, "XA": 0.01}
"""A MIDRC-like modality mix (IDC itself is mostly CT/MR/SM/SR)."""
SLOTS = 100_000
"""Equipment slots, shared out by modality share and IDC series count; a study picks one by hash."""
COMMONS = "https://data.midrc.org"
INGESTED_AT = "2025-01-15 12:00:00+00"
"""The ``_commons`` and ``_ingested_at`` of every guppy row."""

# --------------------------------------------------------------------------- SQL from the guppy pools

def _text(value: str | None) -> str:
    """A SQL string literal (or null)."""
    return "null" if value is None else "'" + value.replace("'", "''") + "'"


def _texts(values: Iterable[str]) -> str:
    """A SQL list literal of strings."""
    return "[" + ", ".join(map(_text, values)) + "]"


def _weighted(key: str, salt: int, pool: Mapping[str, int]) -> str:
    """SQL picking a value of a weighted pool (shares in percent) by a hash of ``key``."""
    assert sum(pool.values()) == 100, pool
    bound, arms = 0, []
    for value, share in list(pool.items())[:-1]:
        bound += share
        arms.append(f"when h({key}, {salt}, 100) < {bound} then {_text(value)}")
    return f"case {' '.join(arms)} else {_text(list(pool)[-1])} end"


def _mapped(expression: str, mapping: Mapping[str, str], otherwise: str) -> str:
    """SQL mapping the values of ``expression`` through ``mapping``; ``otherwise`` SQL for the rest."""
    arms = " ".join(f"when {_text(key)} then {_text(value)}" for key, value in mapping.items())
    return f"case {expression} {arms} else {otherwise} end"


def _loinc_values() -> str:
    """:data:`cohortdb.synthetic.guppy.REGION_LOINC` as a SQL ``values`` list."""
    return ", ".join(f"({_text(modality)}, {_text(region)}, {', '.join(map(_text, fields))})"
                     for (modality, region), fields in guppy.REGION_LOINC.items())


# --------------------------------------------------------------------------- generation

def idc_index_path() -> Path:
    """The Parquet IDC series index shipped by idc-index-data.

    Raises:
        ModuleNotFoundError: idc-index-data is not installed (its message says how to install it).
    """
    try:
        import idc_index_data
    except ImportError as error:
        raise ModuleNotFoundError("idc-index-data is not installed: pip install 'cohortdb[bench]'") from error
    return Path(idc_index_data.IDC_INDEX_PARQUET_FILEPATH)


def prepare_generator(con: duckdb.DuckDBPyConnection) -> int:
    """Create the sampling tables (``equipment`` slots from IDC) and SQL macros.

    Returns:
        The number of equipment slots (a study picks ``hash % slots``).
    """
    con.execute("create or replace macro h(x, salt, n) as (hash(x, salt) % n)::bigint")
    con.execute("""create or replace macro uuid_of(x) as (
        substr(md5(x), 1, 8) || '-' || substr(md5(x), 9, 4) || '-4' || substr(md5(x), 14, 3)
        || '-a' || substr(md5(x), 18, 3) || '-' || substr(md5(x), 21, 12))""")
    # A case's demographics and project, from its number c (shared by every table).
    con.execute(f"""create or replace macro case_id_of(c) as
        '{guppy.CASE_SITE}-' || lpad(c::varchar, {guppy.CASE_ID_DIGITS}, '0')""")
    projects = guppy.PROJECTS
    con.execute(f"create or replace macro case_project(c) as {_texts(projects)}[1 + h(c, 24, {len(projects)})]")
    con.execute(f"""create or replace macro case_auth_path(c) as
        {_texts(map(guppy.auth_resource_path, projects))}[1 + h(c, 24, {len(projects)})]""")
    con.execute(f"create or replace macro case_sex(c) as {_weighted('c', 20, guppy.SEXES)}")
    con.execute(f"create or replace macro case_age(c) as {guppy.AGES.start} + h(c, 21, {len(guppy.AGES)})")
    con.execute(f"create or replace macro case_race(c) as {_weighted('c', 31, guppy.RACES)}")
    con.execute(f"create or replace macro case_ethnicity(c) as {_weighted('c', 32, guppy.ETHNICITIES)}")
    con.execute(f"create or replace macro case_covid(c) as {_weighted('c', 33, guppy.COVID)}")
    shares = ", ".join(f"('{m}', {w})" for m, w in MODALITY_SHARES.items())
    # One row per real (modality, body part, manufacturer, model), with the
    # series and study descriptions IDC has for it (most frequent first).
    con.execute(f"""
        create or replace table equipment_all as
        with idc as (
            select Modality as modality, nullif(upper(trim(BodyPartExamined)), '') as body_part,
                   nullif(trim(Manufacturer), '') as manufacturer,
                   nullif(trim(ManufacturerModelName), '') as model,
                   nullif(trim(SeriesDescription), '') as series_description,
                   nullif(trim(StudyDescription), '') as study_description
            from read_parquet('{idc_index_path()}')
            where Modality in (select m from (values {shares}) v(m, w))
        ),
        descriptions as (
            select modality, body_part, manufacturer, model, series_description, count(*) as n
            from idc group by all
        ),
        study_descriptions as (
            select modality, body_part, manufacturer, model, study_description, count(*) as n
            from idc group by all
        )
        select d.modality, d.body_part, d.manufacturer, d.model, sum(d.n) as n_series,
               list(d.series_description order by d.n desc, d.series_description)
                   filter (where d.series_description is not null) as series_descriptions,
               (select list(sd.study_description order by sd.n desc, sd.study_description)[1:5]
                from study_descriptions sd
                where sd.modality = d.modality and sd.body_part is not distinct from d.body_part
                  and sd.manufacturer is not distinct from d.manufacturer
                  and sd.model is not distinct from d.model and sd.study_description is not null) as study_descriptions
        from descriptions d group by d.modality, d.body_part, d.manufacturer, d.model
    """)
    con.execute(f"""
        create or replace table equipment as
        with weighted as (
            select e.*,
                   round({SLOTS} * v.w * e.n_series / sum(e.n_series) over (partition by e.modality))::bigint as slots
            from equipment_all e join (values {shares}) v(m, w) on e.modality = v.m
        ),
        expanded as (
            select w.* exclude (slots, series_descriptions),
                   coalesce(series_descriptions[1:20], []) as series_descriptions
            from weighted w, range(w.slots) r(i)
            where w.slots > 0
        )
        select (row_number() over (order by modality, body_part, manufacturer, model) - 1) as slot, *
        from expanded
    """)
    return con.execute("select count(*) from equipment").fetchall()[0][0]


def series_sql(lo: int, hi: int, slots: int) -> str:
    """One row per series of universe studies ``[lo, hi)``, with study attributes."""
    return f"""
        with studies as (
            select s,
                   s % 20 = 0 as dicom_only,
                   s % 20 = 1 as guppy_only,
                   (s * 2) // 5 as c,
                   '1.2.826.0.1.3680043.8.498.1.' || s || '.' || h(s, 1, 1000000000) as study_uid,
                   h(s, 26, {len(guppy.DAYS_TO_STUDY)})::integer as days_to_study,
                   date '{guppy.FIRST_INDEX_DAY}' + cast(h((s * 2) // 5, 2, {guppy.INDEX_DAYS}) as integer)
                       + days_to_study as study_date,
                   make_time(h(s, 3, 14)::bigint + 7, h(s, 4, 60)::bigint, h(s, 5, 60)::double) as study_time,
                   e.modality, e.body_part, e.manufacturer, e.model, e.series_descriptions,
                   coalesce(e.study_descriptions[1 + h(s, 6, greatest(len(e.study_descriptions), 1))],
                            e.modality || ' ' || coalesce(e.body_part, '')) as study_description,
                   case when e.modality in ('CT', 'MR', 'PT') then 2 + h(s, 7, 4) else 1 + h(s, 7, 3) end as n_series
            from range({lo}, {hi}) t(s)
            join equipment e on e.slot = h(s, 8, {slots})
        ),
        cases as (
            select studies.*,
                   case_id_of(c) as case_id,
                   {_mapped('case_sex(c)', guppy.SEX_CODES, 'null')} as patient_sex,
                   case_age(c) as age_at_index
            from studies
        ),
        series as (
            select cases.*, unnest(range(n_series)) as k from cases
        )
        select series.*,
               s * 8 + k as series_key,
               study_uid || '.' || (k + 1) as series_uid,
               case when modality in ('CT', 'MR', 'PT') then 1 + h(s * 8 + k, 9, 4)
                    else 1 + h(s * 8 + k, 9, 3) end as n_instances,
               coalesce(series_descriptions[1 + h(s * 8 + k, 10, greatest(len(series_descriptions), 1))],
                        modality) as series_description,
               {_text(guppy.OBJECT_ID_PREFIX)} || uuid_of('object' || (s * 8 + k)) as object_id
        from series
    """


def instances_sql() -> str:
    """One row per instance of the ``series`` table, in INSTANCES' column order."""
    return """
        with inst as (select series.*, unnest(range(n_instances)) as i from series where not guppy_only),
        keyed as (select *, series_uid || '.' || (i + 1) as sop_uid, series_key * 8 + i as ikey from inst)
        select
            md5('file:' || sop_uid) as file_id,
            '/data/midrc/' || case_id || '/' || study_uid || '/' || series_uid || '.zip' as source_path,
            sop_uid || '.dcm' as source_member,
            100000 + h(ikey, 30, 20000000) as file_size,
            timestamptz '2024-06-01 00:00:00+00' + to_seconds(h(ikey, 31, 10000000)) as file_mtime,
            sop_uid as sop_instance_uid,
            case modality when 'CR' then '1.2.840.10008.5.1.4.1.1.1' when 'DX' then '1.2.840.10008.5.1.4.1.1.1.1'
                when 'CT' then '1.2.840.10008.5.1.4.1.1.2' when 'MR' then '1.2.840.10008.5.1.4.1.1.4'
                when 'PT' then '1.2.840.10008.5.1.4.1.1.128' when 'MG' then '1.2.840.10008.5.1.4.1.1.1.2'
                when 'US' then '1.2.840.10008.5.1.4.1.1.6.1' when 'NM' then '1.2.840.10008.5.1.4.1.1.20'
                when 'XA' then '1.2.840.10008.5.1.4.1.1.12.1' else '1.2.840.10008.5.1.4.1.1.7' end as sop_class_uid,
            series_uid as series_instance_uid,
            study_uid as study_instance_uid,
            case_id as patient_id,
            modality,
            case when h(ikey, 32, 10) < 8 then '1.2.840.10008.1.2.1'
                 when h(ikey, 32, 10) = 8 then '1.2.840.10008.1.2.4.90' else '1.2.840.10008.1.2.4.70' end
                as transfer_syntax_uid,
            ['ISO_IR 100'] as specific_character_set,
            study_date,
            study_time,
            study_date as series_date,
            study_time + to_seconds(60 * k) as series_time,
            study_date as acquisition_date,
            study_date as content_date,
            cast(null as timestamp) as acquisition_datetime,
            cast(null as date) as patient_birth_date,
            patient_sex,
            lpad(age_at_index::varchar, 3, '0') || 'Y' as patient_age,
            h(s, 23, 1000000)::varchar as accession_number,
            cast(null as varchar) as study_id,
            study_description,
            series_description,
            k + 1 as series_number,
            i + 1 as instance_number,
            body_part as body_part_examined,
            case when modality in ('CR', 'DX') then ['AP', 'PA', 'LL'][1 + h(series_key, 33, 3)] end as view_position,
            case when h(series_key, 34, 10) = 0 then ['DERIVED', 'SECONDARY'] else ['ORIGINAL', 'PRIMARY'] end
                as image_type,
            manufacturer,
            model as manufacturer_model_name,
            cast(null as varchar) as institution_name,
            cast(null as varchar) as station_name,
            [(1 + h(series_key, 35, 5))::varchar || '.' || h(series_key, 36, 10)::varchar] as software_versions,
            cast(null as varchar) as protocol_name,
            case when modality in ('CR', 'DX', 'CT', 'MG', 'XA') then 70.0 + h(series_key, 37, 60) end as kvp,
            case when modality in ('CR', 'DX', 'CT', 'MG', 'XA') then 1.0 + h(ikey, 38, 400) end as exposure,
            case when modality in ('CT', 'MR', 'PT') then [0.625, 1.25, 2.5, 5.0][1 + h(series_key, 39, 4)] end
                as slice_thickness,
            cast(null as double) as spacing_between_slices,
            case when modality = 'MR' then [1.5, 3.0][1 + h(series_key, 40, 2)] end as magnetic_field_strength,
            case when modality in ('CR', 'DX', 'MG') then 2000 + h(series_key, 41, 1500)
                 when modality in ('CT', 'PT') then 512 else 256 end as rows,
            case when modality in ('CR', 'DX', 'MG') then 2000 + h(series_key, 42, 1500)
                 when modality in ('CT', 'PT') then 512 else 256 end as columns,
            case when modality in ('US', 'XA') then 1 + h(ikey, 43, 60) end as number_of_frames,
            16 as bits_allocated,
            12 as bits_stored,
            case when modality = 'US' then 'RGB' else 'MONOCHROME2' end as photometric_interpretation,
            case when modality in ('CR', 'DX', 'MG') then [0.139, 0.139] else [0.7, 0.7] end as pixel_spacing,
            case when modality in ('CR', 'DX', 'MG') then [0.139, 0.139] end as imager_pixel_spacing,
            case when modality in ('CT', 'MR', 'PT') then [-250.0, -250.0, -1.25 * i] end as image_position_patient,
            case when modality in ('CT', 'MR', 'PT') then [1.0, 0.0, 0.0, 0.0, 1.0, 0.0] end
                as image_orientation_patient,
            'YES' as patient_identity_removed,
            ['RSNA Covid-19 Dataset Default'] as deidentification_method,
            true as has_pixel_data,
            case when transfer_syntax_uid = '1.2.840.10008.1.2.1' then rows * columns * 2 end as pixel_data_length,
            false as truncated,
            cast(null as bigint) as truncated_at,
            (110 + h(ikey, 44, 60))::integer as n_elements,
            1::smallint as max_depth,
            timestamptz '""" + INGESTED_AT + """' as ingested_at
        from keyed
    """


ELEMENT_TEMPLATE = [
    # (tag_path, keyword_path, tag, keyword, vr, depth, private_creator, value expression over `instances`)
    ("(0008,0016)", "SOPClassUID", "00080016", "SOPClassUID", "UI", 0, None, "sop_class_uid"),
    ("(0008,0018)", "SOPInstanceUID", "00080018", "SOPInstanceUID", "UI", 0, None, "sop_instance_uid"),
    ("(0008,0020)", "StudyDate", "00080020", "StudyDate", "DA", 0, None, "strftime(study_date, '%Y%m%d')"),
    ("(0008,0050)", "AccessionNumber", "00080050", "AccessionNumber", "SH", 0, None, "accession_number"),
    ("(0008,0060)", "Modality", "00080060", "Modality", "CS", 0, None, "modality"),
    ("(0008,0070)", "Manufacturer", "00080070", "Manufacturer", "LO", 0, None, "manufacturer"),
    ("(0008,1030)", "StudyDescription", "00081030", "StudyDescription", "LO", 0, None, "study_description"),
    ("(0008,103E)", "SeriesDescription", "0008103E", "SeriesDescription", "LO", 0, None, "series_description"),
    ("(0010,0010)", "PatientName", "00100010", "PatientName", "PN", 0, None, "patient_id"),
    ("(0010,0020)", "PatientID", "00100020", "PatientID", "LO", 0, None, "patient_id"),
    ("(0010,0040)", "PatientSex", "00100040", "PatientSex", "CS", 0, None, "patient_sex"),
    ("(0010,1010)", "PatientAge", "00101010", "PatientAge", "AS", 0, None, "patient_age"),
    ("(0012,0063)", "DeidentificationMethod", "00120063", "DeidentificationMethod", "LO", 0, None,
     "deidentification_method[1]"),
    ("(0012,0064)", "DeidentificationMethodCodeSequence", "00120064", "DeidentificationMethodCodeSequence",
     "SQ", 0, None, "null"),
    ("(0012,0064)__0__(0008,0100)", "DeidentificationMethodCodeSequence[0].CodeValue", "00080100",
     "CodeValue", "SH", 1, None, "'113100'"),
    ("(0012,0064)__0__(0008,0102)", "DeidentificationMethodCodeSequence[0].CodingSchemeDesignator",
     "00080102", "CodingSchemeDesignator", "SH", 1, None, "'DCM'"),
    ("(0013,0010)", "", "00130010", "", "LO", 0, None, "'CTP'"),
    ("(0013,1010)", "", "00131010", "", "LO", 0, "CTP", "'MIDRC-RICORD'"),
    ("(0018,0015)", "BodyPartExamined", "00180015", "BodyPartExamined", "CS", 0, None, "body_part_examined"),
    ("(0018,0060)", "KVP", "00180060", "KVP", "DS", 0, None, "cast(kvp as varchar)"),
    ("(0028,0010)", "Rows", "00280010", "Rows", "US", 0, None, "cast(rows as varchar)"),
    ("(0028,0011)", "Columns", "00280011", "Columns", "US", 0, None, "cast(columns as varchar)"),
]
"""The elements written for the 1 % of instances that get an elements table."""


def elements_sql() -> str:
    """~20 element rows for 1 % of the ``instances`` table, in ELEMENTS' column order."""
    def text(value: str | None) -> str:
        return "null" if value is None else "'" + value + "'"

    rows = ", ".join(
        f"({text(p)}, {text(kp)}, {text(t)}, {text(kw)}, {text(vr)}, {d}, {text(pc)}, {n})"
        for n, (p, kp, t, kw, vr, d, pc, _) in enumerate(ELEMENT_TEMPLATE)
    )
    values = " ".join(f"when {n} then {expr}" for n, (*_, expr) in enumerate(ELEMENT_TEMPLATE))
    return f"""
        with template(tag_path, keyword_path, tag, keyword, vr, depth, private_creator, n) as (values {rows}),
        sampled as (select * from instances where hash(sop_instance_uid, 50) % 100 = 0),
        joined as (
            select sampled.file_id, sampled.sop_instance_uid, template.*,
                   cast(case template.n {values} end as varchar) as value_text
            from sampled cross join template
        )
        select file_id, sop_instance_uid, tag_path, keyword_path, tag, keyword, vr,
               case when value_text is null and vr <> 'SQ' then 0 else 1 end::integer as vm,
               depth::smallint as depth, private_creator, value_text,
               case when value_text is null then [] else [value_text] end as "values",
               case when vr in ('DS', 'US', 'IS') then try_cast(value_text as double)
                    when vr = 'SQ' then 1.0 end as value_number,
               cast(null as bigint) as value_length, cast(null as bigint) as value_offset
        from joined
    """


def guppy_studies_sql() -> str:
    """One guppy imaging_study record per study of the ``series`` table with a guppy record.

    Values as :func:`cohortdb.synthetic.guppy.records_for_series` gives them: the
    modality swap, LOINC fields, test days and annotations follow its pools and shares.
    """
    swapped = _mapped("modality", guppy.SWAPPED_MODALITY, "modality")
    body_system = _mapped("upper(body_part)", guppy.BODY_SYSTEMS, "upper(body_part[1]) || lower(body_part[2:])")
    retest = guppy.RETEST_DAYS
    mrale = guppy.MRALE_SCORES
    return f"""
        with studies as (
            select s, c, case_id, study_uid, study_date, days_to_study, study_description, body_part,
                   patient_sex, age_at_index, n_series, modality,
                   case when h(s, 25, {guppy.ONE_IN['modality']}) = 0 then {swapped} else modality end
                       as guppy_modality,
                   {body_system} as body_system,
                   list(object_id order by k) as object_ids,
                   case_project(c) as project_id
            from series where not dicom_only
            group by all
        )
        select
            {_text(COMMONS)} as _commons,
            timestamptz '{INGESTED_AT}' as _ingested_at,
            json_object('submitter_id', study_uid, 'project_id', project_id)::varchar as _record,
            project_id,
            study_uid as submitter_id,
            case_auth_path(c) as auth_resource_path,
            uuid_of('study' || s) as _imaging_study_id,
            [case_id] as case_ids,
            study_uid,
            study_description,
            [guppy_modality] as study_modality,
            case when body_part is null then [] else [body_part] end as body_part_examined,
            age_at_index::double as age_at_imaging,
            days_to_study::double as days_to_study,
            year(study_date)::bigint as study_year,
            case when case_covid(c) = 'Yes' then
                case when h(c, 27, {guppy.ONE_IN['retest']}) = 0
                     then [-days_to_study, {retest.start} + h(c, 28, {len(retest)}) - days_to_study]
                     else [-days_to_study] end end as days_from_study_to_pos_covid_test,
            case when case_covid(c) = 'No' then [-days_to_study] end as days_from_study_to_neg_covid_test,
            loinc.code as loinc_code,
            loinc.long_common_name as loinc_long_common_name,
            coalesce(loinc.method, studies.modality) as loinc_method,
            coalesce(loinc.system, body_system) as loinc_system,
            [case_sex(c)] as sex,
            [case_race(c)] as race,
            [case_ethnicity(c)] as ethnicity,
            [age_at_index::double] as age_at_index,
            [case_covid(c)] as covid19_positive,
            object_ids as object_id,
            ['DCM'] as data_format,
            nullif(
                case when h(s, 34, {guppy.ONE_IN['annotated']}) = 0 then list_concat(
                    case when h(s, 35, 100) < {guppy.MRALE_PERCENT} then [{{'_annotation_id': uuid_of('mrale' || s),
                        'annotation_method': null::varchar, 'annotation_name': null::varchar,
                        'annotator_id': null::varchar, 'instance_uids': null::varchar[],
                        'midrc_mRALE_score': {mrale.start} + h(s, 36, {len(mrale)}),
                        'airspace_disease_grading': null::varchar, 'class_covid19_pneumonia': null::varchar}}]
                        else [] end,
                    case when h(s, 37, 100) < {guppy.AUTO_ANNOTATION_PERCENT} then [{{
                        '_annotation_id': uuid_of('auto' || s),
                        'annotation_method': {_text(guppy.AUTO_ANNOTATION['annotation_method'])},
                        'annotation_name': null::varchar,
                        'annotator_id': {_text(guppy.AUTO_ANNOTATION['annotator_id'])},
                        'instance_uids': [study_uid || '.1.1'],
                        'midrc_mRALE_score': null::bigint, 'airspace_disease_grading': null::varchar,
                        'class_covid19_pneumonia': null::varchar}}] else [] end) end,
                []) as imaging_study_annotations
        from studies
        left join (values {_loinc_values()}) loinc(modality, region, code, long_common_name, method, system)
            on loinc.modality = studies.modality and loinc.region = studies.body_system
    """


def guppy_data_files_sql() -> str:
    """One guppy data_file record (a series zip) per series of a study with a guppy record."""
    return f"""
        select
            {_text(COMMONS)} as _commons,
            timestamptz '{INGESTED_AT}' as _ingested_at,
            json_object('submitter_id', series_uid, 'object_id', object_id)::varchar as _record,
            case_project(c) as project_id,
            series_uid as submitter_id,
            case_auth_path(c) as auth_resource_path,
            uuid_of('file' || series_key) as _data_file_id,
            object_id,
            series_uid,
            [study_uid] as study_uid,
            [case_id] as case_ids,
            case_id || '/' || study_uid || '/' || series_uid || '.zip' as file_name,
            n_instances * (500000 + h(series_key, 45, 8500000)) as file_size,
            md5('md5' || series_key) as md5sum,
            'DCM' as data_format,
            'DICOM' as data_type,
            modality as data_category,
            lower(modality) || '_series_file' as source_node,
            modality,
            manufacturer,
            model as manufacturer_model_name,
            series_description,
            n_instances as number_of_instances
        from series where not dicom_only
    """


def guppy_cases_sql(universe: int) -> str:
    """One guppy case record per case (every case has at least one guppy study)."""
    return f"""
        with per_case as (
            select (s * 2) // 5 as c, count(*) filter (where s % 20 <> 0) as n_studies
            from range({universe}) t(s) group by c
        )
        select
            {_text(COMMONS)} as _commons,
            timestamptz '{INGESTED_AT}' as _ingested_at,
            json_object('submitter_id', case_id_of(c))::varchar as _record,
            case_project(c) as project_id,
            case_id_of(c) as submitter_id,
            case_auth_path(c) as auth_resource_path,
            uuid_of('case' || c) as _case_id,
            case_sex(c) as sex,
            case_race(c) as race,
            case_ethnicity(c) as ethnicity,
            case_age(c)::double as age_at_index,
            {_text(guppy.INDEX_EVENT)} as index_event,
            case_covid(c) as covid19_positive,
            (100 + h(c, 46, 900))::varchar as zip,
            {_text(guppy.DATASET)} as dataset_submitter_id,
            n_studies as _imaging_studies_count,
            cast(null as bigint) as data_file_count,
            cast(null as varchar[]) as object_id,
            cast(null as {_annotation_type()}[]) as imaging_study_annotations
        from per_case order by c
    """


def _annotation_type() -> str:
    return duckdb_type(DECLARED["case"].field("imaging_study_annotations").type.value_type)


def write_part(con: duckdb.DuckDBPyConnection, sql: str, schema: pa.Schema, path: Path) -> int:
    """Run ``sql``, cast the result to the lake ``schema`` exactly, write it atomically."""
    table = con.execute(sql).to_arrow_table()
    table = table.select(schema.names).cast(schema)
    write_parquet(table, path)
    return table.num_rows


def generate_lake(warehouse: Path, studies: int) -> dict[str, int]:
    """Write the lake of a warehouse with ``studies`` guppy imaging_study records (replacing any).

    Returns:
        Rows written per table (``instances``, ``elements``, ``imaging_study``,
        ``data_file``, ``case``); :func:`lake_state` reads them back later.
    """
    lake = warehouse / "lake"
    if lake.exists():
        shutil.rmtree(lake)
    universe = math.ceil(studies * 20 / 19)
    con = duckdb.connect()
    con.execute("set enable_progress_bar = false")
    slots = prepare_generator(con)
    counts = dict.fromkeys(["instances", "elements", "imaging_study", "data_file", "case"], 0)
    for part, lo in enumerate(range(0, universe, STUDIES_PER_PART)):
        hi = min(lo + STUDIES_PER_PART, universe)
        con.execute(f"create or replace temp table series as {series_sql(lo, hi, slots)}")
        con.execute(f"create or replace temp table instances as {instances_sql()}")
        name = f"bench-{part:04d}.parquet"
        counts["instances"] += write_part(con, "select * from instances", INSTANCES,
                                          lake / "dicom" / "instances" / name)
        counts["elements"] += write_part(con, elements_sql(), ELEMENTS, lake / "dicom" / "elements" / name)
        counts["imaging_study"] += write_part(con, guppy_studies_sql(), DECLARED["imaging_study"],
                                              lake / "guppy" / "imaging_study" / name)
        counts["data_file"] += write_part(con, guppy_data_files_sql(), DECLARED["data_file"],
                                          lake / "guppy" / "data_file" / name)
    counts["case"] = write_part(con, guppy_cases_sql(universe), DECLARED["case"],
                                lake / "guppy" / "case" / "bench-0000.parquet")
    con.close()
    state = lake / STATE_FILE
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_text(json.dumps({"version": GENERATOR_VERSION, "counts": counts}))
    return counts


def lake_state(warehouse: Path) -> tuple[int, dict[str, int]] | None:
    """(generator version, rows per table) of the lake last generated in ``warehouse``; None if none was."""
    state = warehouse / "lake" / STATE_FILE
    if not state.exists():
        return None
    meta = json.loads(state.read_text())
    return meta["version"], meta["counts"]

