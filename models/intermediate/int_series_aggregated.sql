-- One row per DICOM series, from its (deduplicated) instances. Attributes that
-- should be constant in a series take the smallest value seen; ranges and
-- lists keep what varies.
with

instances as (
    select * from {{ ref('stg_dicom__instances') }}
),

aggregated as (
    select
        series_instance_uid,
        min(study_instance_uid) as study_instance_uid,
        min(patient_id) as patient_id,
        min(modality) as modality,
        min(sop_class_uid) as sop_class_uid,
        min(body_part_examined) as body_part_examined,
        min(series_description) as series_description,
        min(series_number) as series_number,
        min(series_date) as series_date,
        min(protocol_name) as protocol_name,
        min(manufacturer) as manufacturer,
        min(manufacturer_model_name) as manufacturer_model_name,
        min(institution_name) as institution_name,
        min(view_position) as view_position,
        count(*) as n_instances,
        count(distinct file_id) as n_files,
        min(instance_number) as first_instance_number,
        max(instance_number) as last_instance_number,
        min(pixel_rows) as pixel_rows,
        min(pixel_columns) as pixel_columns,
        min(slice_thickness) as slice_thickness,
        min(kvp) as kvp_min,
        max(kvp) as kvp_max,
        min(magnetic_field_strength) as magnetic_field_strength,
        {{ distinct_list_agg('transfer_syntax_uid') }} as transfer_syntax_uids,
        count(distinct study_instance_uid) as n_study_uids,
        min(ingested_at) as first_ingested_at
    from instances
    where series_instance_uid is not null
    group by series_instance_uid
)

select * from aggregated
