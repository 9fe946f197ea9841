"""Receiver benchmark: verified, fsynced deliveries/s and latency under wrk vs a bare endpoint.

Both sides run the SAME server (``pipeline.receiver.server.build_server``: uvicorn, httptools,
uvloop, the same connection guards and settings) in their own process on loopback; the bare
side's app reads the body and answers 204 without verifying or landing it. wrk posts a pool of
distinct, correctly signed deliveries (64 connections by default). Rounds rotate through the
sides (the order shifts each round); every round of every side is printed, then per side the
median, the range and the spread ((max - min) / median), and the per-round ratios (each round's
receiver against the same round's bare endpoint) with their median and range. Targets: ratio >=
0.75 and receiver p99 < 20 ms. Each side's CPU time per request (the server and its landing
process, from ``/proc``) is reported too: on a machine that other jobs load, throughput swings
with their demand, while the CPU a request costs barely moves, so it resolves small differences.

``--baseline-ref REF`` adds a third side: the receiver of git revision ``REF`` (extracted with
``git archive`` into the temp dir, run by the same interpreter), so a change is measured against
the code before it in the same run, under the same load: the receiver/baseline ratio.

A run FAILS (exit 1) when a receiver answered anything but 204 (a benchmark of refusals
measures nothing), or when a soak loses a delivery.

    .venv/bin/python bench/receiver.py                      # throughput and latency
    .venv/bin/python bench/receiver.py --rounds 5 --baseline-ref HEAD~1   # a change's cost
    .venv/bin/python bench/receiver.py --soak-seconds 300   # plus a fixed-rate soak

The soak runs wrk at a fixed offered rate (``--soak-rate``) against a fresh receiver, samples its
RSS and open descriptors every second, then stops it and checks every 204 is in a sealed segment.
The landing lives in a temporary directory on the same disk as the system temp dir (real fsyncs).
The receiver's landing writer runs in a child process of its own (``landing_process``); its CPU
comes out of the same cores as the server's and wrk's, so the ratio pays for it.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.wrk import WrkResult, run_wrk, signed_pool, write_script  # noqa: E402
from pipeline.receiver.landing_format import SEALED_GLOB  # noqa: E402
from pipeline.receiver.process import ReceiverProcess, free_port  # noqa: E402

SECRET = "bench-secret-not-for-production"


def _no_proxy() -> urllib.request.OpenerDirector:
    """An opener that ignores http_proxy: loopback is never reached through a proxy."""
    return urllib.request.build_opener(urllib.request.ProxyHandler({}))


class BareApp:
    """The baseline: same server, body read, 204, nothing else."""

    async def __call__(self, scope, receive, send) -> None:  # type: ignore[no-untyped-def]
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                kind = message["type"].removeprefix("lifespan.")
                await send({"type": f"lifespan.{kind}.complete"})
                if kind == "shutdown":
                    return
        if scope["type"] != "http":
            return
        more = True
        while more:
            more = (await receive()).get("more_body", False)
        if scope["path"] == "/healthz":
            await send({"type": "http.response.start", "status": 200, "headers": []})
        else:
            await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def _serve_bare(port: int) -> None:
    from pipeline.cli import serve
    from pipeline.receiver.server import build_server

    parser = argparse.ArgumentParser()
    serve.configure(parser)
    args = parser.parse_args(["--port", str(port)])
    build_server(BareApp(), args).run()


class BareProcess:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--bare-server", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            try:
                _no_proxy().open(f"{self.url}/healthz", timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("bare server did not start")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)


def _metrics(url: str) -> dict[str, float]:
    """Unlabelled samples of a receiver's /metrics, by name."""
    text = _no_proxy().open(f"{url}/metrics", timeout=5).read().decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def _row(name: str, result: WrkResult) -> str:
    return (
        f"{name:<22} {result.per_second:>10.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
        f"{result.max_ms:>8.1f}   {result.statuses}"
    )


