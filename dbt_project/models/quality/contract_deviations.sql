{#- Grain: one row per (event type, path, problem, expected, seen): where landed payloads differ
    from the per-event-type contracts (pipeline/contracts/edume/), as checked after each load by
    pipeline.contracts.check, with the staging columns that read the path and the marts they
    feed. Empty before the first check. -#}
{%- set deviations_source = source('raw', 'edume_contract_deviations') -%}
{%- set checked = not execute or adapter.get_relation(
    database=deviations_source.database,
    schema=deviations_source.schema,
    identifier=deviations_source.identifier) is not none -%}
with

deviations as (
    {%- if checked %}
    select * from {{ deviations_source }}
    {%- else %}
    select
        cast(null as varchar) as event_type, cast(null as varchar) as path,
        cast(null as varchar) as problem, cast(null as varchar) as expected,
        cast(null as varchar) as seen, cast(null as bigint) as deliveries,
        cast(null as timestamp) as first_received_at, cast(null as timestamp) as last_received_at,
        cast(null as varchar) as example_delivery_id, cast(null as varchar) as read_by
    where false
    {%- endif %}
),

lineage as (
    {{ edume.marts_lineage() }}
),

readers as (
    select
        deviations.event_type, deviations.path, deviations.problem, deviations.expected,
        deviations.seen,
        trim(reader.reader) as reader
    from deviations
    cross join unnest(string_split(coalesce(deviations.read_by, ''), ',')) as reader (reader)
    where trim(reader.reader) <> ''
),

fed as (
    select
        readers.event_type, readers.path, readers.problem, readers.expected, readers.seen,
        string_agg(distinct lineage.mart, ', ' order by lineage.mart) as feeds_marts
    from readers
    inner join lineage
        on lineage.model = regexp_replace(readers.reader, '\.[^.]+$', '')
    group by all
),

final as (
    select
        deviations.event_type,
        deviations.path,
        deviations.problem,
        deviations.expected,
        deviations.seen,
        deviations.deliveries as count_deliveries,
        {{ edume.utc('deviations.first_received_at') }} as first_received_at,
        {{ edume.utc('deviations.last_received_at') }} as last_received_at,
        deviations.example_delivery_id,
        nullif(deviations.read_by, '') as read_by,
        fed.feeds_marts
    from deviations
    left join fed
        on fed.event_type = deviations.event_type and fed.path = deviations.path
        and fed.problem = deviations.problem and fed.expected = deviations.expected
        and fed.seen = deviations.seen
)

select * from final
