-- One row per imaging study, whether described by the commons (guppy), by
-- DICOM headers we hold, or both, joined on the Study Instance UID.
with

guppy_studies as (
    select * from {{ ref('stg_guppy__imaging_studies') }}
),

dicom_studies as (
    select * from {{ ref('int_studies_aggregated') }}
),

annotations as (
    select * from {{ ref('int_annotations_aggregated') }}
),

data_files as (
    select * from {{ ref('int_data_files_aggregated') }}
),

joined as (
    select
        ---------- ids
        coalesce(guppy_studies.study_uid, dicom_studies.study_instance_uid) as study_uid,
        coalesce(guppy_studies.case_id, dicom_studies.patient_id) as case_id,
        guppy_studies.imaging_study_id,
        guppy_studies.project_id,
        dicom_studies.accession_number,
        ---------- provenance
        guppy_studies.study_uid is not null as in_guppy,
        dicom_studies.study_instance_uid is not null as in_dicom,
        ---------- demographics (the commons first, then the headers)
        coalesce(
            guppy_studies.sex,
            case dicom_studies.patient_sex when 'M' then 'Male' when 'F' then 'Female' end
        ) as sex,
        guppy_studies.race,
        guppy_studies.ethnicity,
        guppy_studies.covid19_positive,
        guppy_studies.age_at_index,
        coalesce(guppy_studies.age_at_imaging, dicom_studies.patient_age_years) as age_at_imaging,
        ---------- study
        coalesce(dicom_studies.study_description, guppy_studies.study_description) as study_description,
        coalesce(dicom_studies.modalities, guppy_studies.study_modalities) as modalities,
        coalesce(dicom_studies.body_parts_examined, guppy_studies.body_parts_examined) as body_parts_examined,
        guppy_studies.study_modalities as guppy_modalities,
        guppy_studies.body_parts_examined as guppy_body_parts_examined,
        dicom_studies.modalities as dicom_modalities,
        dicom_studies.body_parts_examined as dicom_body_parts_examined,
        guppy_studies.loinc_code,
        guppy_studies.loinc_long_common_name,
        guppy_studies.loinc_system,
        guppy_studies.days_to_study,
        guppy_studies.days_from_study_to_pos_covid_test,
        ---------- dates
        dicom_studies.study_date,
        dicom_studies.study_time,
        coalesce(guppy_studies.study_year, {{ dbt.cast('extract(year from dicom_studies.study_date)', dbt.type_int()) }}) as study_year,
        dicom_studies.first_series_date,
        dicom_studies.last_series_date,
        ---------- counts and equipment (headers)
        coalesce(dicom_studies.n_series, 0) as n_series,
        coalesce(dicom_studies.n_instances, 0) as n_instances,
        dicom_studies.manufacturers,
        ---------- annotations (commons)
        coalesce(annotations.n_annotations, 0) as n_annotations,
        annotations.midrc_mrale_score,
        annotations.annotation_methods,
        ---------- files (commons)
        coalesce(data_files.n_data_files, 0) as n_data_files,
        data_files.n_guppy_series,
        data_files.object_ids
    from guppy_studies
    full outer join dicom_studies
        on guppy_studies.study_uid = dicom_studies.study_instance_uid
    left join annotations
        on coalesce(guppy_studies.study_uid, dicom_studies.study_instance_uid) = annotations.study_uid
    left join data_files
        on coalesce(guppy_studies.study_uid, dicom_studies.study_instance_uid) = data_files.study_uid
)

select * from joined
