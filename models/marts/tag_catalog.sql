-- The data dictionary of the corpus: every tag path pattern seen (item indices
-- as `*`), how many instances carry it, by modality, its value range (item
-- counts for sequences), and a few example values.
-- Examples are withheld for attributes of the PS3.15 Basic Profile and for
-- private elements, which may hold identifying data.
with

elements as (
    select * from {{ ref('stg_dicom__elements') }}
),

instances as (
    select file_id, coalesce(modality, '(none)') as modality from {{ ref('stg_dicom__instances') }}
),

profile as (
    select tag from {{ ref('dicom_basic_profile_attributes') }}
),

tagged as (
    select
        elements.*,
        instances.modality,
        profile.tag is not null or elements.is_private as is_sensitive
    from elements
    inner join instances
        on elements.file_id = instances.file_id
    left join profile
        on elements.tag = profile.tag
),

per_modality as (
    select
        tag_path_pattern,
        modality,
        count(distinct file_id) as n_instances
    from tagged
    group by tag_path_pattern, modality
),

by_modality as (
    select
        tag_path_pattern,
        {{ ordered_list_agg(make_struct([('modality', 'modality'), ('n_instances', 'n_instances')]),
                            'n_instances desc, modality') }} as instances_by_modality
    from per_modality
    group by tag_path_pattern
),

per_pattern as (
    select
        tag_path_pattern,
        min(keyword_path_pattern) as keyword_path_pattern,
        min(tag) as tag,
        min(keyword) as keyword,
        min(vr) as vr,
        count(distinct vr) as n_vrs,
        min(depth) as depth,
        min(private_creator) as private_creator,
        max(case when is_sensitive then 1 else 0 end) = 1 as is_sensitive,
        count(distinct file_id) as n_instances,
        count(*) as n_elements,
        count(distinct value_text) as n_distinct_values,
        -- a sequence's value_number is its item count: kept apart from values
        min(case when vr <> 'SQ' then value_number end) as min_value_number,
        max(case when vr <> 'SQ' then value_number end) as max_value_number,
        min(case when vr = 'SQ' then value_number end) as min_items,
        max(case when vr = 'SQ' then value_number end) as max_items,
        {{ first_distinct_values('case when not is_sensitive then value_text end', 5) }} as example_values
    from tagged
    group by tag_path_pattern
),

final as (
    select
        per_pattern.*,
        by_modality.instances_by_modality
    from per_pattern
    inner join by_modality
        on per_pattern.tag_path_pattern = by_modality.tag_path_pattern
)

select * from final
