-- One FHIR R4 ImagingStudy resource (JSON text) per study with DICOM headers,
-- as seed 002 builds them: identifier urn:dicom:uid / urn:oid:<Study UID>,
-- series with a DCM modality coding and a SNOMED CT bodySite (PS3.16 Annex L),
-- instances with their SOP Class and number. `started` is the study date only:
-- FHIR requires a time zone with a time, and DICOM headers rarely have one.
with

instances as (
    select * from {{ ref('stg_dicom__instances') }}
),

series as (
    select * from {{ ref('int_series_aggregated') }}
),

studies as (
    select * from {{ ref('imaging_studies') }} where in_dicom
),

body_sites as (
    select * from {{ ref('dicom_body_part_snomed') }}
),

instance_json as (
    select
        series_instance_uid,
        {{ ordered_list_agg(json_without_nulls(make_struct([
            ('uid', 'sop_instance_uid'),
            ('sopClass', make_struct([('system', "'urn:ietf:rfc:3986'"), ('code', "'urn:oid:' || sop_class_uid")])),
            ('number', 'instance_number'),
        ])), 'instance_number, sop_instance_uid') }} as instances
    from instances
    group by series_instance_uid
),

series_json as (
    select
        series.study_instance_uid,
        {{ ordered_list_agg(json_without_nulls(make_struct([
            ('uid', 'series.series_instance_uid'),
            ('number', 'series.series_number'),
            ('modality', make_struct([('system', "'http://dicom.nema.org/resources/ontology/DCM'"), ('code', 'series.modality')])),
            ('description', 'series.series_description'),
            ('numberOfInstances', 'series.n_instances'),
            ('bodySite', "case when body_sites.snomed_code is not null then " ~ make_struct([('system', "'http://snomed.info/sct'"), ('code', 'body_sites.snomed_code'), ('display', 'body_sites.snomed_display')]) ~ " end"),
            ('instance', 'instance_json.instances'),
        ])), 'series.series_number, series.series_instance_uid') }} as series
    from series
    inner join instance_json
        on series.series_instance_uid = instance_json.series_instance_uid
    left join body_sites
        on upper(series.body_part_examined) = body_sites.body_part_examined
    group by series.study_instance_uid
),

final as (
    select
        studies.study_uid,
        studies.case_id,
        {{ json_text(json_without_nulls(make_struct([
            ('resourceType', "'ImagingStudy'"),
            ('id', 'studies.study_uid'),
            ('identifier', '[' ~ make_struct([('system', "'urn:dicom:uid'"), ('value', "'urn:oid:' || studies.study_uid")]) ~ ']'),
            ('status', "'available'"),
            ('subject', make_struct([('type', "'Patient'"), ('identifier', make_struct([('system', "'urn:cohortdb:case_id'"), ('value', "coalesce(studies.case_id, 'unknown')")]))])),
            ('started', dbt.cast('studies.study_date', dbt.type_string())),
            ('numberOfSeries', 'studies.n_series'),
            ('numberOfInstances', 'studies.n_instances'),
            ('description', 'studies.study_description'),
            ('series', 'series_json.series'),
        ]))) }} as resource_json
    from studies
    inner join series_json
        on studies.study_uid = series_json.study_instance_uid
)

select * from final
