{#- The incremental strategy that replaces rows by unique_key on this engine: DuckDB has
    delete+insert; engines with MERGE (Spark on Delta/Iceberg) override this. -#}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'edume')()) }}
{%- endmacro %}

{% macro default__upsert_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}

{% macro duckdb__upsert_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}


{#- Rows loaded at or after this moment are (re)considered by an incremental run: the newest
    loaded_at already processed, minus var('incremental_lookback_minutes') to cover a load that
    committed while the previous build ran. Re-processing is harmless (idempotent upsert). -#}
{% macro incremental_watermark(watermark_column='loaded_at') -%}
    (select {{ edume.add_minutes('max(' ~ watermark_column ~ ')', -1 * var('incremental_lookback_minutes')) }}
     from {{ this }})
{%- endmacro %}

{% macro add_minutes(timestamp_expression, minutes) -%}
    {{ return(adapter.dispatch('add_minutes', 'edume')(timestamp_expression, minutes)) }}
{%- endmacro %}

{% macro duckdb__add_minutes(timestamp_expression, minutes) -%}
    ({{ timestamp_expression }} + to_minutes(cast({{ minutes }} as bigint)))
{%- endmacro %}
