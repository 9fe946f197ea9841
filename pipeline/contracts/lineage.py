"""Which staging columns read a payload path, and which marts those staging models feed.

The contracts name the staging columns that read each path (``x-read-by``); the test suite
proves those names against the staging SQL with :func:`staging_reads`. The marts downstream of a
staging model come from dbt's manifest (``child_map``), so a deviation can say what it breaks:
``payload.user.userId missing in 3 deliveries -> stg_edume__learner_events.learner_id ->
dim_learners, fct_learner_activity, ...``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# `{{ edume.json_bigint('body', '$.payload.user.userId') }} as learner_id`, possibly wrapped in
# another macro; one column per line, as the staging models are written.
_READ = re.compile(r"edume\.json_\w+\('(body|element)', '\$\.([^']*)'\).*?\bas (\w+)")
# `{{ edume.json_array_elements('source', 'body', '$.payload.teams', [...]) }}`: `element` reads.
_ELEMENTS = re.compile(r"edume\.json_array_elements\('\w+', 'body', '\$\.([^']*)'")
# Raw columns the loader derives from the envelope: staging reads the path through them.
LOADER_COLUMNS = {"event_type": "type", "event_timestamp": "timestamp"}


@dataclass(frozen=True, order=True)
class Read:
    """Staging ``model``'s ``column`` reads the dotted payload ``path``."""

    path: str
    model: str
    column: str

    @property
    def reader(self) -> str:
        return f"{self.model}.{self.column}"


def staging_reads(model: str, sql: str) -> list[Read]:
    """Every payload path a staging model's SQL reads, with the column it becomes.

    Paths inside an array (read from ``element``) get the array's path and ``[]``; a model
    selecting the loader's ``event_type`` / ``event_timestamp`` reads ``type`` / ``timestamp``
    (the contract names those readers ``raw.edume_events.<column>``).
    """
    elements = _ELEMENTS.search(sql)
    reads = []
    for line in sql.splitlines():
        for source, path, column in _READ.findall(line):
            if source == "element":
                if elements is None:
                    raise ValueError(f"{model} reads `element` without json_array_elements")
                path = f"{elements.group(1)}[].{path}"
            reads.append(Read(path, model, column))
        for column, path in LOADER_COLUMNS.items():
            if re.search(rf"^\s*{column}( as \w+)?,?\s*$", line):
                reads.append(Read(path, "raw.edume_events", column))
    return sorted(set(reads))


def staging_reads_in(folder: Path) -> list[Read]:
    """:func:`staging_reads` over every ``*.sql`` model in ``folder``."""
    return sorted(
        {
            read
            for path in folder.glob("*.sql")
            for read in staging_reads(path.stem, path.read_text())
        }
    )


def load_manifest(path: Path) -> Mapping[str, Any] | None:
    """dbt's ``manifest.json`` at ``path``, or None when dbt has not parsed the project there."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def marts_fed_by(manifest: Mapping[str, Any] | None, readers: Iterable[str]) -> list[str]:
    """The marts downstream of the models named in ``readers`` (``model.column``), sorted.

    A reader ``raw.edume_events.<column>`` feeds every mart. Empty without a manifest.
    """
    if manifest is None:
        return []
    nodes = manifest.get("nodes", {})
    children = manifest.get("child_map", {})
    by_name = {n["name"]: i for i, n in nodes.items() if n.get("resource_type") == "model"}
    starts = []
    for reader in readers:
        model = reader.rsplit(".", 1)[0]
        if model == "raw.edume_events":
            starts += [
                i for i in children if i.startswith("source.") and i.endswith(".raw.edume_events")
            ]
        elif model in by_name:
            starts.append(by_name[model])
    seen: set[str] = set()
    pending = list(starts)
    while pending:
        node = pending.pop()
        for child in children.get(node, ()):
            if child not in seen:
                seen.add(child)
                pending.append(child)
    return sorted(
        nodes[i]["name"]
        for i in seen
        if i in nodes and nodes[i].get("resource_type") == "model" and "marts" in nodes[i]["fqn"]
    )
