"""A real receiver seals a segment that got no line for ``--segment-idle-seal`` seconds
(``EDUME_SEGMENT_IDLE_SEAL_S``), so the loader sees a trickle of deliveries within seconds, and
at once when a waiting consumer asks (``request_seal``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from receiver_kit import SECRET, event, landed, metric, post, signed_headers

from pipeline.loader.landing_watch import request_seal
from pipeline.receiver.landing_format import SEALED_GLOB
from pipeline.receiver.process import ReceiverProcess


def _sealed_bodies(landing: Path, count: int) -> list[bytes]:
    """The bodies in sealed segments once there are ``count``. The deadline only keeps a broken
    receiver from hanging the suite (60 s, far beyond the idle seals used here)."""
    deadline = time.monotonic() + 60
    while len(bodies := [d.body for d in landed(landing, include_open=False)]) < count:
        assert time.monotonic() < deadline, f"{len(bodies)} of {count} deliveries sealed"
        time.sleep(0.05)
    return bodies


def test_an_idle_segment_is_sealed_by_the_flag_while_its_age_limit_is_an_hour_away(
    tmp_path: Path,
) -> None:
    args = ["--segment-max-age", "3600", "--segment-idle-seal", "0.3", "--landing-lanes", "1"]
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], args=args) as receiver:
        first, second = event(1), event(2)
        assert post(receiver.webhook_url, first, signed_headers(first)).status == 204
        assert _sealed_bodies(receiver.landing_dir, 1) == [first]
        assert post(receiver.webhook_url, second, signed_headers(second)).status == 204
        assert sorted(_sealed_bodies(receiver.landing_dir, 2)) == sorted([first, second])
        assert len(list(receiver.landing_dir.glob(SEALED_GLOB))) == 2  # a segment each


def test_a_seal_request_seals_a_delivery_its_idle_seal_would_keep_for_an_hour(
    tmp_path: Path,
) -> None:
    args = ["--segment-max-age", "3600", "--segment-idle-seal", "3600"]  # 8 lanes, as served
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], args=args) as receiver:
        bodies = [event(n) for n in range(4, 20)]
        for body in bodies:
            assert post(receiver.webhook_url, body, signed_headers(body)).status == 204
        assert request_seal(receiver.landing_dir)
        assert sorted(_sealed_bodies(receiver.landing_dir, len(bodies))) == sorted(bodies)


def test_the_idle_seal_is_read_from_the_environment(tmp_path: Path) -> None:
    env = {**os.environ, "EDUME_SEGMENT_IDLE_SEAL_S": "0.3"}
    args = ["--segment-max-age", "3600"]
    with ReceiverProcess(tmp_path / "landing", secrets=[SECRET], env=env, args=args) as receiver:
        assert metric(receiver.url, "edume_receiver_segment_idle_seal_seconds") == 0.3
        body = event(3)
        assert post(receiver.webhook_url, body, signed_headers(body)).status == 204
        assert _sealed_bodies(receiver.landing_dir, 1) == [body]


def test_serve_refuses_a_malformed_idle_seal(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "EDUME_LANDING_DIR": str(tmp_path / "landing"),
        "EDUME_SIGNATURE_SECRETS": SECRET,
        "EDUME_SEGMENT_IDLE_SEAL_S": "soon",
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "serve", "--port", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "EDUME_SEGMENT_IDLE_SEAL_S" in done.stderr
    assert not (tmp_path / "landing").exists()
