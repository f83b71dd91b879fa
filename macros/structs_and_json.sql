{#- Structs and JSON documents. DuckDB builds structs with struct_pack(k := v)
    and drops JSON nulls by merge-patching into {}; BigQuery uses STRUCT(v AS k)
    and JSON_STRIP_NULLS. default__ = BigQuery. -#}

{#- A struct from (name, expression) pairs; names keep their case. -#}
{% macro make_struct(fields) -%}
  {{ return(adapter.dispatch('make_struct', 'cohortdb')(fields)) }}
{%- endmacro %}
{% macro default__make_struct(fields) -%}
  struct({% for name, expression in fields %}{{ expression }} as `{{ name }}`{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}
{% macro duckdb__make_struct(fields) -%}
  struct_pack({% for name, expression in fields %}"{{ name }}" := {{ expression }}{{ ", " if not loop.last }}{% endfor %})
{%- endmacro %}

{#- A JSON object from a struct, without the keys whose value is null (FHIR forbids nulls). -#}
{% macro json_without_nulls(struct_expression) -%}
  {{ return(adapter.dispatch('json_without_nulls', 'cohortdb')(struct_expression)) }}
{%- endmacro %}
{% macro default__json_without_nulls(struct_expression) -%}
  json_strip_nulls(to_json({{ struct_expression }}))
{%- endmacro %}
{% macro duckdb__json_without_nulls(struct_expression) -%}
  json_merge_patch('{}', to_json({{ struct_expression }}))
{%- endmacro %}

{#- A JSON object from (name, expression) pairs, without the keys whose value is
    null. On BigQuery this is JSON_OBJECT, not TO_JSON(STRUCT(…)): the emulator
    lowercases a struct's keys (numberOfSeries → numberofseries) when it reads a
    column. Nested structs keep make_struct; give them lowercase keys or nest
    this macro. On DuckDB it is json_without_nulls(make_struct(fields)). -#}
{% macro json_object_without_nulls(fields) -%}
  {{ return(adapter.dispatch('json_object_without_nulls', 'cohortdb')(fields)) }}
{%- endmacro %}
{% macro default__json_object_without_nulls(fields) -%}
  json_strip_nulls(json_object({% for name, expression in fields %}'{{ name }}', {{ expression }}{{ ", " if not loop.last }}{% endfor %}))
{%- endmacro %}
{% macro duckdb__json_object_without_nulls(fields) -%}
  {{ cohortdb.duckdb__json_without_nulls(cohortdb.duckdb__make_struct(fields)) }}
{%- endmacro %}

{#- A JSON value as compact text. -#}
{% macro json_text(json_expression) -%}
  {{ return(adapter.dispatch('json_text', 'cohortdb')(json_expression)) }}
{%- endmacro %}
{% macro default__json_text(json_expression) -%} to_json_string({{ json_expression }}) {%- endmacro %}
{% macro duckdb__json_text(json_expression) -%} cast({{ json_expression }} as varchar) {%- endmacro %}

{#- The first n distinct non-null values of an expression over a group, sorted. -#}
{% macro first_distinct_values(expression, n) -%}
  {{ return(adapter.dispatch('first_distinct_values', 'cohortdb')(expression, n)) }}
{%- endmacro %}
{% macro default__first_distinct_values(expression, n) -%}
  array(select _v from unnest(array_agg(distinct {{ expression }})) as _v where _v is not null order by _v limit {{ n }})
{%- endmacro %}
{% macro duckdb__first_distinct_values(expression, n) -%}
  coalesce(list_slice(list_sort(list_distinct(array_agg({{ expression }}))), 1, {{ n }}), [])
{%- endmacro %}

{#- A list's distinct values, sorted and joined with commas (to compare lists as text). -#}
{% macro sorted_list_text(column) -%}
  {{ return(adapter.dispatch('sorted_list_text', 'cohortdb')(column)) }}
{%- endmacro %}
{#- coalesce: BigQuery's string_agg over no rows is null, DuckDB's array_to_string of [] is ''. -#}
{% macro default__sorted_list_text(column) -%}
  coalesce((select string_agg(distinct _value, ',' order by _value) from unnest({{ column }}) as _value), '')
{%- endmacro %}
{% macro duckdb__sorted_list_text(column) -%}
  array_to_string(list_sort(list_distinct({{ column }})), ',')
{%- endmacro %}
