{#- Text helpers. DuckDB's regexp_replace replaces only the first match unless
    given the 'g' option; BigQuery's always replaces all. default__ = BigQuery. -#}

{% macro regexp_replace_all(expression, pattern, replacement) -%}
  {{ return(adapter.dispatch('regexp_replace_all', 'cohortdb')(expression, pattern, replacement)) }}
{%- endmacro %}
{% macro default__regexp_replace_all(expression, pattern, replacement) -%}
  regexp_replace({{ expression }}, r'{{ pattern }}', '{{ replacement }}')
{%- endmacro %}
{% macro duckdb__regexp_replace_all(expression, pattern, replacement) -%}
  regexp_replace({{ expression }}, '{{ pattern }}', '{{ replacement }}', 'g')
{%- endmacro %}

{#- A cast that yields null instead of failing (dbt-duckdb's safe_cast renders a plain cast). -#}
{% macro try_cast_as(expression, type) -%}
  {{ return(adapter.dispatch('try_cast_as', 'cohortdb')(expression, type)) }}
{%- endmacro %}
{% macro default__try_cast_as(expression, type) -%} safe_cast({{ expression }} as {{ type }}) {%- endmacro %}
{% macro duckdb__try_cast_as(expression, type) -%} try_cast({{ expression }} as {{ type }}) {%- endmacro %}

{#- Age in years (double) from a DICOM Age String nnnD/nnnW/nnnM/nnnY; null when malformed. -#}
{% macro dicom_age_years(expression) -%}
  {%- set number = try_cast_as('left(' ~ expression ~ ', 3)', dbt.type_float()) -%}
  case right({{ expression }}, 1)
    when 'Y' then {{ number }}
    when 'M' then {{ number }} / 12
    when 'W' then {{ number }} * 7 / 365.25
    when 'D' then {{ number }} / 365.25
  end
{%- endmacro %}
