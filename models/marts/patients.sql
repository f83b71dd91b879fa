-- One row per case (MIDRC's patient), from the commons' records (case, and the
-- imaging_study and data_file records naming the case) and from the Patient IDs
-- in DICOM headers (MIDRC de-identifies PatientID to the case id).
with

cases as (
    select * from {{ ref('stg_guppy__cases') }}
),

studies as (
    select * from {{ ref('imaging_studies') }}
),

guppy_studies as (
    select case_id, age_at_index from {{ ref('stg_guppy__imaging_studies') }}
),

guppy_files as (
    select case_id from {{ ref('stg_guppy__data_files') }}
),

named_by_guppy as (
    select case_id from guppy_studies where case_id is not null
    union distinct
    select case_id from guppy_files where case_id is not null
),

guppy_study_ages as (
    select
        case_id,
        min(age_at_index) as age_at_index
    from guppy_studies
    where case_id is not null
    group by case_id
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
        min(race) as study_race,
        min(ethnicity) as study_ethnicity,
        min(covid19_positive) as study_covid19_positive,
        min(age_at_imaging) as first_age_at_imaging
    from studies
    where case_id is not null
    group by case_id
),

all_cases as (
    select case_id from cases
    union distinct
    select case_id from named_by_guppy
    union distinct
    select case_id from per_case
),

final as (
    select
        all_cases.case_id,
        cases.case_guid,
        cases.project_id,
        named_by_guppy.case_id is not null or cases.case_id is not null as in_guppy,
        cases.case_id is not null as has_case_record,
        coalesce(per_case.n_dicom_studies, 0) > 0 as in_dicom,
        coalesce(cases.sex, per_case.study_sex) as sex,
        coalesce(cases.race, per_case.study_race) as race,
        coalesce(cases.ethnicity, per_case.study_ethnicity) as ethnicity,
        coalesce(cases.age_at_index, guppy_study_ages.age_at_index) as age_at_index,
        per_case.first_age_at_imaging,
        coalesce(cases.covid19_positive, per_case.study_covid19_positive) as covid19_positive,
        cases.index_event,
        coalesce(per_case.n_studies, 0) as n_studies,
        coalesce(per_case.n_dicom_studies, 0) as n_dicom_studies,
        coalesce(per_case.n_series, 0) as n_series,
        coalesce(per_case.n_instances, 0) as n_instances,
        per_case.first_study_date,
        per_case.last_study_date
    from all_cases
    left join cases
        on all_cases.case_id = cases.case_id
    left join named_by_guppy
        on all_cases.case_id = named_by_guppy.case_id
    left join guppy_study_ages
        on all_cases.case_id = guppy_study_ages.case_id
    left join per_case
        on all_cases.case_id = per_case.case_id
)

select * from final
