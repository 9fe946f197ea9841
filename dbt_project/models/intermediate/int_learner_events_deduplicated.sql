{#- Grain: one row per distinct processable learner delivery (delivery_id). A body delivered
    several times counts once, with the earliest copy's received_at. Incremental: see
    macros/incremental.sql keep_earliest_copies. -#}
{{ config(
    materialized='incremental',
    unique_key='delivery_id',
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}

{%- set columns = [
    'delivery_id', 'event_type', 'learner_id', 'external_user_id', 'first_name', 'last_name',
    'group_id', 'course_id', 'course_key', 'course_title', 'module_id', 'activity_type',
    'activity_id', 'score', 'is_passed', 'completed_at', 'payload_version', 'has_teams_snapshot',
    'occurred_at', 'received_at', 'loaded_at', 'segment', 'line_number'] -%}

{{ edume.keep_earliest_copies(
    '(select * from ' ~ ref('stg_edume__learner_events') ~ ' where invalid_reason is null) as valid',
    columns) }}
