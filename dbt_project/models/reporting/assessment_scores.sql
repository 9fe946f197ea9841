{#- Grain: one row per (assessment, score band): finished attempts whose score falls in the
    band (0-9, 10-19, ..., 90-100; 100 joins the top band), and how many of them passed. Every
    band of an assessment with an attempt is present, empty ones with 0, so a chart's bars line
    up across assessments. -#}
with

attempts as (
    select
        course_id,
        activity_id,
        least(cast(floor(score / 10) as integer), 9) * 10 as band_start,
        is_passed
    from {{ ref('fct_learner_activity') }}
    where activity_type = 'assessment' and score is not null
),

assessments as (
    select distinct course_id, activity_id from attempts
),

bands as (
    select cast(band_start as integer) as band_start from generate_series(0, 90, 10) as series(band_start)
),

counts as (
    select
        course_id,
        activity_id,
        band_start,
        count(*) as count_attempts,
        count(*) filter (where is_passed) as count_passed
    from attempts
    group by course_id, activity_id, band_start
)

select
    assessments.course_id,
    courses.course_title,
    assessments.activity_id,
    activities.position,
    bands.band_start,
    coalesce(counts.count_attempts, 0) as count_attempts,
    coalesce(counts.count_passed, 0) as count_passed
from assessments
cross join bands
inner join {{ ref('dim_courses') }} as courses on courses.course_id = assessments.course_id
left join {{ ref('dim_course_activities') }} as activities
    on activities.course_id = assessments.course_id
    and activities.activity_id = assessments.activity_id
left join counts
    on counts.course_id = assessments.course_id
    and counts.activity_id = assessments.activity_id
    and counts.band_start = bands.band_start
