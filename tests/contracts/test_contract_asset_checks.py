"""The Dagster asset check per event type warns on deviating payloads, naming the paths."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from contract_kit import body, documented_samples, land_and_check, learner_added

from pipeline.defs.contract_checks import build_contract_checks, contract_check_name
from pipeline.defs.resources import EdumePaths


def _evaluate(workspace: Path, event_type: str) -> dg.AssetCheckResult:
    (checks,) = build_contract_checks(workspace / "no-manifest.json")
    paths = EdumePaths(
        landing_dir=str(workspace / "landing"),
        warehouse=str(workspace / "warehouse.duckdb"),
        export_dir=str(workspace / "exports"),
    )
    results = {result.check_name: result for result in checks(paths=paths)}
    return results[contract_check_name(event_type)]


def test_the_check_of_a_deviating_type_warns_with_its_paths_in_metadata(tmp_path: Path) -> None:
    renamed = [learner_added(i, userId=None, id=i) for i in range(4)]
    land_and_check(tmp_path, [body(e) for e in renamed])
    result = _evaluate(tmp_path, "learner.added")
    assert not result.passed
    assert result.severity == dg.AssetCheckSeverity.WARN
    assert result.metadata["deviating_paths"].value == 2
    missing = result.metadata["payload.user.userId (missing)"].value
    assert "in 4 deliveries" in missing
    assert "stg_edume__learner_events.learner_id" in missing


def test_the_check_of_a_type_without_deviation_passes(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(1, userId=None, id=1))])
    land_and_check(tmp_path, [body(s) for s in documented_samples()], segment="seg-2")
    assert _evaluate(tmp_path, "course.added").passed


def test_there_is_one_check_per_event_type() -> None:
    (checks,) = build_contract_checks(Path("m.json"))
    names = {key.name for key in checks.check_keys}
    assert "payloads_match_contract_learner_activity_finished" in names
    assert len(names) == 10
