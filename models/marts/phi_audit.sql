-- Which attributes of the DICOM PS3.15 Basic Application Level Confidentiality
-- Profile are present, and non-empty, in the corpus: where (depth, tag paths,
-- modalities) and how often. Never the values themselves.
with

profile as (
    select * from {{ ref('dicom_basic_profile_attributes') }}
),

elements as (
    select * from {{ ref('stg_dicom__elements') }}
),

instances as (
    select file_id, coalesce(modality, '(none)') as modality from {{ ref('stg_dicom__instances') }}
),

corpus as (
    select count(*) as n_instances from instances
),

found as (
    select
        elements.tag,
        elements.file_id,
        elements.depth,
        elements.tag_path_pattern,
        instances.modality,
        (
            coalesce(elements.value_text, '') <> ''
            or coalesce(elements.value_length, 0) > 0
            or (elements.vr = 'SQ' and coalesce(elements.value_number, 0) > 0)
        ) as is_non_empty
    from elements
    inner join instances
        on elements.file_id = instances.file_id
    where elements.tag in (select tag from profile)
),

per_tag as (
    select
        tag,
        count(distinct file_id) as n_instances_present,
        count(distinct case when is_non_empty then file_id end) as n_instances_non_empty,
        count(*) as n_elements,
        min(depth) as min_depth,
        max(depth) as max_depth,
        {{ distinct_list_agg('modality') }} as modalities,
        {{ first_distinct_values('tag_path_pattern', 10) }} as tag_path_patterns
    from found
    group by tag
),

final as (
    select
        profile.tag,
        profile.tag_path,
        profile.keyword,
        profile.attribute_name,
        profile.basic_profile_action,
        coalesce(per_tag.n_instances_present, 0) > 0 as is_present,
        coalesce(per_tag.n_instances_present, 0) as n_instances_present,
        coalesce(per_tag.n_instances_non_empty, 0) as n_instances_non_empty,
        corpus.n_instances as n_instances_in_corpus,
        case when corpus.n_instances > 0
            then round(100.0 * coalesce(per_tag.n_instances_non_empty, 0) / corpus.n_instances, 2)
        end as pct_instances_non_empty,
        coalesce(per_tag.n_elements, 0) as n_elements,
        per_tag.min_depth,
        per_tag.max_depth,
        per_tag.modalities,
        per_tag.tag_path_patterns
    from profile
    cross join corpus
    left join per_tag
        on profile.tag = per_tag.tag
)

select * from final
