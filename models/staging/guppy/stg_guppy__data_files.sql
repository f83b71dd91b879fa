with

source as (
    select * from {{ source('guppy', 'guppy_data_file') }}
),

final as (
    select
        ---------- ids
        object_id,
        _data_file_id as data_file_id,
        submitter_id,
        series_uid,
        {{ first_element('study_uid') }} as study_uid,
        {{ first_element('case_ids') }} as case_id,
        project_id,
        auth_resource_path,
        ---------- file
        file_name,
        cast(file_size as {{ dbt.type_bigint() }}) as file_size_bytes,
        md5sum,
        data_format,
        data_type,
        data_category,
        source_node,
        ---------- series (for image files)
        modality,
        manufacturer,
        manufacturer_model_name,
        series_description,
        cast(number_of_instances as {{ dbt.type_int() }}) as number_of_instances,
        ---------- ingestion
        _commons as commons,
        _ingested_at as ingested_at
    from source
)

select * from final
