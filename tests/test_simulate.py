"""The simulator: deterministic, shaped and signed exactly as eduMe, accepted by a real receiver."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from system_tools import require

from pipeline.receiver.landing_format import SEALED_GLOB, parse_line
from pipeline.receiver.process import ReceiverProcess
from pipeline.settings import REPO_ROOT
from pipeline.simulator.deliveries import BAD_SIGNATURE, DUPLICATE, VALID, Noise, stream_bodies
from pipeline.simulator.generate import generate, journeys
from pipeline.simulator.post import land_bodies, land_deliveries, post_deliveries
from pipeline.simulator.simulation import build

SECRET = "sim-test-secret"

# Node.js is the reference: eduMe signs JSON.stringify(payload) with Node's crypto.
NODE_CHECK = r"""
const crypto = require('crypto');
const lines = require('fs').readFileSync(0, 'utf8').split('\n').filter(Boolean);
let mismatches = [];
for (const line of lines) {
  const {body, signature} = JSON.parse(line);
  const restringified = JSON.stringify(JSON.parse(body));
  const expected = crypto.createHmac('sha256', process.argv[1]).update(restringified).digest('hex');
  if (restringified !== body || expected !== signature) mismatches.push(body.slice(0, 120));
}
console.log(JSON.stringify({checked: lines.length, mismatches}));
"""


@pytest.fixture(scope="module")
def small() -> object:
    return build(40, seed=3, secret=SECRET.encode())


def test_the_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    first = build(30, seed=5, secret=b"s")
    again = build(30, seed=5, secret=b"s")
    other = build(30, seed=6, secret=b"s")
    assert [d.body for d in first.deliveries] == [d.body for d in again.deliveries]
    assert first.truth == again.truth
    assert [d.body for d in first.deliveries] != [d.body for d in other.deliveries]


def test_bodies_are_javascript_json_stringify_and_signatures_match_node_crypto(small) -> None:
    genuine = [d for d in small.deliveries if d.kind != BAD_SIGNATURE]
    assert any(max(d.body) > 0x7F for d in genuine)  # non-ASCII names travel unescaped
    stdin = b"".join(
        orjson.dumps({"body": d.body.decode(), "signature": d.signature}) + b"\n" for d in genuine
    )
    result = subprocess.run(
        [require("node"), "-e", NODE_CHECK, SECRET],
        input=stdin,
        capture_output=True,
        check=True,
        timeout=60,
    )
    report = json.loads(result.stdout)
    assert report == {"checked": len(genuine), "mismatches": []}


def test_every_event_type_and_course_change_of_the_contract_is_simulated(small) -> None:
    bodies = [orjson.loads(d.body) for d in small.deliveries if d.kind != BAD_SIGNATURE]
    types = Counter(b["type"] for b in bodies)
    for event_type in (
        "course.added",
        "course.deleted",
        "course.published",
        "course.unpublished",
        "course.updated",
        "learner.added",
        "learner.activated",
        "learner.activity.started",
        "learner.activity.finished",
        "learner.course.completed",
    ):
        assert types[event_type] > 0, event_type
    changes = {b["payload"]["change"]["type"] for b in bodies if b["type"] == "course.updated"}
    assert changes == {"title.changed", "team.assigned", "team.removed"}


def test_activity_payloads_follow_the_contract(small) -> None:
    bodies = [orjson.loads(d.body) for d in small.deliveries if d.kind != BAD_SIGNATURE]
    activity = [b["payload"] for b in bodies if b["type"].startswith("learner.activity.")]
    for payload in activity:
        kind = payload["activity"]["type"]
        if kind == "course":
            assert "module" not in payload and "activityId" not in payload["activity"]
        elif "course" not in payload:  # a standalone survey
            assert kind == "survey" and "module" not in payload
        else:
            assert list(payload)[:5] == ["group", "user", "course", "module", "activity"]
    assessments = [p for p in activity if p["activity"]["type"] == "assessment" and "result" in p]
    assert assessments and all(0 <= p["result"]["score"] <= 100 for p in assessments)
    assert any(not p["result"]["passed"] for p in assessments)
    assert any("course" not in p for p in activity)  # standalone surveys exist


def test_timestamps_are_iso_utc_with_milliseconds(small) -> None:
    for delivery in small.deliveries[:200]:
        stamp = orjson.loads(delivery.body)["timestamp"]
        assert len(stamp) == 24 and stamp[10] == "T" and stamp[19] == "." and stamp[-1] == "Z"


def test_duplicates_repeat_earlier_bytes_and_some_deliveries_arrive_out_of_order(small) -> None:
    seen: set[bytes] = set()
    for delivery in small.deliveries:
        if delivery.kind == DUPLICATE:
            assert delivery.body in seen  # a retry always follows its original
        seen.add(delivery.body)
    stamps = [
        orjson.loads(d.body)["timestamp"]
        for d in small.deliveries
        if d.kind not in (DUPLICATE, BAD_SIGNATURE)
    ]
    assert stamps != sorted(stamps)


def test_truth_funnels_never_increase_and_some_learners_never_activate() -> None:
    _, truth = generate(200, seed=9)
    for course in truth.courses.values():
        steps = [
            course.learners_added,
            course.learners_activated,
            course.learners_started,
            course.learners_finished_first_lesson,
            course.learners_completed,
        ]
        assert steps == sorted(steps, reverse=True), course.course_id
    assert truth.learners_never_activated > 0
    rates = [
        a.finished / a.reached
        for c in truth.courses.values()
        for a in c.activities.values()
        if a.reached >= 20
    ]
    assert max(rates) - min(rates) > 0.2  # drop-off differs by activity


def test_invalid_noise_is_refused_with_a_message_naming_the_option() -> None:
    with pytest.raises(ValueError, match="duplicate-fraction"):
        Noise(duplicate_fraction=1.5)


def test_signatures_verify_against_a_real_receiver_and_forgeries_do_not(
    tmp_path: Path, small
) -> None:
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET]) as receiver:
        report = post_deliveries(receiver.webhook_url, small.deliveries, 4, None)
        assert receiver.stop() == 0
    counts = small.truth.deliveries
    assert report.unexpected == []
    assert report.statuses == Counter(
        {204: counts["accepted"], 401: counts["rejected_bad_signature"]}
    )
    landed = [
        parse_line(line)
        for path in sorted((tmp_path / "landing").glob(SEALED_GLOB))
        for line in path.read_bytes().splitlines()
    ]
    assert len(landed) == counts["accepted"]
    assert {d.auth.signature_form for d in landed} == {"raw"}  # the raw bytes verified


def test_a_receiver_with_another_secret_refuses_every_delivery(tmp_path: Path, small) -> None:
    with ReceiverProcess(tmp_path / "landing", secrets=["someone-elses-secret"]) as receiver:
        report = post_deliveries(receiver.webhook_url, small.deliveries[:50], 4, None)
        receiver.stop()
    assert report.statuses == Counter({401: 50})
    assert not list((tmp_path / "landing").glob(SEALED_GLOB + "*"))


def test_a_receiver_that_also_wants_a_bearer_token_accepts_it_with_the_signature(
    tmp_path: Path, small
) -> None:
    deliveries = small.deliveries[:40]
    genuine = sum(d.kind != BAD_SIGNATURE for d in deliveries)
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], tokens=["t0ken"]) as receiver:
        without = post_deliveries(receiver.webhook_url, deliveries, 2, None)
        with_token = post_deliveries(
            receiver.webhook_url, deliveries, 2, None, bearer_token="t0ken"
        )
        receiver.stop()
    assert without.statuses == Counter({401: len(deliveries)})
    assert with_token.statuses[204] == genuine and with_token.unexpected == []


def test_posting_to_a_receiver_that_is_down_gives_up_and_says_so(small) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    report = post_deliveries(f"http://127.0.0.1:{port}/webhooks/edume", small.deliveries, 4, None)
    assert report.accepted == 0
    assert report.statuses[0] == len(small.deliveries)
    assert "stopped answering" in report.unexpected[0]


def test_landing_mode_writes_sealed_segments_a_receiver_would_have_written(
    tmp_path: Path, small
) -> None:
    lines = land_deliveries(tmp_path / "landing", small.deliveries)
    landed = [
        parse_line(line)
        for path in (tmp_path / "landing").glob(SEALED_GLOB)
        for line in path.read_bytes().splitlines()
    ]
    assert lines == len(landed) == small.truth.deliveries["accepted"]
    assert not list((tmp_path / "landing").rglob("*.open"))
    assert {d.body for d in landed} == {d.body for d in small.deliveries if d.kind != BAD_SIGNATURE}


def test_streamed_landing_carries_the_same_events_and_truth_as_the_posted_plan(
    tmp_path: Path, small
) -> None:
    truth, batches = journeys(40, seed=3)
    lines = land_bodies(tmp_path / "landing", stream_bodies(batches, Noise(), 3, truth))
    landed = [
        parse_line(line).body
        for path in (tmp_path / "landing").glob(SEALED_GLOB)
        for line in path.read_bytes().splitlines()
    ]
    assert lines == len(landed) == truth.deliveries["accepted"]
    assert len(set(landed)) == truth.deliveries["distinct_accepted"]
    known = {d.body for d in small.deliveries if d.kind in (VALID, DUPLICATE)}
    assert {b for b in landed if b"badge.awarded" not in b} == known
    assert truth.courses == small.truth.courses


def test_cli_writes_the_ground_truth_and_says_what_it_simulated(tmp_path: Path) -> None:
    truth_path = tmp_path / "truth.json"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "simulate",
            "--learners",
            "25",
            "--seed",
            "4",
            "--truth",
            str(truth_path),
            "--landing",
            str(tmp_path / "landing"),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    truth = json.loads(truth_path.read_text())
    assert truth["learners"] == 25 and truth["seed"] == 4
    assert f"landed {truth['deliveries']['accepted']} lines" in result.stdout
    assert set(truth["courses"]) == {str(c) for c in range(14148, 14159) if c != 14149}


def test_cli_without_a_destination_says_what_to_pass() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "simulate"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--url, --landing or --truth" in result.stderr
