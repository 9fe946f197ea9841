{#- Grain: one row per course_id in dim_courses. Learners at each step: added -> activated ->
    started -> finished a first lesson -> completed. A learner counts at every step up to the
    furthest reached, so the steps never increase. -#}
with

courses as (
    select course_id from {{ ref('dim_courses') }}
),

steps as (
    select * from {{ ref('int_learner_steps_funnel_created') }}
),

counts as (
    select
        course_id,
        count(case when furthest_step >= 1 then 1 end) as count_learners_added,
        count(case when furthest_step >= 2 then 1 end) as count_learners_activated,
        count(case when furthest_step >= 3 then 1 end) as count_learners_started,
        count(case when furthest_step >= 4 then 1 end) as count_learners_finished_first_lesson,
        count(case when furthest_step >= 5 then 1 end) as count_learners_completed
    from steps
    group by course_id
),

final as (
    select
        courses.course_id,
        coalesce(counts.count_learners_added, 0) as count_learners_added,
        coalesce(counts.count_learners_activated, 0) as count_learners_activated,
        coalesce(counts.count_learners_started, 0) as count_learners_started,
        coalesce(counts.count_learners_finished_first_lesson, 0)
            as count_learners_finished_first_lesson,
        coalesce(counts.count_learners_completed, 0) as count_learners_completed,
        case
            when coalesce(counts.count_learners_added, 0) > 0
            then cast(counts.count_learners_completed as double) / counts.count_learners_added
        end as completion_rate
    from courses
    left join counts on counts.course_id = courses.course_id
)

select * from final
