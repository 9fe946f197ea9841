{#- What the marts' contracts declare and the engines enforce.

    Mart timestamps are UTC instants: `timestamptz` on DuckDB, so a BI tool reading a mart (or
    its export) sees a zone, not a naive time. Spark's TIMESTAMP already is an instant read in
    the session's zone (UTC on the spark target), and Spark has no `timestamptz` type. -#}
{% macro utc(timestamp_expression) -%}
    {{ return(adapter.dispatch('utc', 'edume')(timestamp_expression)) }}
{%- endmacro %}

{% macro default__utc(timestamp_expression) -%}
    {{ timestamp_expression }}
{%- endmacro %}

{% macro duckdb__utc(timestamp_expression) -%}
    cast({{ timestamp_expression }} as timestamptz)
{%- endmacro %}


{#- The moment this dbt invocation started, as a literal: stamped into the `built_at` column of
    the rows an incremental model (re)writes in this run, so that data tests can be scoped to
    them (see get_where_subquery). -#}
{% macro this_run() -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}' as timestamp)
{%- endmacro %}


{#- dbt's own macro, overridden: a data test's `where` config may name `__this_run__`, which
    becomes this_run() here, at run time. The `where` config itself is rendered when the project
    is parsed, and a partial parse keeps that rendering across runs, so a moment written into it
    with Jinja would be the parse's, not the run's. With `where: "built_at = __this_run__"` a test
    of an incremental model checks only the rows this run wrote: the other rows were checked
    when they were written and have not changed since. A full refresh (and Spark on plain
    parquet, which rebuilds every incremental model) stamps every row, so there the test covers
    the whole table. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- set where = where | replace('__this_run__', edume.this_run()) -%}
        {%- do return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}


{#- One-time upgrade of a warehouse built before the contracts (an on-run-start hook of `dbt
    build` and `dbt run`; a no-op afterwards and on engines without constraints):
    - the lookup indexes the project used to create on learner_course_key are dropped: the
      primary keys now index it, and DuckDB renames no table that has an index;
    - an incremental model's table that lacks the primary key of its contract, or has fewer
      CHECK constraints than its contract declares (the checks that replaced data tests), is
      dropped, so this run builds it in full with its constraints (an incremental model equals
      its full refresh, so nothing is lost; only this one run is slower). -#}
{% macro upgrade_to_constraints() -%}
    {{ return(adapter.dispatch('upgrade_to_constraints', 'edume')()) }}
{%- endmacro %}

{% macro default__upgrade_to_constraints() -%}
    select 1
{%- endmacro %}

{% macro duckdb__upgrade_to_constraints() -%}
    {%- if execute and flags.WHICH in ('build', 'run') -%}
        {%- set indexes = run_query(
            "select schema_name, index_name from duckdb_indexes() "
            ~ "where database_name = current_database() and index_name like '%__learner_course_key'") -%}
        {%- for row in indexes.rows -%}
            {%- do run_query('drop index if exists "' ~ row[0] ~ '"."' ~ row[1] ~ '"') -%}
        {%- endfor -%}
        {#- One catalog query for every table (it runs at every build): its primary keys and
            CHECKs. -#}
        {%- set tables = {} -%}
        {%- for row in run_query(
                "select tables.schema_name || '.' || tables.table_name, "
                ~ "count(*) filter (where constraint_type = 'PRIMARY KEY'), "
                ~ "count(*) filter (where constraint_type = 'CHECK') "
                ~ "from duckdb_tables() as tables left join duckdb_constraints() as constraints "
                ~ "using (database_name, schema_name, table_name) "
                ~ "where tables.database_name = current_database() group by all").rows -%}
            {%- do tables.update({row[0]: row}) -%}
        {%- endfor -%}
        {%- for node in graph.nodes.values()
                if node.resource_type == 'model' and node.config.materialized == 'incremental'
                and node.config.contract.enforced -%}
            {%- set declared = node.constraints | list -%}
            {%- for column in node.columns.values() -%}
                {%- do declared.extend(column.constraints) -%}
            {%- endfor -%}
            {%- set keyed = declared | selectattr('type', 'equalto', 'primary_key') | list | length -%}
            {%- set checks = declared | selectattr('type', 'equalto', 'check') | list | length -%}
            {%- set row = tables.get(node.schema ~ '.' ~ node.alias) -%}
            {%- if row and ((keyed and row[1] == 0) or row[2] < checks) -%}
                {{ log('Rebuilding ' ~ node.schema ~ '.' ~ node.alias ~ ' in full: its table predates the constraints of its contract.', info=true) }}
                {#- Through the adapter, so that dbt's relation cache forgets the table too
                    and the model's is_incremental() is false in this run. -#}
                {%- do adapter.drop_relation(api.Relation.create(
                    database=node.database, schema=node.schema, identifier=node.alias,
                    type='table')) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    select 1
{%- endmacro %}
