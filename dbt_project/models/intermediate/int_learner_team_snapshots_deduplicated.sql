{#- Grain: one row per (delivery_id, team_id): the teams listed in a learner delivery's `teams`
    array, each distinct delivery once. Incremental on loaded_at (the array of one body never
    changes, so new copies add nothing and a plain distinct upsert is exact). -#}
{{ config(
    materialized='incremental',
    unique_key=['delivery_id', 'team_id'],
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}

with

elements as (
    select delivery_id, team_id, loaded_at
    from {{ ref('stg_edume__learner_event_teams') }}
    where team_id is not null and {{ edume.loaded_since_last_run() }}
),

final as (
    select delivery_id, team_id, max(loaded_at) as loaded_at
    from elements
    group by delivery_id, team_id
)

select * from final
