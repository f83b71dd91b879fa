-- Where the commons (guppy) and the DICOM headers disagree, one row per study
-- and check: studies on one side only, and differing modality, body part,
-- patient/case id or series count. Values are shown as sorted comma lists.
with

studies as (
    select * from {{ ref('imaging_studies') }}
),

dicom_patients as (
    select study_instance_uid, patient_ids from {{ ref('int_studies_aggregated') }}
),

compared as (
    select
        studies.study_uid,
        studies.case_id,
        studies.in_guppy,
        studies.in_dicom,
        {{ sorted_list_text('studies.guppy_modalities') }} as guppy_modalities,
        {{ sorted_list_text('studies.dicom_modalities') }} as dicom_modalities,
        {{ sorted_list_text('studies.guppy_body_parts_examined') }} as guppy_body_parts,
        {{ sorted_list_text('studies.dicom_body_parts_examined') }} as dicom_body_parts,
        {{ sorted_list_text('dicom_patients.patient_ids') }} as dicom_patient_ids,
        {{ dbt.cast('studies.n_guppy_series', dbt.type_string()) }} as guppy_series,
        {{ dbt.cast('studies.n_series', dbt.type_string()) }} as dicom_series
    from studies
    left join dicom_patients
        on studies.study_uid = dicom_patients.study_instance_uid
),

checks as (
    select study_uid, case_id, 'missing_dicom_headers' as check_name,
        'study listed' as guppy_value, cast(null as {{ dbt.type_string() }}) as dicom_value
    from compared where in_guppy and not in_dicom
    union all
    select study_uid, case_id, 'missing_guppy_record',
        cast(null as {{ dbt.type_string() }}), 'headers present'
    from compared where in_dicom and not in_guppy
    union all
    select study_uid, case_id, 'modality', guppy_modalities, dicom_modalities
    from compared where in_guppy and in_dicom and guppy_modalities <> dicom_modalities
    union all
    select study_uid, case_id, 'body_part_examined', guppy_body_parts, dicom_body_parts
    from compared
    where in_guppy and in_dicom and guppy_body_parts <> '' and dicom_body_parts <> ''
        and upper(guppy_body_parts) <> upper(dicom_body_parts)
    union all
    select study_uid, case_id, 'patient_id', case_id, dicom_patient_ids
    from compared where in_guppy and in_dicom and case_id <> dicom_patient_ids
    union all
    select study_uid, case_id, 'series_count', guppy_series, dicom_series
    from compared where in_guppy and in_dicom and guppy_series <> dicom_series
),

final as (
    select
        {{ dbt.concat(['study_uid', "'|'", 'check_name']) }} as reconciliation_id,
        *
    from checks
)

select * from final
