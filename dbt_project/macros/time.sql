{#- Time helpers. Timestamps in the warehouse are naive and mean UTC. -#}

{#- An ISO-8601 string (e.g. '2023-05-31T11:42:57.633Z') as a UTC timestamp; NULL if unparseable. -#}
{% macro parse_utc_timestamp(text_expression) -%}
    {{ return(adapter.dispatch('parse_utc_timestamp', 'edume')(text_expression)) }}
{%- endmacro %}

{% macro duckdb__parse_utc_timestamp(text_expression) -%}
    (try_cast({{ text_expression }} as timestamptz) at time zone 'UTC')
{%- endmacro %}


{#- The moment "now" means for this run: var('as_of') when set (reproducible results), else
    var('live_as_of') when set (the live worker's latest as_of refresh: its micro-batches then
    agree on "now" between refreshes, so the time-dependent marts change only where data did),
    else the moment the run started (UTC). Rendered as a literal, so every model and test of one
    run, and every later read of a view, agree on it. -#}
{% macro as_of() -%}
    {%- set moment = var('as_of', none) or var('live_as_of', none) -%}
    {%- if moment -%}
        cast('{{ moment }}' as timestamp)
    {%- else -%}
        cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
    {%- endif -%}
{%- endmacro %}


{#- Whole days elapsed from `start` to `end` (24-hour periods, floored), as an integer. -#}
{% macro whole_days_between(start, end) -%}
    {{ return(adapter.dispatch('whole_days_between', 'edume')(start, end)) }}
{%- endmacro %}

{% macro duckdb__whole_days_between(start, end) -%}
    cast(floor(date_diff('second', {{ start }}, {{ end }}) / 86400) as bigint)
{%- endmacro %}


{#- `timestamp_expression` plus `days_expression` whole days. -#}
{% macro add_days(timestamp_expression, days_expression) -%}
    {{ return(adapter.dispatch('add_days', 'edume')(timestamp_expression, days_expression)) }}
{%- endmacro %}

{% macro duckdb__add_days(timestamp_expression, days_expression) -%}
    ({{ timestamp_expression }} + to_days(cast({{ days_expression }} as integer)))
{%- endmacro %}
