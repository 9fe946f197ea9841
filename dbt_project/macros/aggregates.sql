{#- Distinct values of `column` within a group, sorted ascending, joined by `delimiter`
    (e.g. a learner's team ids as '3493,3494'): a BI-friendly list without array types. -#}
{% macro sorted_distinct_list(column, delimiter=',') -%}
    {{ return(adapter.dispatch('sorted_distinct_list', 'edume')(column, delimiter)) }}
{%- endmacro %}

{% macro duckdb__sorted_distinct_list(column, delimiter) -%}
    string_agg(distinct cast({{ column }} as varchar), '{{ delimiter }}' order by cast({{ column }} as varchar))
{%- endmacro %}
