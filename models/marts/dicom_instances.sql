-- One row per SOP Instance UID (duplicated copies collapsed in staging).
select * from {{ ref('stg_dicom__instances') }}
