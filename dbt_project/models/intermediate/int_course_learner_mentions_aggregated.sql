{#- Grain: one row per course_id named in a learner event: when learners first named it, and
    the key, title and group of the latest naming event (by occurred_at, ties by delivery_id;
    one with a title first). dim_courses uses it for courses known only through learners.

    Incremental: both are associative (the earliest of the earliest; the latest of the latest),
    so a run ranks only the events loaded since the newest loaded_at this table holds together
    with the rows it already holds, and replaces those courses' rows (unique key course_id):
    the result equals a full refresh. -#}
{{ config(
    materialized='incremental',
    unique_key='course_id',
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}
with

new_mentions as (
    select
        course_id,
        course_key,
        course_title,
        group_id,
        occurred_at as first_seen_at,
        occurred_at as mentioned_at,
        delivery_id as mention_delivery_id,
        loaded_at
    from {{ ref('int_learner_events_deduplicated') }}
    where course_id is not null and {{ edume.loaded_since_last_run() }}
),

mentions as (
    select * from new_mentions
    {% if is_incremental() %}
    union all
    select
        course_id,
        course_key,
        course_title,
        group_id,
        first_seen_at,
        mentioned_at,
        mention_delivery_id,
        loaded_at
    from {{ this }}
    where course_id in (select course_id from new_mentions)
    {% endif %}
),

ranked as (
    select
        *,
        row_number() over (
            partition by course_id
            order by case when course_title is null then 1 else 0 end,
                mentioned_at desc, mention_delivery_id desc
        ) as recency,
        min(first_seen_at) over (partition by course_id) as course_first_seen_at,
        max(loaded_at) over (partition by course_id) as newest_loaded_at
    from mentions
),

final as (
    select
        course_id,
        course_key,
        course_title,
        group_id,
        course_first_seen_at as first_seen_at,
        mentioned_at,
        mention_delivery_id,
        newest_loaded_at as loaded_at
    from ranked
    where recency = 1
)

select * from final
