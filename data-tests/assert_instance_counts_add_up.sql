-- Every deduplicated instance is counted once in imaging_studies and once in
-- imaging_series: the marts' totals equal dicom_instances' row count.
with

totals as (
    select
        (select count(*) from {{ ref('dicom_instances') }} where study_instance_uid is not null
            and series_instance_uid is not null) as instances,
        (select coalesce(sum(n_instances), 0) from {{ ref('imaging_series') }}) as series_instances,
        (select coalesce(sum(n_instances), 0) from {{ ref('imaging_studies') }}) as study_instances
)

select * from totals
where series_instances <> instances or study_instances <> instances