def source_tree(ref: str, into: Path) -> Path:
    """The repository at git revision ``ref``, extracted into ``into`` (git archive: the
    checkout, its index and its work tree are left alone)."""
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", "--format=tar", ref],
        capture_output=True,
        check=True,
    ).stdout
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of process ``pid`` and of its children, from ``/proc``."""
    ticks = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    total = 0.0
    for each in (pid, *map(int, children)):
        fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def _spread(values: Sequence[float]) -> str:
    """Median, range and spread of repeated measurements."""
    middle = statistics.median(values)
    low, high = min(values), max(values)
    return (
        f"median {middle:,.2f}, range {low:,.2f}-{high:,.2f}, "
        f"spread {(high - low) / middle * 100 if middle else 0:.1f}% over {len(values)} rounds"
    )


def _not_204(results: dict[str, list[WrkResult]]) -> list[str]:
    """Every round in which a receiver answered anything but 204."""
    return [
        f"{name} round {index + 1}: {result.statuses}"
        for name, runs in results.items()
        for index, result in enumerate(runs)
        if set(result.statuses) - {204}
    ]


def throughput(args: argparse.Namespace, work: Path) -> int:
    script = write_script(work / "bench.lua", signed_pool(SECRET.encode(), args.pool))
    landing = Path(tempfile.mkdtemp(dir=args.landing_parent)) if args.landing_parent else work
    receiver_args = ["--landing-lanes", str(args.lanes)]
    bare = BareProcess()
    servers: dict[str, BareProcess | ReceiverProcess] = {"bare": bare}
    try:
        servers["receiver"] = ReceiverProcess(
            landing / "landing",
            secrets=[SECRET],
            log_path=work / "receiver.log",
            args=receiver_args,
        )
        if args.baseline_ref:
            servers["baseline"] = ReceiverProcess(
                landing / "baseline-landing",
                secrets=[SECRET],
                log_path=work / "baseline.log",
                args=receiver_args,
                source_root=source_tree(args.baseline_ref, work / "baseline-source"),
            )
        results: dict[str, list[WrkResult]] = {name: [] for name in servers}
        cpu_us: dict[str, list[float]] = {name: [] for name in servers}  # per request
        names = list(servers)

        def run(name: str, seconds: int) -> WrkResult:
            pid = servers[name].process.pid
            cpu = _cpu_seconds(pid)
            result = run_wrk(
                f"{servers[name].url}/webhooks/edume",
                script,
                connections=args.connections,
                threads=args.threads,
                duration_s=seconds,
            )
            cpu_us[name].append((_cpu_seconds(pid) - cpu) / max(result.requests, 1) * 1e6)
            return result

        for name in names:  # warm every side up
            run(name, 2)
            cpu_us[name].clear()
        before = _metrics(servers["receiver"].url)
        for round_ in range(args.rounds):
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
                results[name].append(run(name, args.seconds))
        after = _metrics(servers["receiver"].url)
    finally:
        for server in servers.values():
            server.stop()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}; load average {load} (other jobs skew figures)"
    )
    print(
        f"wrk: {args.connections} connections, {args.threads} threads, {args.seconds}s x "
        f"{args.rounds} rounds per side, pool of {args.pool} signed deliveries"
        + (f"; baseline: the receiver at {args.baseline_ref}" if args.baseline_ref else "")
    )
    print(f"{'':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   statuses")
    for name, runs in results.items():
        for index, result in enumerate(runs):
            print(_row(f"{name} round {index + 1}", result))
    rates = {name: [r.per_second for r in runs] for name, runs in results.items()}
    print()
    for name, values in rates.items():
        p99 = statistics.median(r.p99_ms for r in results[name])
        print(f"{name + ':':<16}req/s {_spread(values)}; p99 {p99:.2f} ms (median)")
        print(f"{'':<16}CPU us per request (server + landing process) {_spread(cpu_us[name])}")
    ratios = [r / b for r, b in zip(rates["receiver"], rates["bare"], strict=True)]
    print(f"{'ratio:':<16}receiver/bare per round: {_spread(ratios)}")
    if "baseline" in rates:
        baseline_ratios = [r / b for r, b in zip(rates["baseline"], rates["bare"], strict=True)]
        versus = [r / b for r, b in zip(rates["receiver"], rates["baseline"], strict=True)]
        print(f"{'':<16}baseline/bare per round: {_spread(baseline_ratios)}")
        print(f"{'':<16}receiver/baseline per round: {_spread(versus)}")
        print(
            f"{'':<16}receiver/baseline of the medians: "
            f"{statistics.median(rates['receiver']) / statistics.median(rates['baseline']):.3f}"
        )
        cost = [r / b for r, b in zip(cpu_us["receiver"], cpu_us["baseline"], strict=True)]
        print(f"{'':<16}CPU per request, receiver/baseline per round: {_spread(cost)}")
    lines, fsyncs = (
        after[f"edume_receiver_{name}_total"] - before[f"edume_receiver_{name}_total"]
        for name in ("landed_lines", "fsync_batches")
    )
    print(
        f"{'group commit:':<16}{lines / max(fsyncs, 1):.1f} deliveries per fdatasync "
        f"({fsyncs:.0f} fsyncs for {lines:.0f} deliveries)"
    )
    ratio = statistics.median(ratios)
    p99 = statistics.median(r.p99_ms for r in results["receiver"])
    print(
        f"{'targets:':<16}ratio {ratio:.2f} (>= 0.75: {'met' if ratio >= 0.75 else 'NOT met'}); "
        f"p99 {p99:.2f} ms (< 20 ms: {'met' if p99 < 20 else 'NOT met'})"
    )
    failures = _not_204(results)
    for failure in failures:
        print(f"FAILED: answered other than 204: {failure}")
    return 1 if failures else 0


def _sample(pid: int) -> tuple[int, int]:
    rss = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS:")
    )
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


def soak(args: argparse.Namespace, work: Path) -> int:
    connections = args.soak_connections
    delay_ms = connections * 1000 / args.soak_rate
    script = write_script(
        work / "soak.lua", signed_pool(SECRET.encode(), args.pool), delay_ms=delay_ms
    )
    landing = work / "soak-landing"
    receiver = ReceiverProcess(
        landing,
        secrets=[SECRET],
        log_path=work / "soak.log",
        args=["--segment-max-age", "10", "--landing-lanes", str(args.lanes)],
    )
    samples: list[tuple[float, int, int]] = []
    stop = threading.Event()

    def sampler() -> None:
        started = time.monotonic()
        while not stop.wait(1.0):
            samples.append((time.monotonic() - started, *_sample(receiver.pid)))

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        result = run_wrk(
            receiver.webhook_url,
            script,
            connections=connections,
            threads=1,
            duration_s=args.soak_seconds,
        )
    finally:
        stop.set()
        thread.join()
        code = receiver.stop()
    lines = sum(p.read_bytes().count(b"\n") for p in landing.glob(SEALED_GLOB))
    third = max(1, len(samples) // 3)
    early = statistics.median(s[1] for s in samples[:third]) / 1024
    late = statistics.median(s[1] for s in samples[-third:]) / 1024
    fds = [s[2] for s in samples]
    print(
        f"\nsoak: {args.soak_seconds}s at ~{args.soak_rate} req/s offered "
        f"({connections} connections, {delay_ms:.0f} ms apart)"
    )
    print(
        f"  delivered: {result.requests} requests, {result.per_second:.0f}/s, "
        f"p50 {result.p50_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, statuses {result.statuses}"
    )
    print(
        f"  RSS: {early:.1f} MiB (first third, median) -> {late:.1f} MiB (last third); "
        f"open fds min {min(fds)} max {max(fds)}"
    )
    print(
        f"  landed lines in sealed segments: {lines}; 204s seen by wrk: {result.count(204)}; "
        f"exit code {code}"
    )
    ok = (
        lines >= result.count(204)
        and code == 0
        and late - early < 32
        and not _not_204({"soak": [result]})
    )
    print(f"  {'OK' if ok else 'FAILED'}: only 204s, every 204 landed, memory and descriptors flat")
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--bare-server":
        _serve_bare(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="per round and side")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--baseline-ref",
        default=None,
        metavar="REF",
        help="also run the receiver of this git revision, side by side (e.g. HEAD~1)",
    )
    parser.add_argument("--pool", type=int, default=2000, help="distinct signed deliveries")
    parser.add_argument("--soak-seconds", type=int, default=0, help="also soak for this long")
    parser.add_argument("--soak-rate", type=int, default=1000, help="offered requests/s")
    parser.add_argument("--soak-connections", type=int, default=32)
    parser.add_argument(
        "--landing-parent",
        type=Path,
        default=None,
        help="put the landing under this dir (default: the temp dir's disk); "
        "e.g. /dev/shm to measure the software alone, without the disk's fsync",
    )
    parser.add_argument("--lanes", type=int, default=8, help="serve --landing-lanes")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edume-bench-receiver-") as tmp:
        work = Path(tmp)
        code = 0 if args.skip_throughput else throughput(args, work)
        if args.soak_seconds:
            code = code or soak(args, work)
    return code


if __name__ == "__main__":
    sys.exit(main())
