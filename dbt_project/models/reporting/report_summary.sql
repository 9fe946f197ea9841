{#- Grain: one row. The headline counts of the report. -#}
select
    (select count(*) from {{ ref('dim_courses') }}) as count_courses,
    (select count(*) from {{ ref('dim_courses') }} where is_live) as count_live_courses,
    (select count(*) from {{ ref('dim_learners') }}) as count_learners
