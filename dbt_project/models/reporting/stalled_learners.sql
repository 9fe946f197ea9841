{#- Grain: one row per (learner, course) in progress and inactive for stall_after_days or more
    at as_of: whom to remind, with the name and id a manager needs to reach them. A view: it
    holds most in-progress pairs, so a table meant writing a copy of them at every build; the
    export (and any reader) computes it once from the marts, as of the build's as_of. -#}
{{ config(materialized='view', tags=['as_of']) }}
select
    progress.learner_id,
    learners.external_user_id,
    learners.first_name,
    learners.last_name,
    progress.course_id,
    courses.course_title,
    progress.last_activity_at,
    progress.last_activity_id,
    progress.days_inactive
from {{ ref('fct_learner_course_progress') }} as progress
inner join {{ ref('dim_learners') }} as learners on learners.learner_id = progress.learner_id
inner join {{ ref('dim_courses') }} as courses on courses.course_id = progress.course_id
where progress.is_stalled
