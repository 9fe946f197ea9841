{#- The payload-contract report's lineage: a query with one row per (model, mart) where `model`
    (a dbt model's name, or `raw.edume_events` for the raw source) is upstream of the mart
    (a model under models/marts). Built from dbt's graph at execution time; empty while parsing.
    pipeline/contracts/lineage.py answers the same question from manifest.json for the CLI. -#}
{% macro marts_lineage() -%}
    {%- set pairs = [] -%}
    {%- if execute -%}
        {%- for mart_id, mart in graph.nodes.items()
            if mart.resource_type == 'model' and 'marts' in mart.fqn -%}
            {%- set walk = namespace(frontier=[mart_id], seen=[]) -%}
            {#- dbt's DAG is acyclic: the walk ends once the frontier is empty. -#}
            {%- for _ in range(graph.nodes | length) if walk.frontier -%}
                {%- set parents = [] -%}
                {%- for node_id in walk.frontier -%}
                    {%- set node = graph.nodes.get(node_id) -%}
                    {%- for parent in (node.depends_on.nodes if node else [])
                        if parent not in walk.seen -%}
                        {%- do walk.seen.append(parent) -%}
                        {%- do parents.append(parent) -%}
                    {%- endfor -%}
                {%- endfor -%}
                {%- set walk.frontier = parents -%}
            {%- endfor -%}
            {%- for ancestor in walk.seen -%}
                {%- if ancestor in graph.nodes and graph.nodes[ancestor].resource_type == 'model' -%}
                    {%- do pairs.append((graph.nodes[ancestor].name, mart.name)) -%}
                {%- elif ancestor in graph.sources -%}
                    {%- set source_node = graph.sources[ancestor] -%}
                    {%- do pairs.append((source_node.source_name ~ '.' ~ source_node.name, mart.name)) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if pairs -%}
        select * from (values
        {%- for model, mart in pairs | unique | sort %}
            ('{{ model }}', '{{ mart }}'){% if not loop.last %},{% endif %}
        {%- endfor %}
        ) as lineage (model, mart)
    {%- else -%}
        select cast(null as varchar) as model, cast(null as varchar) as mart where false
    {%- endif -%}
{%- endmacro %}
