{#- Grain: one row per (learner, mandatory course) not completed by its due date at as_of. -#}
{{ config(tags=['as_of']) }}
select
    compliance.learner_id,
    learners.external_user_id,
    learners.first_name,
    learners.last_name,
    compliance.course_id,
    courses.course_title,
    compliance.status,
    compliance.assigned_at,
    compliance.due_at
from {{ ref('fct_training_compliance') }} as compliance
inner join {{ ref('dim_learners') }} as learners on learners.learner_id = compliance.learner_id
inner join {{ ref('dim_courses') }} as courses on courses.course_id = compliance.course_id
where compliance.is_overdue
