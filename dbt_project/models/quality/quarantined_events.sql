{#- Grain: one row per (event type, reason): deliveries kept aside because they cannot be
    processed (an event type not in the catalogue, a missing id, an unparseable timestamp),
    with how many distinct deliveries and landed copies. -#}
select
    coalesce(event_type, '(none)') as event_type,
    invalid_reason,
    count(*) as count_deliveries,
    cast(sum(count_copies) as bigint) as count_copies
from {{ ref('int_events_quarantined') }}
group by coalesce(event_type, '(none)'), invalid_reason
