{#- Grain: one row per distinct delivery that cannot be processed (unknown or missing type,
    unparseable timestamp, missing ids). Incremental like int_learner_events_deduplicated
    (keep_earliest_copies); int_events_quarantined adds the copy counts. -#}
{{ config(
    materialized='incremental',
    unique_key='delivery_id',
    incremental_strategy=edume.upsert_strategy(),
    on_schema_change='append_new_columns',
) }}

{%- set columns = ['delivery_id', 'event_type', 'invalid_reason', 'occurred_at', 'received_at',
                   'loaded_at', 'segment', 'line_number'] -%}

{% set unprocessable %}
(
    select {{ columns | join(', ') }}
    from {{ ref('stg_edume__unknown_events') }}
    where {{ edume.loaded_since_last_run() }}
    union all
    select {{ columns | join(', ') }}
    from {{ ref('stg_edume__course_events') }}
    where invalid_reason is not null and {{ edume.loaded_since_last_run() }}
    union all
    select {{ columns | join(', ') }}
    from {{ ref('stg_edume__learner_events') }}
    where invalid_reason is not null and {{ edume.loaded_since_last_run() }}
) as unprocessable
{% endset %}

{{ edume.keep_earliest_copies(unprocessable, columns) }}
