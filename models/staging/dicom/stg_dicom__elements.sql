-- Every element of every file (sequence items included), with the tag path
-- pattern: item indices replaced by `*`, so (0012,0064)__0__(0008,0100) and
-- (0012,0064)__3__(0008,0100) share the pattern (0012,0064)__*__(0008,0100).
with

source as (
    select * from {{ source('dicom', 'dicom_elements') }}
),

final as (
    select
        ---------- ids
        file_id,
        sop_instance_uid,
        ---------- where
        tag_path,
        {{ regexp_replace_all('tag_path', '__[0-9]+__', '__*__') }} as tag_path_pattern,
        keyword_path,
        {{ regexp_replace_all('keyword_path', '\\[[0-9]+\\]', '[*]') }} as keyword_path_pattern,
        tag,
        keyword,
        vr,
        vm,
        depth,
        private_creator,
        private_creator is not null as is_private,
        ---------- value
        value_text,
        {{ adapter.quote("values") }} as value_list,
        value_number,
        value_length,
        value_offset
    from source
)

select * from final
