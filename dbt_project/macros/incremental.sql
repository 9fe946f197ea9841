{#- The incremental strategy that replaces rows by unique_key on this engine: DuckDB has
    delete+insert; engines with MERGE (Spark on Delta/Iceberg) override this. -#}
{% macro upsert_strategy() -%}
    {{ return(adapter.dispatch('upsert_strategy', 'edume')()) }}
{%- endmacro %}

{% macro default__upsert_strategy() -%}
    {{ return('merge') }}
{%- endmacro %}

{% macro duckdb__upsert_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}


{#- Rows loaded AFTER this moment are read by an incremental run: the newest loaded_at already
    processed, minus var('incremental_lookback_minutes'). The loader stamps each batch with its
    transaction's time and commits it whole, and loads and builds are serialised by the
    warehouse lock, so the default lookback of 0 is exact; raise it only if something loads
    outside the lock (re-reading is idempotent, merely slower). Rendered as a literal, read
    before the model runs, so that the engine filters raw rows before parsing any JSON and can
    skip whole row groups by their min/max. A model whose table is still empty (e.g. no
    quarantined delivery yet) has no watermark and reads every row, which is correct, only
    slower. -#}
{% macro incremental_watermark(watermark_column='loaded_at') -%}
    {%- if execute -%}
        {%- set newest = run_query(
            'select ' ~ edume.add_minutes('max(' ~ watermark_column ~ ')',
                                          -1 * var('incremental_lookback_minutes'))
            ~ ' from ' ~ this) -%}
        {%- set value = newest.columns[0].values()[0] -%}
        cast('{{ value if value is not none else "1970-01-01 00:00:00" }}' as timestamp)
    {%- else -%}
        cast('1970-01-01 00:00:00' as timestamp)
    {%- endif -%}
{%- endmacro %}


{#- A predicate on loaded_at selecting the rows an incremental run must read; `true` otherwise.
    Put it as close to the raw scan as possible (e.g. in every branch of a union) so the engine
    skips old rows before any JSON is parsed. -#}
{% macro loaded_since_last_run() -%}
    {%- if is_incremental() -%}
        loaded_at > {{ edume.incremental_watermark() }}
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}


{#- The body of a deduplicating model: one row per delivery_id among the rows of `relation`
    (which has `columns`, among them delivery_id, received_at, loaded_at, segment, line_number),
    keeping the earliest copy (received_at, then segment and line) and, as loaded_at, the newest
    copy's, a safe watermark.

    Incremental: only rows loaded since the watermark are read; the copies already kept for the
    same delivery_ids (looked up by their listed ids, see listed_keys) are re-ranked with them,
    so the result equals a full refresh whatever order the copies were loaded in. Pair with
    unique_key='delivery_id'. Every row written gets built_at = this_run(), which scopes data
    tests to the rows of the run. -#}
{% macro keep_earliest_copies(relation, columns) -%}
with

new_copies as (
    select {{ columns | join(', ') }}
    from {{ relation }}
    where {{ edume.loaded_since_last_run() }}
),

copies as (
    select * from new_copies
    {% if is_incremental() %}
    union all
    select {{ columns | join(', ') }}
    from {{ this }}
    where delivery_id in ({{ edume.listed_keys(
        'select distinct delivery_id from ' ~ relation ~ ' where ' ~ edume.loaded_since_last_run(),
        'select delivery_id from new_copies') }})
    {% endif %}
),

copies_ranked as (
    select
        *,
        row_number() over (
            partition by delivery_id order by received_at, segment, line_number
        ) as copy_number,
        max(loaded_at) over (partition by delivery_id) as newest_loaded_at
    from copies
),

final as (
    select
        {% for column in columns if column != 'loaded_at' %}{{ column }},
        {% endfor %}newest_loaded_at as loaded_at,
        {{ edume.this_run() }} as built_at
    from copies_ranked
    where copy_number = 1
)

select * from final
{%- endmacro %}


{#- The keys `query` returns (one column of text), rendered as a list of literals for an
    `in (...)` filter, so that the engine looks them up in the target's primary-key index (or
    skips row groups by their min/max) instead of scanning the whole key column to probe a
    join: a micro-batch's handful of keys then costs the same whatever the table's size. More
    than `max_keys` keys (a large catch-up load): `fallback`, a subquery returning the same
    keys. No key: null (matches nothing). Numbers are rendered as numbers, anything else as a
    quoted string. Run when the model runs, after its parents. -#}
{% macro listed_keys(query, fallback, max_keys=1000) -%}
    {%- if execute -%}
        {%- set keys = run_query(query ~ ' limit ' ~ (max_keys + 1)).columns[0].values() -%}
        {%- if keys | length == 0 -%}
            null
        {%- elif keys | length <= max_keys -%}
            {%- for key in keys -%}
                {{ key if key is number else "'" ~ (key | string | replace("'", "''")) ~ "'" }}
                {{- ', ' if not loop.last }}
            {%- endfor -%}
        {%- else -%}
            {{ fallback }}
        {%- endif -%}
    {%- else -%}
        {{ fallback }}
    {%- endif -%}
{%- endmacro %}


{% macro add_minutes(timestamp_expression, minutes) -%}
    {{ return(adapter.dispatch('add_minutes', 'edume')(timestamp_expression, minutes)) }}
{%- endmacro %}

{% macro duckdb__add_minutes(timestamp_expression, minutes) -%}
    ({{ timestamp_expression }} + to_minutes(cast({{ minutes }} as bigint)))
{%- endmacro %}


{#- dbt-duckdb's delete+insert, but for a one-column unique key the rows replaced are deleted by
    their listed keys (listed_keys): `delete ... where key in (select key from <new rows>)`
    scanned the whole key column of the target at every run, a cost that grew with the table,
    where the listed keys are looked up in its primary-key index. Otherwise dbt-duckdb's own SQL
    (a composite key: a join on every key column). -#}
{% macro duckdb__get_delete_insert_merge_sql(target, source, unique_key, dest_columns, incremental_predicates) -%}
    {%- set dest_cols_csv = get_quoted_csv(dest_columns | map(attribute="name")) -%}
    {%- if unique_key is string %}
        delete from {{ target }}
        where {{ unique_key }} in ({{ edume.listed_keys(
            'select distinct ' ~ unique_key ~ ' from ' ~ source,
            'select ' ~ unique_key ~ ' from ' ~ source) }})
        {%- for predicate in incremental_predicates or [] %}
            and {{ predicate }}
        {%- endfor %};
    {%- elif unique_key %}
        delete from {{ target }} as DBT_INCREMENTAL_TARGET
        using {{ source }}
        where (
            {%- for key in unique_key %}
            {{ source }}.{{ key }} = DBT_INCREMENTAL_TARGET.{{ key }}
            {{- " and" if not loop.last }}
            {%- endfor %}
            {%- for predicate in incremental_predicates or [] %}
            and {{ predicate }}
            {%- endfor %}
        );
    {%- endif %}

    insert into {{ target }} ({{ dest_cols_csv }})
    (
        select {{ dest_cols_csv }}
        from {{ source }}
    )
{%- endmacro %}


{#- The learners an incremental run recomputes: those named by an event of
    int_learner_events_deduplicated loaded since the newest loaded_at the running model holds, as
    listed literals (listed_keys), for `learner_id in (...)`; none for a full build. The engine
    then filters its scan by learner before reading any other column, where a join with the
    touched learners read every column of every event to probe it, a cost that grew with the
    table. `condition`: a further filter on those events. Call it once per model (it queries)
    and pass the result to in_touched_learners. -#}
{% macro touched_learner_ids(condition='true') -%}
    {%- if is_incremental() -%}
        {%- set touched = 'select distinct learner_id from '
            ~ ref('int_learner_events_deduplicated')
            ~ ' where learner_id is not null and ' ~ condition
            ~ ' and ' ~ edume.loaded_since_last_run() -%}
        {{ return(edume.listed_keys(touched, touched)) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}


{% macro in_touched_learners(column, ids) -%}
    {%- if ids is none -%} true {%- else -%} {{ column }} in ({{ ids }}) {%- endif -%}
{%- endmacro %}
