{#- Incremental models on Spark.

    An upsert by unique key needs MERGE, which Spark has only on table formats such as Delta or
    Iceberg. On plain parquet (the local default) an incremental model is rebuilt in full at
    every run instead: is_incremental() is false, so the model selects everything, and
    insert_overwrite swaps the whole table. The results are those of a full refresh, which is
    what the incremental logic guarantees on DuckDB too; only the cost differs. Set
    +file_format: delta (or iceberg) with its jars on the cluster to get MERGE upserts. -#}

{% macro spark__upsert_strategy() -%}
    {{ return('merge' if edume.spark_table_format_can_merge() else 'insert_overwrite') }}
{%- endmacro %}

{% macro spark_table_format_can_merge() -%}
    {{ return(config.get('file_format', 'parquet') in ['delta', 'iceberg', 'hudi']) }}
{%- endmacro %}

{#- Overrides dbt's is_incremental() for this project; every engine but Spark on plain parquet
    keeps dbt's own answer. -#}
{% macro is_incremental() -%}
    {{ return(adapter.dispatch('is_incremental', 'edume')()) }}
{%- endmacro %}

{% macro default__is_incremental() -%}
    {{ return(dbt.is_incremental()) }}
{%- endmacro %}

{% macro spark__is_incremental() -%}
    {{ return(edume.spark_table_format_can_merge() and dbt.is_incremental()) }}
{%- endmacro %}

{% macro spark__add_minutes(timestamp_expression, minutes) -%}
    timestampadd(MINUTE, cast({{ minutes }} as bigint), {{ timestamp_expression }})
{%- endmacro %}
