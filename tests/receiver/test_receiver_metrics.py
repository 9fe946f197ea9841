"""/metrics through prometheus_client: today's names, histograms, process metrics, and the
report's reader of a live or saved exposition."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from receiver_kit import OTHER_SECRET, SECRET, event, get, metric, post, signed_headers

from pipeline.receiver.landing import DEFAULT_IDLE_SEAL_S
from pipeline.receiver.process import ReceiverProcess
from pipeline.reporting import metrics as report_metrics

DELIVERIES = 25


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReceiverProcess]:
    """A fresh receiver that got exactly DELIVERIES good deliveries and 3 forgeries."""
    root = tmp_path_factory.mktemp("metrics")
    with ReceiverProcess(root / "landing", secrets=[SECRET]) as receiver:
        for n in range(DELIVERIES):
            body = event(n)
            assert post(receiver.webhook_url, body, signed_headers(body)).status == 204
        for n in range(3):
            body = event(100 + n)
            assert (
                post(receiver.webhook_url, body, signed_headers(body, OTHER_SECRET)).status == 401
            )
        yield receiver


def _families(receiver: ReceiverProcess) -> dict[str, object]:
    reply = get(f"{receiver.url}/metrics")
    assert reply.status == 200
    assert reply.headers["content-type"].startswith("text/plain; version=")
    return {f.name: f for f in text_string_to_metric_families(reply.body.decode())}


def test_after_n_requests_the_request_histogram_counts_n(served) -> None:
    name = "edume_receiver_request_duration_seconds"
    assert metric(served.url, f"{name}_count") == DELIVERIES + 3  # the 401s are requests too
    assert metric(served.url, f'{name}_bucket{{le="+Inf"}}') == DELIVERIES + 3
    assert metric(served.url, f"{name}_sum") > 0


def test_every_accepted_delivery_waited_for_one_fsync_and_the_batches_add_up(served) -> None:
    assert metric(served.url, "edume_receiver_fsync_wait_seconds_count") == DELIVERIES
    batches = metric(served.url, "edume_receiver_fsync_batches_total")
    assert metric(served.url, "edume_receiver_fsync_batch_deliveries_count") == batches
    assert metric(served.url, "edume_receiver_fsync_batch_deliveries_sum") == DELIVERIES
    # One client posting in turn: every fsync covered exactly one delivery.
    assert metric(served.url, 'edume_receiver_fsync_batch_deliveries_bucket{le="1"}') == batches


def test_todays_metric_names_keep_their_values(served) -> None:
    assert metric(served.url, "edume_receiver_deliveries_accepted_total") == DELIVERIES
    rejected = 'edume_receiver_deliveries_rejected_total{reason="signature_mismatch"}'
    assert metric(served.url, rejected) == 3
    assert metric(served.url, "edume_receiver_landed_lines_total") == DELIVERIES
    assert metric(served.url, "edume_receiver_deliveries_deferred_total") == 0
    assert metric(served.url, "edume_receiver_landing_writable") == 1
    assert metric(served.url, "edume_receiver_segment_idle_seal_seconds") == DEFAULT_IDLE_SEAL_S
    for name in ("landed_bytes", "sealed_segments", "landing_write_errors", "landing_restarts"):
        metric(served.url, f"edume_receiver_{name}_total")  # present (raises when absent)


def test_process_metrics_describe_the_server_and_its_landing_process(served) -> None:
    families = _families(served)
    for prefix in ("process", "edume_receiver_landing_process"):
        for name in ("resident_memory_bytes", "open_fds", "cpu_seconds"):
            assert f"{prefix}_{name}" in families, f"{prefix}_{name}"
        assert metric(served.url, f"{prefix}_resident_memory_bytes") > 0
        assert metric(served.url, f"{prefix}_open_fds") > 0


def test_a_missing_metric_raises_instead_of_reading_zero(served) -> None:
    with pytest.raises(KeyError, match="no_such_metric"):
        metric(served.url, "edume_receiver_no_such_metric_total")


def test_the_report_reads_a_live_and_a_saved_exposition_alike(served, tmp_path: Path) -> None:
    live = report_metrics.load(f"{served.url}/metrics")
    saved = tmp_path / "receiver_metrics.prom"
    saved.write_bytes(get(f"{served.url}/metrics").body)
    from_file = report_metrics.load(str(saved))
    for read in (live, from_file):
        assert (read.accepted, read.deferred) == (DELIVERIES, 0)
        assert read.rejected_by_reason == {"signature_mismatch": 3}


def test_the_report_refuses_a_file_that_is_not_an_exposition(tmp_path: Path) -> None:
    saved = tmp_path / "not_metrics.prom"
    saved.write_text("<html>502 Bad Gateway</html>\n", encoding="utf-8")
    with pytest.raises(OSError, match="not Prometheus text"):
        report_metrics.load(str(saved))
