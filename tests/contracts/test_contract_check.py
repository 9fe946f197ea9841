"""Every loaded body is checked against its type's contract: clean traffic is clean, and each
kind of deviation is reported at the right path, with the right problem and delivery count."""

from __future__ import annotations

import copy
from pathlib import Path

import contract_kit
import duckdb
import jsonschema
import pytest
from contract_kit import (
    body,
    deviations,
    documented_samples,
    land_and_check,
    learner_added,
)

from pipeline.contracts import check
from pipeline.contracts.schema import expected_types, load_contracts, schema_leaves
from pipeline.simulator.deliveries import serialise
from pipeline.simulator.generate import journeys


@pytest.fixture(autouse=True, params=[True, False], ids=["format-3", "format-2"])
def line_format(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test runs on lines whose shape the receiver named, and on older lines."""
    monkeypatch.setattr(contract_kit, "NAMED_SHAPES", request.param)


def _summary(workspace: Path) -> set[tuple[str, str, str, str, str, int]]:
    return {
        (d["event_type"], d["path"], d["problem"], d["expected"], d["seen"], d["deliveries"])
        for d in deviations(workspace)
    }


def test_every_contract_is_valid_json_schema_2020_12() -> None:
    for contract in load_contracts().values():
        jsonschema.Draft202012Validator.check_schema(contract)


@pytest.mark.parametrize("sample", documented_samples(), ids=lambda s: s["type"])
def test_documented_samples_validate_against_their_contracts(sample: dict) -> None:
    jsonschema.Draft202012Validator(load_contracts()[sample["type"]]).validate(sample)


def test_documented_samples_load_without_a_deviation(tmp_path: Path) -> None:
    result = land_and_check(tmp_path, [body(s) for s in documented_samples()])
    assert result.rows_checked == 2
    assert deviations(tmp_path) == []


def test_simulator_traffic_loads_without_a_deviation(tmp_path: Path) -> None:
    _, batches = journeys(learners=40, seed=3)
    bodies = [serialise(event) for batch in batches for event in batch]
    result = land_and_check(tmp_path, bodies)
    assert result.rows_checked == len(bodies)
    assert {b.split(b'"', 4)[3] for b in bodies} >= {b"course.updated", b"learner.course.completed"}
    assert deviations(tmp_path) == []


def test_a_renamed_field_is_missing_at_its_old_path_and_unexpected_at_its_new_one(
    tmp_path: Path,
) -> None:
    renamed = [learner_added(9000 + i, userId=None, id=9000 + i) for i in range(3)]
    land_and_check(tmp_path, [body(e) for e in renamed] + [body(learner_added(1))])
    assert _summary(tmp_path) == {
        ("learner.added", "payload.user.userId", "missing", "integer", "absent", 3),
        ("learner.added", "payload.user.id", "unexpected", "absent", "integer", 3),
    }


def test_a_score_sent_as_a_string_is_a_type_deviation(tmp_path: Path) -> None:
    finished = {
        "type": "learner.activity.finished",
        "payload": {
            "group": {"groupId": 1297},
            "user": {"userId": 7, "firstName": "Ada", "lastName": "Okafor"},
            "course": {"courseId": 14148, "courseKey": "k", "title": "t"},
            "module": {"moduleId": 15010},
            "activity": {"type": "assessment", "activityId": 6743},
            "result": {"score": "85", "passed": True},
        },
        "timestamp": "2026-11-01T08:00:00.000Z",
    }
    as_number = copy.deepcopy(finished)
    as_number["payload"]["result"]["score"] = 85.5
    as_number["timestamp"] = "2026-11-01T08:00:01.000Z"
    land_and_check(tmp_path, [body(finished), body(as_number)])
    assert _summary(tmp_path) == {
        ("learner.activity.finished", "payload.result.score", "type", "number", "string", 1)
    }


def test_an_id_sent_with_a_fraction_is_a_number_not_an_integer(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(5, userId=5.0))])
    assert _summary(tmp_path) == {
        ("learner.added", "payload.user.userId", "type", "integer", "number", 1)
    }


def test_an_extra_field_is_unexpected_at_its_path(tmp_path: Path) -> None:
    extra = learner_added(11)
    extra["payload"]["locale"] = {"language": "en"}
    land_and_check(tmp_path, [body(extra)])
    assert _summary(tmp_path) == {
        ("learner.added", "payload.locale", "unexpected", "absent", "object", 1)
    }


def test_a_missing_required_field_is_reported_missing(tmp_path: Path) -> None:
    samples = documented_samples()
    for index in range(2):
        added = copy.deepcopy(samples[0])
        del added["payload"]["course"]["courseKey"]
        added["timestamp"] = f"2023-05-31T11:42:5{index}.000Z"
        samples.append(added)
    land_and_check(tmp_path, [body(s) for s in samples])
    assert _summary(tmp_path) == {
        ("course.added", "payload.course.courseKey", "missing", "string", "absent", 2)
    }


def test_an_array_item_of_a_new_shape_is_reported_at_the_item_path(tmp_path: Path) -> None:
    # json_structure() merges array items: an item without `published`, next to items that
    # have it, is invisible in the merged structure. Items are checked one by one.
    added = documented_samples()[0]
    added["payload"]["activities"].append({"activityId": 9001, "type": "video"})
    added["payload"]["activities"].append({"activityId": "9002", "published": True, "type": "x"})
    added["payload"]["teams"] = [{"teamId": 3493}, {"teamId": 3494, "name": "Drivers"}]
    land_and_check(tmp_path, [body(added)])
    assert _summary(tmp_path) == {
        ("course.added", "payload.activities[].published", "missing", "boolean", "absent", 1),
        ("course.added", "payload.activities[].activityId", "type", "integer", "string", 1),
        ("course.added", "payload.teams[].name", "unexpected", "absent", "string", 1),
    }


def test_arrays_of_other_ids_are_one_shape_and_an_item_of_a_second_shape_is_found(
    tmp_path: Path,
) -> None:
    # The check reduces each array to the distinct shapes of its items: arrays that differ only
    # in their values make one pair, not one per delivery. An array whose items have two shapes
    # (a null id next to integer ones: json_structure() merges them to an integer; an item that
    # is not an object) is still found, in the deliveries that have it and only those.
    clean = [learner_added(100 + i) for i in range(6)]
    for i, event in enumerate(clean):
        event["payload"]["teams"] = [{"teamId": 3000 + i}, {"teamId": 4000 + i}]
    nulled = [learner_added(200 + i) for i in range(2)]
    for event in nulled:
        event["payload"]["teams"] = [{"teamId": 3493}, {"teamId": None}]
    mixed = learner_added(300)
    mixed["payload"]["teams"] = [{"teamId": 3493}, 3494]
    result = land_and_check(tmp_path, [body(e) for e in [*clean, *nulled, mixed]])
    assert (result.rows_checked, result.shapes, result.deviating_rows) == (9, 3, 3)
    assert _summary(tmp_path) == {
        ("learner.added", "payload.teams[].teamId", "type", "integer", "null", 2),
        ("learner.added", "payload.teams[]", "type", "object", "integer", 1),
    }


def test_no_contract_declares_an_array_inside_array_items() -> None:
    # Items are compared by their json_structure(), which merges the items of an array nested
    # in them: a contract declaring one needs the check to look at those items too.
    for contract in load_contracts().values():
        for path, node in schema_leaves(contract):
            assert not ("[]" in path and "array" in expected_types(node)), path


def test_a_delivery_landed_again_in_a_later_load_counts_once(tmp_path: Path) -> None:
    renamed = body(learner_added(21, userId=None, id=21))
    first = land_and_check(tmp_path, [renamed], segment="seg-1")
    second = land_and_check(tmp_path, [renamed, body(learner_added(22))], segment="seg-2")
    assert (first.rows_checked, second.rows_checked) == (1, 2)  # each load: its new rows only
    (missing,) = [d for d in deviations(tmp_path) if d["problem"] == "missing"]
    assert missing["deliveries"] == 1
    assert missing["first_received_at"] <= missing["last_received_at"]


def test_a_check_with_nothing_new_reads_nothing(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(1))])
    again = land_and_check(tmp_path, [], segment="seg-empty")
    assert again.rows_checked == 0


def test_a_deviation_names_the_staging_columns_that_read_its_path(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(31, userId=None, id=31))])
    by_path = {d["path"]: d for d in deviations(tmp_path)}
    assert by_path["payload.user.userId"]["read_by"] == "stg_edume__learner_events.learner_id"
    assert by_path["payload.user.userId"]["example_delivery_id"]
    assert by_path["payload.user.id"]["read_by"] == ""


def test_changed_contracts_recheck_every_loaded_body(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_and_check(tmp_path, [body(learner_added(41, userId=None, id=41))])
    amended = copy.deepcopy(dict(load_contracts()))
    user = amended["learner.added"]["properties"]["payload"]["properties"]["user"]
    user["properties"]["id"] = {"type": "integer", "x-provenance": "observed"}
    user["required"] = [k for k in user["required"] if k != "userId"]
    monkeypatch.setattr("pipeline.contracts.check.load_contracts", lambda: amended)
    again = land_and_check(tmp_path, [], segment="seg-empty")
    assert again.rechecked_all
    assert again.rows_checked == 1
    assert deviations(tmp_path) == []


def test_older_and_named_lines_of_one_deviation_count_together(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # An upgrade lands format 3 lines next to format 2 lines not loaded yet.
    monkeypatch.setattr(contract_kit, "NAMED_SHAPES", False)
    land_and_check(tmp_path, [body(learner_added(51, userId=None, id=51)), body(learner_added(52))])
    monkeypatch.setattr(contract_kit, "NAMED_SHAPES", True)
    result = land_and_check(
        tmp_path,
        [body(learner_added(53, userId=None, id=53)), body(learner_added(54))],
        segment="seg-2",
    )
    assert (result.rows_checked, result.deviating_rows) == (2, 1)
    assert ("learner.added", "payload.user.userId", "missing", "integer", "absent", 2) in _summary(
        tmp_path
    )


def _counts_from_every_delivery(workspace: Path) -> list[tuple]:
    """The deviations as counted from scratch over every recorded delivery."""
    with duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True) as con:
        return con.execute("select * from (" + check.ALL_COUNTS_QUERY + ") order by all").fetchall()


def _counts(workspace: Path) -> list[tuple]:
    with duckdb.connect(str(workspace / "warehouse.duckdb"), read_only=True) as con:
        return con.execute(
            "select * exclude (read_by) from raw.edume_contract_deviations order by all"
        ).fetchall()


def test_counts_added_load_by_load_equal_counts_from_every_delivery(tmp_path: Path) -> None:
    # Re-deliveries within a load and across loads, deviations of several shapes and a clean one.
    renamed = [body(learner_added(n, userId=None, id=n)) for n in range(60, 66)]
    typed = [body(learner_added(n, userId=str(n))) for n in range(66, 70)]
    clean = [body(learner_added(n)) for n in range(70, 73)]
    loads = [
        [*renamed[:3], renamed[0], *typed[:2], clean[0]],
        [renamed[1], *renamed[3:], typed[1], clean[1]],
        [*typed, renamed[5], clean[2], renamed[2]],
    ]
    for number, bodies in enumerate(loads):
        land_and_check(tmp_path, bodies, segment=f"seg-{number}")
    assert _counts(tmp_path) == [row[:-1] for row in _counts_from_every_delivery(tmp_path)]
    assert ("learner.added", "payload.user.userId", "missing", "integer", "absent", 6) in {
        row[:6] for row in _counts(tmp_path)
    }


def test_a_warehouse_recorded_before_the_counts_table_is_counted_once(tmp_path: Path) -> None:
    land_and_check(tmp_path, [body(learner_added(80, userId=None, id=80)), body(learner_added(81))])
    before = _counts(tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as con:
        con.execute("drop view raw.edume_contract_deviations")
        con.execute("drop table raw.edume_contract_deviation_counts")
    land_and_check(tmp_path, [body(learner_added(80, userId=None, id=80))], segment="seg-again")
    assert _counts(tmp_path) == before and before
