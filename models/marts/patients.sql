-- One row per case (MIDRC's patient), from the commons' case records and from
-- the Patient IDs in DICOM headers (MIDRC de-identifies PatientID to the case id).
with

cases as (
    select * from {{ ref('stg_guppy__cases') }}
),

studies as (
    select * from {{ ref('imaging_studies') }}
),

per_case as (
    select
        case_id,
        count(*) as n_studies,
        sum(case when in_dicom then 1 else 0 end) as n_dicom_studies,
        sum(n_series) as n_series,
        sum(n_instances) as n_instances,
        min(study_date) as first_study_date,
        max(study_date) as last_study_date,
        min(sex) as study_sex,
        min(age_at_imaging) as first_age_at_imaging
    from studies
    where case_id is not null
    group by case_id
),

final as (
    select
        coalesce(cases.case_id, per_case.case_id) as case_id,
        cases.case_guid,
        cases.project_id,
        cases.case_id is not null as in_guppy,
        coalesce(per_case.n_dicom_studies, 0) > 0 as in_dicom,
        coalesce(cases.sex, per_case.study_sex) as sex,
        cases.race,
        cases.ethnicity,
        coalesce(cases.age_at_index, per_case.first_age_at_imaging) as age_at_index,
        cases.covid19_positive,
        cases.index_event,
        coalesce(per_case.n_studies, 0) as n_studies,
        coalesce(per_case.n_dicom_studies, 0) as n_dicom_studies,
        coalesce(per_case.n_series, 0) as n_series,
        coalesce(per_case.n_instances, 0) as n_instances,
        per_case.first_study_date,
        per_case.last_study_date
    from cases
    full outer join per_case
        on cases.case_id = per_case.case_id
)

select * from final
