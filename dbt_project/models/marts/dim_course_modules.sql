{#- Grain: one row per (course_id, module_id) in the course's latest modules snapshot, in
    course order. -#}
with

courses as (
    select course_id, modules_delivery_id
    from {{ ref('int_course_states_resolved') }}
    where modules_delivery_id is not null
),

snapshot_modules as (
    select distinct delivery_id, module_id, position
    from {{ ref('stg_edume__course_event_modules') }}
    where module_id is not null
),

first_occurrences as (
    select
        courses.course_id,
        snapshot_modules.module_id,
        snapshot_modules.position,
        row_number() over (
            partition by courses.course_id, snapshot_modules.module_id
            order by snapshot_modules.position
        ) as occurrence
    from courses
    inner join snapshot_modules
        on snapshot_modules.delivery_id = courses.modules_delivery_id
),

final as (
    select
        course_id,
        module_id,
        cast(row_number() over (partition by course_id order by position) as bigint) as position
    from first_occurrences
    where occurrence = 1
)

select * from final
