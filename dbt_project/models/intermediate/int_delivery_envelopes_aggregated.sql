{#- Grain: one row per (header, value): how many distinct deliveries (delivery_id) carried that
    value of an HTTP envelope header (content_type, content_encoding, user_agent; '(none)' when
    absent), plus one row ('(delivery)', '(any)') counting every distinct delivery. The state
    behind quality.delivery_envelopes and quality.delivery_counts, so that neither counts
    distinct delivery_ids over the whole raw table at every build.

    Incremental: a run reads the raw rows loaded since the newest loaded_at it holds, keeps the
    (header, value, delivery_id) it has not seen in an earlier-loaded copy of the same delivery
    (a lookup of the run's delivery_ids only), and adds their number to the rows it replaces
    (unique key header, value), so it equals a full refresh. loaded_at is the newest first-copy
    loaded_at among the row's deliveries (so also equal to a full refresh), and the counts are
    deltas, so the watermark is exact: var('incremental_lookback_minutes') does not apply
    (re-reading a counted row would count it twice). DuckDB only, like the quality models it
    feeds. -#}
{{ config(
    materialized='incremental',
    unique_key=['header', 'value'],
    on_schema_change='append_new_columns',
    incremental_strategy=edume.upsert_strategy(),
    enabled=target.type == 'duckdb',
) }}
{%- set events = source('raw', 'edume_events') -%}
{%- set headers = ['content_type', 'content_encoding', 'user_agent'] -%}
{%- set columns = adapter.get_columns_in_relation(events) | map(attribute='name') | list
    if execute else [] -%}
{%- set watermark -%}
    {%- if is_incremental() and execute -%}
        {%- set newest = run_query('select max(loaded_at) from ' ~ this).columns[0].values()[0] -%}
        cast('{{ newest if newest is not none else "1970-01-01 00:00:00" }}' as timestamp)
    {%- endif -%}
{%- endset -%}

{#- (header, value, delivery_id, loaded_at) of the rows of __events__, one per header. -#}
{%- set envelope_pairs -%}
    select '(delivery)' as header, '(any)' as value, delivery_id, loaded_at from __events__
    {%- for header in headers %}
    union all
    select '{{ header }}' as header, coalesce({{ header }}, '(none)') as value, delivery_id,
        loaded_at
    from __events__
    {%- endfor %}
{%- endset %}
with

{#- Not materialized: DuckDB would otherwise copy all of raw's rows for the two reads below,
    each of which needs only a few (those loaded since the watermark, and their earlier copies). #}
raw_events as not materialized (
    select
        delivery_id,
        loaded_at,
        {%- for header in headers %}
        {{ header if header in columns else 'cast(null as varchar) as ' ~ header }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ events }}
),

{% if is_incremental() %}
new_events as (
    select * from raw_events where loaded_at > {{ watermark }}
),

earlier_events as (
    select * from raw_events
    where loaded_at <= {{ watermark }}
        and delivery_id in (select delivery_id from new_events)
),

new_pairs as (
    select header, value, delivery_id, min(loaded_at) as loaded_at
    from ({{ envelope_pairs.replace('__events__', 'new_events') }}) as pairs
    group by header, value, delivery_id
),

earlier_pairs as (
    select distinct header, value, delivery_id
    from ({{ envelope_pairs.replace('__events__', 'earlier_events') }}) as pairs
),

additions as (
    select
        new_pairs.header,
        new_pairs.value,
        count(*) as count_new_deliveries,
        max(new_pairs.loaded_at) as loaded_at
    from new_pairs
    left join earlier_pairs
        on earlier_pairs.header = new_pairs.header and earlier_pairs.value = new_pairs.value
        and earlier_pairs.delivery_id = new_pairs.delivery_id
    where earlier_pairs.delivery_id is null
    group by new_pairs.header, new_pairs.value
),

final as (
    select
        additions.header,
        additions.value,
        coalesce(previous.count_deliveries, 0) + additions.count_new_deliveries
            as count_deliveries,
        additions.loaded_at
    from additions
    left join {{ this }} as previous
        on previous.header = additions.header and previous.value = additions.value
)
{% else %}
pairs as (
    select header, value, delivery_id, min(loaded_at) as loaded_at
    from ({{ envelope_pairs.replace('__events__', 'raw_events') }}) as pairs
    group by header, value, delivery_id
),

final as (
    select header, value, count(*) as count_deliveries, max(loaded_at) as loaded_at
    from pairs
    group by header, value
)
{% endif %}

select * from final
