{#- Spark implementations of macros/time.sql. The spark target runs with
    spark.sql.session.timeZone=UTC, so Spark's TIMESTAMP (an instant shown in the session zone)
    reads exactly as the warehouse's naive-UTC timestamps. -#}

{#- Spark's cast also takes '2023', '2023-05', '+2023-05-31' and a bare time 'T11:42' (today);
    DuckDB's does not. The guard keeps both to a date-first text, then both casts agree: 'Z',
    '+02:00', '+0200', ' UTC', zone names, date only (midnight), space or 'T', and a text
    without a zone meaning UTC. -#}
{% macro spark__parse_utc_timestamp(text_expression) -%}
    case
        when {{ text_expression }} rlike '^\\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}'
        then cast({{ text_expression }} as timestamp)
    end
{%- endmacro %}


{#- unix_seconds floors to whole seconds as DuckDB's date_diff('second', ...) does. -#}
{% macro spark__whole_days_between(start, end) -%}
    cast(floor((unix_seconds({{ end }}) - unix_seconds({{ start }})) / 86400) as bigint)
{%- endmacro %}


{% macro spark__add_days(timestamp_expression, days_expression) -%}
    timestampadd(DAY, cast({{ days_expression }} as int), {{ timestamp_expression }})
{%- endmacro %}
