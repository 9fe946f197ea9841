{#- Grain: one row per (learner_id, course_id) seen in a learner event. Milestones from the
    events' occurred_at (arrival order never matters). Nothing here depends on the run's time;
    fct_learner_course_progress adds the as_of-dependent columns over this table.

    Incremental: a run recomputes, from all their events, only the pairs named by an event
    loaded since the newest loaded_at this table holds, and replaces those rows (unique key
    learner_course_key), so it equals a full refresh; the rows written get built_at. Its primary
    key learner_course_key (an ART index on DuckDB, from the contract) serves the lookup "has
    learner X completed course Y?" through the view fct_learner_course_progress. -#}
{{ config(
    materialized='incremental',
    unique_key='learner_course_key',
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}
{%- set touched_ids = edume.touched_learner_ids() %}
with

all_events as (
    select * from {{ ref('int_learner_events_deduplicated') }}
    where course_id is not null
),

{% if is_incremental() %}
touched_pairs as (
    select distinct learner_id, course_id
    from all_events
    where {{ edume.loaded_since_last_run() }}
),

{% endif %}
events as (
    select
        all_events.*,
        all_events.event_type in (
            'learner.activity.started', 'learner.activity.finished', 'learner.course.completed'
        ) as is_activity_event,
        all_events.event_type = 'learner.course.completed'
            or (all_events.event_type = 'learner.activity.finished'
                and all_events.activity_type = 'course')
            as is_course_completion
    from all_events
    {% if is_incremental() %}
    inner join touched_pairs
        on touched_pairs.learner_id = all_events.learner_id
        and touched_pairs.course_id = all_events.course_id
    where {{ edume.in_touched_learners('all_events.learner_id', touched_ids) }}
    {% endif %}
),

latest_activity as (
    select learner_id, course_id, activity_id
    from (
        select
            learner_id,
            course_id,
            activity_id,
            row_number() over (
                partition by learner_id, course_id order by occurred_at desc, delivery_id desc
            ) as recency
        from events
        where is_activity_event and activity_id is not null
    ) as ranked
    where recency = 1
),

per_pair as (
    select
        learner_id,
        course_id,
        min(case when event_type = 'learner.added' then occurred_at end) as added_at,
        min(case when is_activity_event then occurred_at end) as started_at,
        min(case when is_course_completion then occurred_at end) as completed_at,
        max(case when is_activity_event then occurred_at end) as last_activity_at,
        count(distinct case
            when event_type = 'learner.activity.finished' and activity_type = 'lesson'
            then activity_id
        end) as count_lessons_done,
        count(distinct case
            when event_type = 'learner.activity.finished' and activity_id is not null
            then activity_id
        end) as count_activities_done,
        max(loaded_at) as loaded_at
    from events
    group by learner_id, course_id
),

final as (
    select
        {{ edume.learner_course_key('per_pair.learner_id', 'per_pair.course_id') }}
            as learner_course_key,
        per_pair.learner_id,
        per_pair.course_id,
        case
            when per_pair.completed_at is not null then 'completed'
            when per_pair.started_at is not null then 'in_progress'
            else 'not_started'
        end as status,
        per_pair.added_at,
        per_pair.started_at,
        per_pair.completed_at,
        per_pair.last_activity_at,
        latest_activity.activity_id as last_activity_id,
        per_pair.count_lessons_done,
        per_pair.count_activities_done,
        per_pair.loaded_at,
        {{ edume.this_run() }} as built_at
    from per_pair
    left join latest_activity
        on latest_activity.learner_id = per_pair.learner_id
        and latest_activity.course_id = per_pair.course_id
)

select * from final
