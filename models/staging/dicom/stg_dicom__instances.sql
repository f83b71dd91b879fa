-- One row per SOP Instance UID: when the same instance was read from several
-- files (a copy, or a zip and its unpacked member) the most recently ingested
-- copy wins, then the smallest file_id, so the choice is deterministic.
-- A table, not a view: the de-duplication window over millions of instances
-- is computed once here, not once per model and test that reads it.
{{ config(materialized='table') }}
with

source as (
    select * from {{ source('dicom', 'dicom_instances') }}
),

ranked as (
    select
        *,
        row_number() over (
            partition by sop_instance_uid
            order by ingested_at desc, file_id
        ) as copy_rank,
        count(*) over (partition by sop_instance_uid) as n_copies
    from source
    where sop_instance_uid is not null
),

final as (
    select
        ---------- ids
        sop_instance_uid,
        file_id,
        series_instance_uid,
        study_instance_uid,
        patient_id,
        sop_class_uid,
        ---------- source
        source_path,
        source_member,
        file_size,
        file_mtime,
        transfer_syntax_uid,
        n_copies,
        ---------- study and series
        modality,
        study_date,
        study_time,
        series_date,
        series_time,
        acquisition_date,
        content_date,
        acquisition_datetime,
        accession_number,
        study_id,
        study_description,
        series_description,
        series_number,
        instance_number,
        body_part_examined,
        view_position,
        image_type,
        protocol_name,
        ---------- patient
        patient_sex,
        patient_age,
        {{ dicom_age_years('patient_age') }} as patient_age_years,
        patient_birth_date,
        ---------- equipment
        manufacturer,
        manufacturer_model_name,
        institution_name,
        station_name,
        software_versions,
        ---------- acquisition and image
        kvp,
        exposure,
        slice_thickness,
        spacing_between_slices,
        magnetic_field_strength,
        {{ adapter.quote('rows') }} as pixel_rows,  -- ROWS is reserved in GoogleSQL
        columns as pixel_columns,
        number_of_frames,
        bits_allocated,
        bits_stored,
        photometric_interpretation,
        pixel_spacing,
        imager_pixel_spacing,
        image_position_patient,
        image_orientation_patient,
        has_pixel_data,
        pixel_data_length,
        truncated,
        truncated_at,
        ---------- de-identification and character set
        patient_identity_removed,
        deidentification_method,
        specific_character_set,
        ---------- ingestion
        n_elements,
        max_depth,
        ingested_at
    from ranked
    where copy_rank = 1
)

select * from final
