-- Per study UID: the guppy data_file records that belong to it.
with

data_files as (
    select * from {{ ref('stg_guppy__data_files') }}
),

aggregated as (
    select
        study_uid,
        count(*) as n_data_files,
        count(distinct case when data_type = 'DICOM' then series_uid end) as n_guppy_series,
        sum(file_size_bytes) as data_files_bytes,
        {{ distinct_list_agg('object_id') }} as object_ids
    from data_files
    where study_uid is not null
    group by study_uid
)

select * from aggregated
