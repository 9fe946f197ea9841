{#- Grain: one row per (learner_id, course_id) seen in a learner event. Milestones from the
    events' occurred_at (arrival order never matters). Nothing here depends on the run's time;
    fct_learner_course_progress adds the as_of-dependent columns. A table: several models read it. -#}
{{ config(materialized='table') }}
with

events as (
    select
        *,
        event_type in (
            'learner.activity.started', 'learner.activity.finished', 'learner.course.completed'
        ) as is_activity_event,
        event_type = 'learner.course.completed'
            or (event_type = 'learner.activity.finished' and activity_type = 'course')
            as is_course_completion
    from {{ ref('int_learner_events_deduplicated') }}
    where course_id is not null
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
        end) as count_activities_done
    from events
    group by learner_id, course_id
),

final as (
    select
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
        per_pair.count_activities_done
    from per_pair
    left join latest_activity
        on latest_activity.learner_id = per_pair.learner_id
        and latest_activity.course_id = per_pair.course_id
)

select * from final
