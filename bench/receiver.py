"""Receiver benchmark: verified, fsynced deliveries/s and latency under wrk vs a bare endpoint.

Both sides run the SAME server (``pipeline.receiver.server.build_server``: uvicorn, httptools,
uvloop, the same connection guards and settings) in their own process on loopback; the bare
side's app reads the body and answers 204 without verifying or landing it. wrk posts a pool of
distinct, correctly signed deliveries (64 connections by default). Rounds alternate
bare/receiver and the median of each is reported, with the ratio. Targets: ratio >= 0.75 and
receiver p99 < 20 ms.

    .venv/bin/python bench/receiver.py                      # throughput and latency
    .venv/bin/python bench/receiver.py --soak-seconds 300   # plus a fixed-rate soak

The soak runs wrk at a fixed offered rate (``--soak-rate``) against a fresh receiver, samples its
RSS and open descriptors every second, then stops it and checks every 204 is in a sealed segment.
The landing lives in a temporary directory on the same disk as the system temp dir (real fsyncs).
The receiver's landing writer runs in a child process of its own (``landing_process``); its CPU
comes out of the same cores as the server's and wrk's, so the ratio pays for it.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

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
    text = _no_proxy().open(f"{url}/metrics", timeout=5).read().decode()
    return {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }


def _row(name: str, result: WrkResult) -> str:
    return (
        f"{name:<22} {result.per_second:>10.0f} {result.p50_ms:>8.2f} {result.p99_ms:>8.2f} "
        f"{result.max_ms:>8.1f}   {result.statuses}"
    )


def throughput(args: argparse.Namespace, work: Path) -> int:
    script = write_script(work / "bench.lua", signed_pool(SECRET.encode(), args.pool))
    bare = BareProcess()
    landing = Path(tempfile.mkdtemp(dir=args.landing_parent)) if args.landing_parent else work
    receiver = ReceiverProcess(
        landing / "landing",
        secrets=[SECRET],
        log_path=work / "receiver.log",
        args=["--landing-lanes", str(args.lanes)],
    )
    results: dict[str, list[WrkResult]] = {"bare": [], "receiver": []}
    try:
        for target in (bare.url, receiver.url):  # warm both up
            run_wrk(
                f"{target}/webhooks/edume",
                script,
                connections=args.connections,
                threads=args.threads,
                duration_s=2,
            )
        before = _metrics(receiver.url)
        for _ in range(args.rounds):
            for name, target in (("bare", bare.url), ("receiver", receiver.url)):
                results[name].append(
                    run_wrk(
                        f"{target}/webhooks/edume",
                        script,
                        connections=args.connections,
                        threads=args.threads,
                        duration_s=args.seconds,
                    )
                )
        after = _metrics(receiver.url)
    finally:
        bare.stop()
        receiver.stop()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {platform.platform()}; "
        f"Python {platform.python_version()}; load average {load} (other jobs skew figures)"
    )
    print(
        f"wrk: {args.connections} connections, {args.threads} threads, {args.seconds}s x "
        f"{args.rounds} rounds per side, pool of {args.pool} signed deliveries"
    )
    print(f"{'':<22} {'req/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   statuses")
    for name, runs in results.items():
        for index, result in enumerate(runs):
            print(_row(f"{name} round {index + 1}", result))
    median = {name: statistics.median(r.per_second for r in runs) for name, runs in results.items()}
    p50 = statistics.median(r.p50_ms for r in results["receiver"])
    p99 = statistics.median(r.p99_ms for r in results["receiver"])
    bare_p99 = statistics.median(r.p99_ms for r in results["bare"])
    lines, fsyncs = (
        after[f"edume_receiver_{name}_total"] - before[f"edume_receiver_{name}_total"]
        for name in ("landed_lines", "fsync_batches")
    )
    ratio = median["receiver"] / median["bare"]
    print(f"\nbare endpoint:  {median['bare']:.0f} req/s (median), p99 {bare_p99:.2f} ms")
    print(
        f"receiver:       {median['receiver']:.0f} verified+fsynced deliveries/s (median), "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms"
    )
    print(
        f"group commit:   {lines / max(fsyncs, 1):.1f} deliveries per fdatasync "
        f"({fsyncs:.0f} fsyncs for {lines:.0f} deliveries)"
    )
    print(
        f"ratio:          {ratio:.2f}  (target >= 0.75: {'met' if ratio >= 0.75 else 'NOT met'}; "
        f"p99 < 20 ms: {'met' if p99 < 20 else 'NOT met'})"
    )
    return 0


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
    ok = lines >= result.count(204) and code == 0 and late - early < 32
    print(f"  {'OK' if ok else 'FAILED'}: every 204 landed, memory and descriptors flat")
    return 0 if ok else 1


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--bare-server":
        _serve_bare(int(sys.argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=int, default=10, help="per round and side")
    parser.add_argument("--rounds", type=int, default=3)
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
