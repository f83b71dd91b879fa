-- One row per item of imaging_study_annotations (guppy's nested list); items
-- differ in their keys (an mRALE score, or an auto-annotation), so most
-- columns are null for a given item. A table: the unnest is read by a model and
-- two tests, and is cheap to store.
{{ config(materialized='table') }}
with

-- The columns are listed: the BigQuery emulator loses a `select *` CTE's
-- columns behind the correlated UNNEST below.
studies as (
    select
        study_uid,
        submitter_id,
        _imaging_study_id,
        imaging_study_annotations
    from {{ source('guppy', 'guppy_imaging_study') }}
),

unnested as (
    select
        coalesce(studies.study_uid, studies.submitter_id) as study_uid,
        studies._imaging_study_id as imaging_study_id,
        {{ unnested_position('annotation_index') }} as annotation_index,
        annotation._annotation_id as annotation_id,
        annotation.annotation_method,
        annotation.annotator_id,
        annotation.midrc_mRALE_score as midrc_mrale_score,
        annotation.instance_uids
    from studies
    {{ unnest_with_position('studies', 'imaging_study_annotations', 'annotation', 'annotation_index') }}
),

final as (
    select
        {{ dbt.concat(['study_uid', "'/'", dbt.cast('annotation_index', dbt.type_string())]) }} as annotation_key,
        *
    from unnested
)

select * from final
