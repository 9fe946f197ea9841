{#- Grain: one row per distinct processable learner delivery (delivery_id). A body delivered
    several times counts once, with the earliest copy's received_at.

    Incremental: only rows loaded since the last run (minus a lookback) are parsed; the copies
    already kept for the same delivery_ids are re-ranked with them, so the result is exactly what
    a full refresh gives whatever order the copies were loaded in. loaded_at is the newest copy's,
    which makes it a safe watermark. -#}
{{ config(
    materialized='incremental',
    unique_key='delivery_id',
    incremental_strategy=edume.upsert_strategy(),
) }}

{%- set columns = [
    'delivery_id', 'event_type', 'learner_id', 'external_user_id', 'first_name', 'last_name',
    'group_id', 'course_id', 'course_key', 'course_title', 'module_id', 'activity_type',
    'activity_id', 'score', 'is_passed', 'completed_at', 'payload_version', 'has_teams_snapshot',
    'occurred_at', 'received_at', 'loaded_at', 'segment', 'line_number'] -%}

with

staged as (
    select {{ columns | join(', ') }}
    from {{ ref('stg_edume__learner_events') }}
    where invalid_reason is null
    {% if is_incremental() %}
        and loaded_at >= {{ edume.incremental_watermark() }}
    {% endif %}
),

copies as (
    select * from staged
    {% if is_incremental() %}
    union all
    select {{ columns | join(', ') }}
    from {{ this }}
    where delivery_id in (select delivery_id from staged)
    {% endif %}
),

copies_ranked as (
    select
        *,
        row_number() over (
            partition by delivery_id order by received_at, segment, line_number
        ) as copy_number,
        max(loaded_at) over (partition by delivery_id) as newest_loaded_at
    from copies
),

final as (
    select
        {% for column in columns if column != 'loaded_at' %}{{ column }},
        {% endfor %}newest_loaded_at as loaded_at
    from copies_ranked
    where copy_number = 1
)

select * from final
