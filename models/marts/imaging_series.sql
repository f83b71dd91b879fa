-- One row per DICOM series we hold headers for, with its guppy data_file when
-- the commons lists it (MIDRC: one zip per series, keyed by Series Instance UID).
with

series as (
    select * from {{ ref('int_series_aggregated') }}
),

data_files as (
    select * from {{ ref('stg_guppy__data_files') }}
),

final as (
    select
        series.*,
        data_files.object_id,
        data_files.series_uid is not null as in_guppy,
        data_files.modality as guppy_modality,
        data_files.number_of_instances as guppy_number_of_instances
    from series
    left join data_files
        on series.series_instance_uid = data_files.series_uid
)

select * from final
