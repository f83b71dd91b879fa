-- One FHIR R4 ImagingStudy resource (JSON text) per study, whether we hold its
-- DICOM headers or only the commons' record of it, as seed 002 builds them:
-- identifier urn:dicom:uid / urn:oid:<Study UID>, the study's modalities, its
-- LOINC procedure code (from the commons), series with a DCM modality coding
-- and a SNOMED CT bodySite (PS3.16 Annex L), instances with their SOP Class and
-- number. A study known only from the commons has no series: its headers were
-- never read. `started` is a dateTime when the headers give the study's date,
-- time and TimezoneOffsetFromUTC (FHIR requires a zone with a time), else the
-- study date alone.
with

instances as (
    select * from {{ ref('stg_dicom__instances') }}
),

series as (
    select * from {{ ref('int_series_aggregated') }}
),

studies as (
    select * from {{ ref('imaging_studies') }}
),

body_sites as (
    select * from {{ ref('dicom_body_part_snomed') }}
),

-- TimezoneOffsetFromUTC (0008,0201) as the headers write it: "-0500"
study_utc_offsets as (
    select
        instances.study_instance_uid,
        min(elements.value_text) as utc_offset
    from {{ ref('stg_dicom__elements') }} as elements
    inner join instances
        on elements.file_id = instances.file_id
    where elements.tag_path = '(0008,0201)'
        and length(elements.value_text) = 5
        and substr(elements.value_text, 1, 1) in ('+', '-')
    group by instances.study_instance_uid
),

study_modalities as (
    select distinct
        studies.study_uid,
        modality
    from studies
    {{ unnest_with_position('studies', 'modalities', 'modality', 'modality_index') }}
),

modality_json as (
    select
        study_uid,
        {{ ordered_list_agg(json_object_without_nulls([
            ('system', "'http://dicom.nema.org/resources/ontology/DCM'"),
            ('code', 'modality'),
        ]), 'modality') }} as modalities
    from study_modalities
    group by study_uid
),

instance_json as (
    select
        series_instance_uid,
        {{ ordered_list_agg(json_object_without_nulls([
            ('uid', 'sop_instance_uid'),
            ('sopClass', make_struct([('system', "'urn:ietf:rfc:3986'"), ('code', "'urn:oid:' || sop_class_uid")])),
            ('number', 'instance_number'),
        ]), 'instance_number, sop_instance_uid') }} as instances
    from instances
    group by series_instance_uid
),

series_json as (
    select
        series.study_instance_uid,
        {{ ordered_list_agg(json_object_without_nulls([
            ('uid', 'series.series_instance_uid'),
            ('number', 'series.series_number'),
            ('modality', make_struct([('system', "'http://dicom.nema.org/resources/ontology/DCM'"), ('code', 'series.modality')])),
            ('description', 'series.series_description'),
            ('numberOfInstances', 'series.n_instances'),
            ('bodySite', "case when body_sites.snomed_code is not null then " ~ make_struct([('system', "'http://snomed.info/sct'"), ('code', 'body_sites.snomed_code'), ('display', 'body_sites.snomed_display')]) ~ " end"),
            ('instance', 'instance_json.instances'),
        ]), 'series.series_number, series.series_instance_uid') }} as series
    from series
    inner join instance_json
        on series.series_instance_uid = instance_json.series_instance_uid
    left join body_sites
        on upper(series.body_part_examined) = body_sites.body_part_examined
    group by series.study_instance_uid
),

started as (
    select
        studies.study_uid,
        case
            when studies.study_time is not null and study_utc_offsets.utc_offset is not null
                then {{ dbt.cast('studies.study_date', dbt.type_string()) }}
                    || 'T' || {{ dbt.cast('studies.study_time', dbt.type_string()) }}
                    || substr(study_utc_offsets.utc_offset, 1, 3) || ':' || substr(study_utc_offsets.utc_offset, 4, 2)
            else {{ dbt.cast('studies.study_date', dbt.type_string()) }}
        end as started
    from studies
    left join study_utc_offsets
        on studies.study_uid = study_utc_offsets.study_instance_uid
),

final as (
    select
        studies.study_uid,
        studies.case_id,
        {{ json_text(json_object_without_nulls([
            ('resourceType', "'ImagingStudy'"),
            ('id', 'studies.study_uid'),
            ('identifier', '[' ~ make_struct([('system', "'urn:dicom:uid'"), ('value', "'urn:oid:' || studies.study_uid")]) ~ ']'),
            ('status', "'available'"),
            ('modality', 'modality_json.modalities'),
            ('subject', make_struct([('type', "'Patient'"), ('identifier', make_struct([('system', "'urn:cohortdb:case_id'"), ('value', "coalesce(studies.case_id, 'unknown')")]))])),
            ('started', 'started.started'),
            ('numberOfSeries', 'case when studies.in_dicom then studies.n_series else studies.n_guppy_series end'),
            ('numberOfInstances', 'case when studies.in_dicom then studies.n_instances end'),
            ('procedureCode', "case when studies.loinc_code is not null then [" ~ make_struct([('coding', '[' ~ make_struct([('system', "'http://loinc.org'"), ('code', 'studies.loinc_code'), ('display', 'studies.loinc_long_common_name')]) ~ ']'), ('text', 'studies.loinc_long_common_name')]) ~ "] end"),
            ('description', 'studies.study_description'),
            ('series', 'series_json.series'),
        ])) }} as resource_json
    from studies
    inner join started
        on studies.study_uid = started.study_uid
    left join modality_json
        on studies.study_uid = modality_json.study_uid
    left join series_json
        on studies.study_uid = series_json.study_instance_uid
)

select * from final
