-- Per guppy imaging study: how it was annotated, and its mRALE score (MIDRC's
-- modified Radiographic Assessment of Lung Edema, 0–24; the highest if several).
with

annotations as (
    select * from {{ ref('stg_guppy__imaging_study_annotations') }}
),

aggregated as (
    select
        study_uid,
        count(*) as n_annotations,
        max(midrc_mrale_score) as midrc_mrale_score,
        {{ distinct_list_agg('annotation_method') }} as annotation_methods,
        {{ distinct_list_agg('annotator_id') }} as annotator_ids
    from annotations
    group by study_uid
)

select * from aggregated
