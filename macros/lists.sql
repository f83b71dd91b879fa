{#- List (ARRAY) helpers. DuckDB lists are 1-based with len()/list_contains();
    BigQuery arrays are 0-based with array_length()/UNNEST. default__ = BigQuery. -#}

{% macro first_element(column) -%}
  {{ return(adapter.dispatch('first_element', 'cohortdb')(column)) }}
{%- endmacro %}
{% macro default__first_element(column) -%} {{ column }}[safe_offset(0)] {%- endmacro %}
{% macro duckdb__first_element(column) -%} {{ column }}[1] {%- endmacro %}

{% macro list_length(column) -%}
  {{ return(adapter.dispatch('list_length', 'cohortdb')(column)) }}
{%- endmacro %}
{% macro default__list_length(column) -%} array_length({{ column }}) {%- endmacro %}
{% macro duckdb__list_length(column) -%} len({{ column }}) {%- endmacro %}

{% macro list_contains(column, value) -%}
  {{ return(adapter.dispatch('list_contains', 'cohortdb')(column, value)) }}
{%- endmacro %}
{% macro default__list_contains(column, value) -%} ({{ value }}) in unnest({{ column }}) {%- endmacro %}
{% macro duckdb__list_contains(column, value) -%} list_contains({{ column }}, {{ value }}) {%- endmacro %}

{#- Sorted distinct non-null values of an expression over a group. -#}
{% macro distinct_list_agg(expression) -%}
  {{ return(adapter.dispatch('distinct_list_agg', 'cohortdb')(expression)) }}
{%- endmacro %}
{#- Not array_agg(distinct … ignore nulls order by …): the BigQuery emulator's
    translation of it fails (FILTER (WHERE NOT DISTINCT …)). An intermediate
    array may hold nulls on BigQuery; the subquery drops them. [] for no values. -#}
{% macro default__distinct_list_agg(expression) -%}
  array(select _v from unnest(array_agg(distinct {{ expression }})) as _v where _v is not null order by _v)
{%- endmacro %}
{% macro duckdb__distinct_list_agg(expression) -%}
  coalesce(list_sort(list_distinct(array_agg({{ expression }}))), [])
{%- endmacro %}

{#- All values of an expression over a group, ordered, as a list of structs or scalars. -#}
{% macro ordered_list_agg(expression, order_by) -%}
  {{ return(adapter.dispatch('ordered_list_agg', 'cohortdb')(expression, order_by)) }}
{%- endmacro %}
{% macro default__ordered_list_agg(expression, order_by) -%}
  array_agg({{ expression }} ignore nulls order by {{ order_by }})
{%- endmacro %}
{% macro duckdb__ordered_list_agg(expression, order_by) -%}
  array_agg({{ expression }} order by {{ order_by }}) filter (where {{ expression }} is not null)
{%- endmacro %}

{#- Join each row to the items of its list column, with the 0-based position
    (read it with unnested_position). DuckDB 1.5 names an unaliased unnest column
    `unnest`; BigQuery has WITH OFFSET, named apart from `position` (the emulator
    turns WITH OFFSET into a 1-based ordinality and corrects it only where the
    offset column is projected under its own name). -#}
{% macro unnest_with_position(relation_alias, column, item, position) -%}
  {{ return(adapter.dispatch('unnest_with_position', 'cohortdb')(relation_alias, column, item, position)) }}
{%- endmacro %}
{% macro default__unnest_with_position(relation_alias, column, item, position) -%}
  cross join unnest({{ relation_alias }}.{{ column }}) as {{ item }} with offset as _offset_{{ position }}
{%- endmacro %}
{% macro duckdb__unnest_with_position(relation_alias, column, item, position) -%}
  cross join unnest({{ relation_alias }}.{{ column }}) with ordinality as _unnest_{{ item }}({{ item }}, {{ position }}_1)
{%- endmacro %}

{#- The 0-based position column that unnest_with_position exposes. -#}
{% macro unnested_position(position) -%}
  {{ return(adapter.dispatch('unnested_position', 'cohortdb')(position)) }}
{%- endmacro %}
{% macro default__unnested_position(position) -%} _offset_{{ position }} {%- endmacro %}
{% macro duckdb__unnested_position(position) -%} ({{ position }}_1 - 1) {%- endmacro %}
