{#- Grain: one row per course: its title and status beside the funnel counts. -#}
select
    funnel.course_id,
    courses.course_title,
    courses.status,
    funnel.count_learners_added,
    funnel.count_learners_activated,
    funnel.count_learners_started,
    funnel.count_learners_finished_first_lesson,
    funnel.count_learners_completed,
    funnel.completion_rate
from {{ ref('fct_learner_funnel') }} as funnel
inner join {{ ref('dim_courses') }} as courses on courses.course_id = funnel.course_id
