-- One row per SOP Instance UID (duplicated copies collapsed in staging). A view
-- on the staging table, so millions of wide rows are not stored twice.
{{ config(materialized='view') }}
select * from {{ ref('stg_dicom__instances') }}
