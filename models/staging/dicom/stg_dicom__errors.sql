with

source as (
    select * from {{ source('dicom', 'dicom_errors') }}
),

final as (
    select
        source_path,
        source_member,
        error_type,
        severity,
        message as error_message,
        ingested_at
    from source
)

select * from final
