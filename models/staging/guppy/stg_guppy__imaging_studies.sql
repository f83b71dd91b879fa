-- One row per guppy imaging_study record. MIDRC copies case demographics onto
-- studies as one-item lists (`fn: set`); they become scalars here.
with

source as (
    select * from {{ source('guppy', 'guppy_imaging_study') }}
),

final as (
    select
        ---------- ids
        coalesce(study_uid, submitter_id) as study_uid,
        _imaging_study_id as imaging_study_id,
        submitter_id,
        {{ first_element('case_ids') }} as case_id,
        project_id,
        auth_resource_path,
        ---------- study
        study_description,
        study_modality as study_modalities,
        body_part_examined as body_parts_examined,
        cast(age_at_imaging as {{ dbt.type_float() }}) as age_at_imaging,
        cast(days_to_study as {{ dbt.type_float() }}) as days_to_study,
        cast(study_year as {{ dbt.type_int() }}) as study_year,
        days_from_study_to_pos_covid_test,
        days_from_study_to_neg_covid_test,
        loinc_code,
        loinc_long_common_name,
        loinc_method,
        loinc_system,
        ---------- demographics (from the case)
        {{ first_element('sex') }} as sex,
        {{ first_element('race') }} as race,
        {{ first_element('ethnicity') }} as ethnicity,
        cast({{ first_element('age_at_index') }} as {{ dbt.type_float() }}) as age_at_index,
        {{ first_element('covid19_positive') }} as covid19_positive,
        ---------- files
        object_id as object_ids,
        data_format as data_formats,
        ---------- ingestion
        _commons as commons,
        _ingested_at as ingested_at
    from source
)

select * from final
