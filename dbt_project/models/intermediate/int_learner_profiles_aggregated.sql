{#- Grain: one row per learner_id seen in any learner event: profile attributes from the latest
    event (by occurred_at) carrying them, milestones, and course counts. dim_learners adds the
    current teams.

    Incremental: a run recomputes, from all their events and course progress, only the learners
    named by an event loaded since the newest loaded_at this table holds, and replaces those rows
    (unique key learner_id), so it equals a full refresh. The rows written get built_at (the
    export rewrites only the stalled learners whose rows a run wrote); a table built before the
    column existed gets it appended, null in its older rows. -#}
{{ config(
    materialized='incremental',
    unique_key='learner_id',
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}
{%- set touched_ids = edume.touched_learner_ids() %}
with

all_events as (
    select * from {{ ref('int_learner_events_deduplicated') }}
),

events as (
    select * from all_events
    where {{ edume.in_touched_learners('learner_id', touched_ids) }}
),

ranked as (
    select
        learner_id,
        external_user_id,
        first_name,
        last_name,
        group_id,
        row_number() over (
            partition by learner_id
            order by case when external_user_id is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as external_id_recency,
        row_number() over (
            partition by learner_id
            order by case when first_name is null and last_name is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as name_recency,
        row_number() over (
            partition by learner_id
            order by case when group_id is null then 1 else 0 end,
                occurred_at desc, delivery_id desc
        ) as group_recency
    from events
),

profiles as (
    select
        learner_id,
        max(case when external_id_recency = 1 then external_user_id end) as external_user_id,
        max(case when name_recency = 1 then first_name end) as first_name,
        max(case when name_recency = 1 then last_name end) as last_name,
        max(case when group_recency = 1 then group_id end) as group_id
    from ranked
    group by learner_id
),

milestones as (
    select
        learner_id,
        min(case when event_type = 'learner.added' then occurred_at end) as added_at,
        min(case when event_type = 'learner.activated' then occurred_at end) as activated_at,
        min(case when event_type <> 'learner.added' and event_type <> 'learner.activated'
            then occurred_at end) as first_activity_at,
        max(case when event_type <> 'learner.added' and event_type <> 'learner.activated'
            then occurred_at end) as last_activity_at,
        min(occurred_at) as first_seen_at,
        max(loaded_at) as loaded_at
    from events
    group by learner_id
),

courses as (
    select
        progress.learner_id,
        count(*) as count_courses,
        count(case when progress.status <> 'not_started' then 1 end) as count_courses_started,
        count(case when progress.status = 'completed' then 1 end) as count_courses_completed
    from {{ ref('int_learner_course_progress_aggregated') }} as progress
    where {{ edume.in_touched_learners('progress.learner_id', touched_ids) }}
    group by progress.learner_id
),

final as (
    select
        profiles.learner_id,
        profiles.external_user_id,
        profiles.first_name,
        profiles.last_name,
        profiles.group_id,
        milestones.added_at,
        milestones.activated_at,
        milestones.first_activity_at,
        milestones.last_activity_at,
        milestones.first_seen_at,
        coalesce(courses.count_courses, 0) as count_courses,
        coalesce(courses.count_courses_started, 0) as count_courses_started,
        coalesce(courses.count_courses_completed, 0) as count_courses_completed,
        milestones.loaded_at,
        {{ edume.this_run() }} as built_at
    from profiles
    inner join milestones on milestones.learner_id = profiles.learner_id
    left join courses on courses.learner_id = profiles.learner_id
)

select * from final
