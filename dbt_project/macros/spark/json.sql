{#- Spark implementations of macros/json.sql. Each mirrors its duckdb__ twin value for value:
    tests/spark/test_parity.py builds every mart on both engines and compares them row for row.

    Scalars are read with get_json_object, which agrees with DuckDB's json_extract_string on
    strings (unquoted), numbers (1.50 -> '1.5', 1e3 -> '1000.0'), booleans, JSON null (NULL),
    objects and arrays (compact text) and duplicate keys (the first wins). Arrays are read as
    VARIANT, the one Spark type that tells a JSON array from a string holding '[...]'. -#}

{% macro spark__json_text(json_column, path) -%}
    get_json_object({{ json_column }}, '{{ path }}')
{%- endmacro %}


{#- regexp_extract(...) = text is a full match: Java's `$` would also accept a trailing newline,
    which DuckDB's regexp_full_match rejects. -#}
{% macro spark__json_bigint(json_column, path) -%}
    case
        when regexp_extract(get_json_object({{ json_column }}, '{{ path }}'), '^-?[0-9]{1,18}', 0)
            = get_json_object({{ json_column }}, '{{ path }}')
        then cast(get_json_object({{ json_column }}, '{{ path }}') as bigint)
    end
{%- endmacro %}


{#- Spark's cast accepts Java's float suffixes ('1.5d', '2f'), DuckDB's does not. -#}
{% macro spark__json_double(json_column, path) -%}
    case
        when not get_json_object({{ json_column }}, '{{ path }}') rlike '[0-9.][dDfF]\\s*$'
        then cast(get_json_object({{ json_column }}, '{{ path }}') as double)
    end
{%- endmacro %}


{% macro spark__json_boolean(json_column, path) -%}
    case get_json_object({{ json_column }}, '{{ path }}')
        when 'true' then true
        when 'false' then false
    end
{%- endmacro %}


{#- Duplicate keys (never sent by eduMe) are the one known difference: VARIANT keeps the last
    occurrence (spark.sql.variant.allowDuplicateKeys in profiles.yml), DuckDB the first. -#}
{% macro spark__json_is_array(json_column, path) -%}
    (try_variant_get(try_parse_json({{ json_column }}), '{{ path }}', 'array<variant>') is not null)
{%- endmacro %}


{#- Elements come back as JSON text (strings keep their quotes, null is 'null'), as DuckDB's
    unnest of a json[] gives them, and posexplode's 0-based index becomes the 1-based position. -#}
{% macro spark__json_array_elements(relation, json_column, path, carry_columns) -%}
    select
        {% for column in carry_columns %}{{ column }},{% endfor %}
        to_json(element_variant) as element,
        position0 + 1 as position
    from (
        select
            {% for column in carry_columns %}{{ column }},{% endfor %}
            posexplode(
                try_variant_get(try_parse_json({{ json_column }}), '{{ path }}', 'array<variant>')
            ) as (position0, element_variant)
        from {{ relation }}
    ) as arrays
{%- endmacro %}
