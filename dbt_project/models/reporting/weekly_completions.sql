{#- Grain: one row per week (Monday, UTC) from the week of the first learner added to the week
    of the latest activity, empty weeks included: courses started and completed that week.
    Reads the (learner, course) aggregate behind fct_learner_course_progress, whose naive
    timestamps are UTC: the view's as_of columns are not needed here, and computing them for
    every pair made this model grow with the warehouse. -#}
with

progress as (
    select
        cast(date_trunc('week', added_at) as date) as added_week,
        cast(date_trunc('week', started_at) as date) as started_week,
        cast(date_trunc('week', completed_at) as date) as completed_week,
        cast(date_trunc('week', last_activity_at) as date) as last_week
    from {{ ref('int_learner_course_progress_aggregated') }}
),

weeks as (
    select cast(week as date) as week_start
    from (select min(added_week) as first_week, max(last_week) as last_week from progress) as span,
        generate_series(span.first_week, span.last_week, interval 7 day) as series(week)
),

started as (
    select started_week as week_start, count(*) as count_started
    from progress where started_week is not null group by started_week
),

completed as (
    select completed_week as week_start, count(*) as count_completed
    from progress where completed_week is not null group by completed_week
)

select
    weeks.week_start,
    coalesce(started.count_started, 0) as count_started,
    coalesce(completed.count_completed, 0) as count_completed
from weeks
left join started on started.week_start = weeks.week_start
left join completed on completed.week_start = weeks.week_start
