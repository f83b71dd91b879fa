{#- Schemas named as the folders say (staging, intermediate, marts, cohorts,
    reference), not dbt's default <target schema>_<custom>: users write
    `select * from marts.imaging_studies`. On BigQuery a project holds many
    warehouses, so the datasets are <dataset prefix>_<folder> (the profile's
    dataset is the prefix), as `cohortdb load --target bigquery` names raw. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%} {{ target.schema }}
  {%- elif target.type == 'bigquery' -%} {{ target.schema ~ '_' ~ (custom_schema_name | trim) }}
  {%- else -%} {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
