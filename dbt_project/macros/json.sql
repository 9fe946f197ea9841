{#- JSON extraction: the only way models read a payload. Paths are JSONPath strings such as
    '$.payload.course.courseId', understood by DuckDB's json functions and Spark's
    get_json_object alike. Each macro returns NULL when the path is absent or of the wrong type,
    never an error, so one malformed delivery cannot fail a build. -#}

{% macro json_text(json_column, path) -%}
    {{ return(adapter.dispatch('json_text', 'edume')(json_column, path)) }}
{%- endmacro %}

{% macro duckdb__json_text(json_column, path) -%}
    json_extract_string({{ json_column }}, '{{ path }}')
{%- endmacro %}


{#- An integer id. A fractional or non-numeric value is NULL (not rounded) so that it is flagged
    as a missing id rather than silently turned into someone else's id. -#}
{% macro json_bigint(json_column, path) -%}
    {{ return(adapter.dispatch('json_bigint', 'edume')(json_column, path)) }}
{%- endmacro %}

{% macro duckdb__json_bigint(json_column, path) -%}
    case
        when regexp_full_match(json_extract_string({{ json_column }}, '{{ path }}'), '-?[0-9]{1,18}')
        then cast(json_extract_string({{ json_column }}, '{{ path }}') as bigint)
    end
{%- endmacro %}


{% macro json_double(json_column, path) -%}
    {{ return(adapter.dispatch('json_double', 'edume')(json_column, path)) }}
{%- endmacro %}

{% macro duckdb__json_double(json_column, path) -%}
    try_cast(json_extract_string({{ json_column }}, '{{ path }}') as double)
{%- endmacro %}


{% macro json_boolean(json_column, path) -%}
    {{ return(adapter.dispatch('json_boolean', 'edume')(json_column, path)) }}
{%- endmacro %}

{% macro duckdb__json_boolean(json_column, path) -%}
    case json_extract_string({{ json_column }}, '{{ path }}')
        when 'true' then true
        when 'false' then false
    end
{%- endmacro %}


{#- True when the path holds a JSON array (a snapshot of teams, modules or activities). -#}
{% macro json_is_array(json_column, path) -%}
    {{ return(adapter.dispatch('json_is_array', 'edume')(json_column, path)) }}
{%- endmacro %}

{% macro duckdb__json_is_array(json_column, path) -%}
    coalesce(json_type({{ json_column }}, '{{ path }}') = 'ARRAY', false)
{%- endmacro %}


{#- A whole query: one row per element of the JSON array at `path` in each row of `relation`,
    with the `carry_columns` of that row, the element as JSON text in `element` and its 1-based
    `position` in the array (arrays carry course order). Rows without an array yield nothing.
    Read the element with the json_* macros on the column `element`. -#}
{% macro json_array_elements(relation, json_column, path, carry_columns) -%}
    {{ return(adapter.dispatch('json_array_elements', 'edume')(relation, json_column, path, carry_columns)) }}
{%- endmacro %}

{% macro duckdb__json_array_elements(relation, json_column, path, carry_columns) -%}
    select
        {% for column in carry_columns %}{{ column }},{% endfor %}
        unnest(elements) as element,
        generate_subscripts(elements, 1) as position
    from (
        select
            {% for column in carry_columns %}{{ column }},{% endfor %}
            cast(json_extract({{ json_column }}, '{{ path }}') as json[]) as elements
        from {{ relation }}
        where json_type({{ json_column }}, '{{ path }}') = 'ARRAY'
    ) as arrays
{%- endmacro %}
