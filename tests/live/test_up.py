"""``edume-pipeline up`` with Dagster, as the README documents it: the code server it starts
serves the code location ``edume`` to the UI and to the daemon (whose landing sensor ticks against
it and skips while the live worker runs), the UI answers on ``EDUME_UI_PORT``, every daemon
reports healthy, and SIGTERM stops every process ``up`` started.

No timing is asserted. The deadline is generous (minutes) only so that a broken start fails
instead of hanging: on a loaded 2-core machine the worker's start-up (dbt parse, Definitions) and
the code server's each take minutes.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.live_kit import Deployment, alive, descendants, stop

pytestmark = pytest.mark.slow

READY_DEADLINE_S = 900.0
LANDING_SENSOR = "landing_sensor"


def graphql(port: int, query: str) -> dict | None:
    """The query's data from the UI's GraphQL endpoint, or None while the UI does not answer."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    assert not answer.get("errors"), answer["errors"]  # a query this test got wrong
    return answer["data"]


def locations(port: int) -> list[dict]:
    data = graphql(
        port,
        "{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus "
        "locationOrLoadError { __typename } } } } }",
    )
    return data["workspaceOrError"]["locationEntries"] if data else []


def sensor_ticks(port: int) -> list[dict]:
    """The sensor's decided ticks, newest first: a tick still running has no outcome yet."""
    data = graphql(
        port,
        '{ sensorOrError(sensorSelector: {repositoryLocationName: "edume", '
        f'repositoryName: "__repository__", sensorName: "{LANDING_SENSOR}"}}) {{ '
        "... on Sensor { sensorState { ticks(limit: 5) { status skipReason timestamp } } } } }",
    )
    if not data or "sensorState" not in data["sensorOrError"]:
        return []
    return [t for t in data["sensorOrError"]["sensorState"]["ticks"] if t["status"] != "STARTED"]


def daemons(port: int) -> list[dict]:
    data = graphql(
        port, "{ instance { daemonHealth { allDaemonStatuses { daemonType required healthy } } } }"
    )
    return data["instance"]["daemonHealth"]["allDaemonStatuses"] if data else []


@pytest.mark.timeout(3000)  # the deadline plus stopping; the suite's 900 s is too short here
def test_up_serves_the_code_location_to_the_ui_and_the_daemon_and_stops_every_process(
    tmp_path: Path,
) -> None:
    deployment = Deployment.under(tmp_path / "up")
    port = deployment.ui_port
    # A 5 s tick instead of up's 60 s, so that the test sees a tick soon.
    process = deployment.start("up", EDUME_SENSOR_INTERVAL_S="5")
    try:
        deadline = time.monotonic() + READY_DEADLINE_S
        deployment.wait_for(deployment.ready, deadline, "live worker start", process)
        ready_at = time.time()  # the worker holds its presence lock from before this
        deployment.wait_for(lambda: locations(port), deadline, "the UI", process)
        # A tick after the worker is up (the daemon may tick once before the worker starts).
        deployment.wait_for(
            lambda: any(t["timestamp"] > ready_at for t in sensor_ticks(port)),
            deadline,
            "a landing sensor tick after the worker's start",
            process,
        )
        deployment.wait_for(
            lambda: (
                (statuses := daemons(port)) and all(d["healthy"] for d in statuses if d["required"])
            ),
            deadline,
            "every daemon healthy",
            process,
        )
        entries = locations(port)
        ticks = [t for t in sensor_ticks(port) if t["timestamp"] > ready_at]
        required = {d["daemonType"] for d in daemons(port) if d["required"]}
        started = descendants(process.pid)
    finally:
        code = stop(process)

    assert code == 0, deployment.tail()
    assert [(e["name"], e["loadStatus"]) for e in entries] == [("edume", "LOADED")], entries
    assert entries[0]["locationOrLoadError"]["__typename"] == "RepositoryLocation", entries
    # The sensor ran in the code server and saw the worker's presence lock.
    assert {(t["status"], t["skipReason"]) for t in ticks} == {
        ("SKIPPED", "the live worker keeps the marts fresh")
    }, ticks
    assert {"SENSOR", "SCHEDULER", "QUEUED_RUN_COORDINATOR"} <= required, required
    # receiver (+ its landing process), code server, UI, daemon, worker: all gone.
    assert len(started) >= 6, started
    assert not alive(started), alive(started)
