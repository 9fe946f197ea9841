{#- Spark implementation of macros/aggregates.sql. string_agg skips NULLs and gives NULL for a
    group with no values; collect_set skips NULLs too, and the case restores the NULL that
    array_join would turn into ''. Both sort strings by their bytes. -#}
{% macro spark__sorted_distinct_list(column, delimiter) -%}
    case
        when size(collect_set(cast({{ column }} as string))) > 0
        then array_join(array_sort(collect_set(cast({{ column }} as string))), '{{ delimiter }}')
    end
{%- endmacro %}
