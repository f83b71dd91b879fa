{#- Schemas named as the folders say (staging, intermediate, marts, cohorts,
    reference), not dbt's default <target schema>_<custom>: users write
    `select * from marts.imaging_studies`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
  {%- if custom_schema_name is none -%} {{ target.schema }}
  {%- else -%} {{ custom_schema_name | trim }}
  {%- endif -%}
{%- endmacro %}
