-- One row per DICOM study, from its series and instances.
with

instances as (
    select * from {{ ref('stg_dicom__instances') }}
),

series as (
    select * from {{ ref('int_series_aggregated') }}
),

from_instances as (
    select
        study_instance_uid,
        min(patient_id) as patient_id,
        min(patient_sex) as patient_sex,
        min(patient_age_years) as patient_age_years,
        min(study_date) as study_date,
        min(study_time) as study_time,
        min(accession_number) as accession_number,
        min(study_description) as study_description,
        min(series_date) as first_series_date,
        max(series_date) as last_series_date,
        count(*) as n_instances,
        {{ distinct_list_agg('modality') }} as modalities,
        {{ distinct_list_agg('body_part_examined') }} as body_parts_examined,
        {{ distinct_list_agg('manufacturer') }} as manufacturers,
        {{ distinct_list_agg('patient_id') }} as patient_ids
    from instances
    where study_instance_uid is not null
    group by study_instance_uid
),

series_counts as (
    select
        study_instance_uid,
        count(*) as n_series
    from series
    group by study_instance_uid
),

final as (
    select
        from_instances.*,
        coalesce(series_counts.n_series, 0) as n_series
    from from_instances
    left join series_counts
        on from_instances.study_instance_uid = series_counts.study_instance_uid
)

select * from final
