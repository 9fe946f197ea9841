"""Asset checks on the raw table: one per eduMe event type, "payloads match the contract".

Each is a WARN: a deviating payload still loads (staging reads NULL where a path is missing or
of another type), so the marts are built, and the check says which paths deviate, in how many
deliveries, and which staging columns and marts they feed. The deviations are recorded by
:func:`pipeline.contracts.check.check_new_deliveries`, which the raw asset runs after each load.

:func:`contract_check_result` is the plain function (any runner can evaluate it);
:func:`build_contract_checks` wraps it: one ``@dg.multi_asset_check`` whose single step reads the
deviations once and reports one check per event type (ten steps would cost a micro-batch ten
step start-ups).
"""

# No `from __future__ import annotations`: Dagster reads these type hints at definition time.
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from pipeline.contracts.check import read_deviations
from pipeline.contracts.lineage import load_manifest, marts_fed_by
from pipeline.contracts.schema import load_contracts
from pipeline.defs.assets import RAW_EVENTS
from pipeline.defs.resources import EdumePaths
from pipeline.warehouse_lock import warehouse_lock

MAX_PATHS_IN_METADATA = 20


def contract_check_name(event_type: str) -> str:
    """``learner.activity.finished`` -> ``payloads_match_contract_learner_activity_finished``."""
    return "payloads_match_contract_" + re.sub(r"\W", "_", event_type)


def contract_check_result(
    event_type: str,
    deviations: Sequence[Mapping[str, Any]],
    manifest: Mapping[str, Any] | None,
) -> dg.AssetCheckResult:
    """Passes when no delivery of ``event_type`` deviates; else WARNs with one metadata entry
    per deviating path: problem, deliveries, example delivery, readers, marts fed."""
    mine = [d for d in deviations if d["event_type"] == event_type]
    metadata: dict[str, Any] = {
        "deviating_paths": len({d["path"] for d in mine}),
        "deviating_deliveries_max": max((int(d["deliveries"]) for d in mine), default=0),
    }
    for row in mine[:MAX_PATHS_IN_METADATA]:
        readers = [r.strip() for r in (row.get("read_by") or "").split(",") if r.strip()]
        marts = marts_fed_by(manifest, readers)
        metadata[f"{row['path']} ({row['problem']})"] = (
            f"expected {row['expected']}, seen {row['seen']} in {row['deliveries']} "
            f"deliveries (e.g. {row['example_delivery_id']}); "
            f"read by {', '.join(readers) or 'nothing'}; feeds {', '.join(marts) or 'no mart'}"
        )
    return dg.AssetCheckResult(
        asset_key=RAW_EVENTS,
        check_name=contract_check_name(event_type),
        passed=not mine,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if not mine else f"{event_type} payloads differ from the contract",
        metadata=metadata,
    )


def _read(paths: EdumePaths) -> list[dict[str, Any]]:
    with (
        warehouse_lock(paths.warehouse_path),
        duckdb.connect(paths.warehouse, read_only=True) as con,
    ):
        return read_deviations(con)


def build_contract_checks(manifest_path: Path) -> list[dg.AssetChecksDefinition]:
    """One WARN check per contract's event type on ``raw.edume_events``, evaluated together;
    lineage from the dbt manifest at ``manifest_path`` (read when the checks run)."""
    specs = [
        dg.AssetCheckSpec(
            contract_check_name(event_type),
            asset=RAW_EVENTS,
            description=f"Every loaded {event_type} body matches its payload contract "
            f"(pipeline/contracts/edume/{event_type}.json).",
        )
        for event_type in load_contracts()
    ]

    @dg.multi_asset_check(
        specs=specs,
        name="payloads_match_contracts",
        description="Loaded bodies against their event type's payload contract.",
    )
    def payloads_match_contracts(paths: EdumePaths) -> Iterator[dg.AssetCheckResult]:
        deviations, manifest = _read(paths), load_manifest(manifest_path)
        for event_type in load_contracts():
            yield contract_check_result(event_type, deviations, manifest)

    return [payloads_match_contracts]
