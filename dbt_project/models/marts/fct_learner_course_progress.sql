{#- Grain: one row per (learner_id, course_id) seen in a learner event. "Has learner X completed
    course Y?" is one indexed lookup on learner_course_key ('X:Y'): DuckDB's optimizer uses an
    ART index for an equality on one column, not for a conjunction over a composite index, so the
    pair is also kept as one unique, indexed column.

    days_inactive and is_stalled are measured as of var('as_of') (default: the run's start, or
    the live worker's latest as_of refresh; rendered as a literal). A view over the incremental aggregate (a run recomputes only the
    pairs its new events touch) adding the as_of columns: re-creating it is all a new as_of
    costs, and a lookup by learner_course_key uses the aggregate's primary key. On Spark, where
    the exports read the marts' files, it is a table. -#}
{{ config(materialized='table' if target.type == 'spark' else 'view', tags=['as_of']) }}
with

progress as (
    select * from {{ ref('int_learner_course_progress_aggregated') }}
),

measured as (
    select
        *,
        case
            when last_activity_at is not null
            -- 0, not -1, for activity after as_of (the live worker's as_of is up to an hour old)
            then greatest({{ edume.whole_days_between('last_activity_at', edume.as_of()) }}, 0)
        end as days_inactive
    from progress
),

final as (
    select
        learner_course_key,
        learner_id,
        course_id,
        status,
        {{ edume.utc('added_at') }} as added_at,
        {{ edume.utc('started_at') }} as started_at,
        {{ edume.utc('completed_at') }} as completed_at,
        count_lessons_done,
        count_activities_done,
        {{ edume.utc('last_activity_at') }} as last_activity_at,
        last_activity_id,
        days_inactive,
        coalesce(
            status = 'in_progress' and days_inactive >= {{ var('stall_after_days') }}, false
        ) as is_stalled
    from measured
)

select * from final
