{#- Grain: one row per (course, activity) that at least one learner reached, with the course's
    title: where learners stop. -#}
select
    dropoff.course_id,
    courses.course_title,
    dropoff.activity_id,
    dropoff.position,
    dropoff.activity_type,
    dropoff.count_learners_reached,
    dropoff.count_learners_finished,
    dropoff.count_learners_stalled,
    dropoff.dropoff_rate
from {{ ref('fct_course_dropoff') }} as dropoff
inner join {{ ref('dim_courses') }} as courses on courses.course_id = dropoff.course_id
where dropoff.count_learners_reached > 0
