with

source as (
    select * from {{ source('guppy', 'guppy_case') }}
),

final as (
    select
        ---------- ids
        submitter_id as case_id,
        _case_id as case_guid,
        project_id,
        auth_resource_path,
        ---------- demographics
        sex,
        race,
        ethnicity,
        cast(age_at_index as {{ dbt.type_float() }}) as age_at_index,
        index_event,
        covid19_positive,
        zip as zip3,
        dataset_submitter_id,
        ---------- counts reported by the commons
        cast(_imaging_studies_count as {{ dbt.type_int() }}) as guppy_imaging_studies_count,
        cast(data_file_count as {{ dbt.type_int() }}) as guppy_data_file_count,
        ---------- ingestion
        _commons as commons,
        _ingested_at as ingested_at
    from source
)

select * from final
