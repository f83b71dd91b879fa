-- One row per guppy data_file record, with whether its series' headers are here.
with

data_files as (
    select * from {{ ref('stg_guppy__data_files') }}
),

series as (
    select series_instance_uid, n_instances from {{ ref('int_series_aggregated') }}
),

final as (
    select
        data_files.*,
        series.series_instance_uid is not null as in_dicom,
        series.n_instances as dicom_n_instances
    from data_files
    left join series
        on data_files.series_uid = series.series_instance_uid
)

select * from final
