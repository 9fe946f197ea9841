{#- Grain: one row per (header, value): the HTTP envelope eduMe's client sends (media type,
    content encoding, user agent), with how many distinct deliveries carried it. '(none)': the
    header was absent, or the line was landed before the receiver recorded headers. -#}
{%- set events = source('raw', 'edume_events') -%}
{%- set columns = adapter.get_columns_in_relation(events) | map(attribute='name') | list
    if execute else [] -%}
with

events as (
    select
        delivery_id,
        {%- for header in ['content_type', 'content_encoding', 'user_agent'] %}
        {{ header if header in columns else 'cast(null as varchar) as ' ~ header }}
        {%- if not loop.last %},{% endif %}
        {%- endfor %}
    from {{ events }}
),

headers as (
    {%- for header in ['content_type', 'content_encoding', 'user_agent'] %}
    select '{{ header }}' as header, delivery_id, {{ header }} as value from events
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

final as (
    select
        header,
        coalesce(value, '(none)') as value,
        count(distinct delivery_id) as count_deliveries
    from headers
    group by all
)

select * from final
