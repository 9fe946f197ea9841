{#- Grain: one row per (header, value): the HTTP envelope eduMe's client sends (media type,
    content encoding, user agent), with how many distinct deliveries carried it. '(none)': the
    header was absent, or the line was landed before the receiver recorded headers. The counts
    are kept up to date incrementally by int_delivery_envelopes_aggregated. -#}
with

envelopes as (
    select header, value, count_deliveries
    from {{ ref('int_delivery_envelopes_aggregated') }}
    where header <> '(delivery)'
),

final as (
    select header, value, count_deliveries from envelopes
)

select * from final
