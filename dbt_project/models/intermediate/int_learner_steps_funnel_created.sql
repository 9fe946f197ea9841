{#- Grain: one row per (learner_id, course_id). The furthest funnel step the learner reached in
    the course: 1 added (any event), 2 activated (account), 3 started, 4 finished a first lesson,
    5 completed. A learner counts at every step up to this one, so funnel steps never increase
    even when an earlier milestone's event is missing (e.g. no learner.added). -#}
with

progress as (
    select * from {{ ref('int_learner_course_progress_aggregated') }}
),

-- Learners with a learner.activated event: the incremental profiles hold its earliest time,
-- so no run re-reads every event for it.
activations as (
    select learner_id
    from {{ ref('int_learner_profiles_aggregated') }}
    where activated_at is not null
),

final as (
    select
        progress.learner_id,
        progress.course_id,
        case
            when progress.completed_at is not null then 5
            when progress.count_lessons_done > 0 then 4
            when progress.started_at is not null then 3
            when activations.learner_id is not null then 2
            else 1
        end as furthest_step
    from progress
    left join activations
        on activations.learner_id = progress.learner_id
)

select * from final
