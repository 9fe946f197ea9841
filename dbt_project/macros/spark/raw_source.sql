{#- The source raw.edume_events on engines that do not share the loader's DuckDB file.

    On DuckDB the loader writes raw.edume_events itself: nothing to do. On Spark the loader's
    hand-off (pipeline/loader/handoff.py) is parquet partitioned by receive date at the path in
    the Spark conf `spark.edume.handoff.dir` (set by the profile). Each run re-registers an
    external table over it (dropping an external table never deletes its files), discovers its
    partitions, and puts the contract's columns, without the partition column, behind the view
    raw.edume_events, so models read the same columns on both engines.
    Called from the on-run-start hook in dbt_project.yml. -#}
{% macro register_raw_source() -%}
    {{ return(adapter.dispatch('register_raw_source', 'edume')()) }}
{%- endmacro %}

{% macro default__register_raw_source() -%}
    select 1
{%- endmacro %}

{% macro spark__register_raw_source() -%}
    {%- if execute -%}
        {%- set location = run_query("set spark.edume.handoff.dir").columns[1].values()[0] -%}
        {%- if location is none or location == '<undefined>' -%}
            {{ exceptions.raise_compiler_error(
                "The spark target needs server_side_parameters.spark.edume.handoff.dir: the "
                ~ "directory pipeline/loader/handoff.py exports raw.edume_events to.") }}
        {%- endif -%}
        {%- do run_query("create schema if not exists raw") -%}
        {%- do run_query("drop table if exists raw.edume_events_handoff") -%}
        {%- do run_query(
            "create table raw.edume_events_handoff ("
            ~ "delivery_id string, received_at timestamp, auth_mode string,"
            ~ " signature_form string, secret_index int, token_index int, event_type string,"
            ~ " event_timestamp timestamp, body string, segment string, line_number bigint,"
            ~ " loaded_at timestamp, received_date string)"
            ~ " using parquet partitioned by (received_date) location '" ~ location ~ "'") -%}
        {%- do run_query("msck repair table raw.edume_events_handoff") -%}
    {%- endif -%}
    create or replace view raw.edume_events as
    select
        delivery_id, received_at, auth_mode, signature_form, secret_index, token_index,
        event_type, event_timestamp, body, segment, line_number, loaded_at
    from raw.edume_events_handoff
{%- endmacro %}
