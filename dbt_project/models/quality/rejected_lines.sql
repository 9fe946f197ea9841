{#- Grain: one row per loader error message: landed lines that were not valid landing lines
    (torn writes, invalid UTF-8 or JSON), kept in raw.edume_rejected_lines, never dropped. -#}
select
    error,
    count(*) as count_lines,
    count(distinct segment) as count_segments,
    {{ edume.utc('min(loaded_at)') }} as first_loaded_at,
    {{ edume.utc('max(loaded_at)') }} as last_loaded_at
from {{ source('raw', 'edume_rejected_lines') }}
group by error
