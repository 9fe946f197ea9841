"""Drive ``wrk`` against a receiver with realistic, correctly signed deliveries (bench tooling).

Used by ``bench/receiver.py`` (throughput, latency, soak) and by the short soak test. wrk's Lua has
no HMAC, so a pool of distinct bodies is signed here and embedded in the script; each connection
walks the pool from its own offset. The script counts responses by status and prints one
``WRK_JSON {...}`` line, parsed by :func:`run_wrk`. With ``delay_ms`` each connection waits that
long between requests, which holds the offered rate near ``connections * 1000 / delay_ms``
(wrk itself has no fixed-rate mode).
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.receiver.signature import sign

_LUA = """
local function unhex(s)
  return (s:gsub("..", function(c) return string.char(tonumber(c, 16)) end))
end
local pool = {
%(pool)s
}
local threads = {}
statuses = {}
local n = 0
wrk.method = "POST"
wrk.path = "%(path)s"
wrk.headers["Content-Type"] = "application/json"
function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 7919)
end
function request()
  n = n + 1
  local item = pool[((offset or 0) + n) %% #pool + 1]
  wrk.headers["X-Edume-Signature"] = item[2]
  return wrk.format(nil, nil, nil, item[1])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
%(delay)s
function done(summary, latency, requests)
  local parts = {}
  for _, t in ipairs(threads) do
    for code, count in pairs(t:get("statuses")) do
      parts[code] = (parts[code] or 0) + count
    end
  end
  local codes = {}
  for code, count in pairs(parts) do
    table.insert(codes, string.format('"%%d":%%d', code, count))
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%%d,"duration_us":%%d,"p50_us":%%d,"p99_us":%%d,"max_us":%%d,' ..
    '"errors":{"connect":%%d,"read":%%d,"write":%%d,"status":%%d,"timeout":%%d},"statuses":{%%s}}\\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, e.connect, e.read, e.write, e.status, e.timeout, table.concat(codes, ",")))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]
    statuses: dict[int, int]

    @property
    def per_second(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def count(self, status: int) -> int:
        return self.statuses.get(status, 0)


def signed_pool(secret: bytes, size: int = 1000, seed: int = 7) -> list[tuple[bytes, str]]:
    """``size`` distinct, realistic learner-activity deliveries and their signatures."""
    rng = random.Random(seed)
    pool = []
    for n in range(size):
        body = json.dumps(
            {
                "type": rng.choice(["learner.activity.started", "learner.activity.finished"]),
                "payload": {
                    "group": {"groupId": 1297},
                    "user": {"userId": 90000 + n, "externalUserId": f"emp-{n:05d}"},
                    "course": {"courseId": 14000 + n % 40, "title": "Sécurité — 安全 🚀"},
                    "module": {"moduleId": 15000 + n % 9},
                    "activity": {"type": "lesson", "activityId": 8000 + rng.randrange(500)},
                },
                "timestamp": f"2023-06-{1 + n % 28:02d}T08:{n % 60:02d}:00.{n % 1000:03d}Z",
            },
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        pool.append((body, sign(body, secret)))
    return pool


def write_script(
    path: Path,
    pool: Sequence[tuple[bytes, str]],
    *,
    url_path: str = "/webhooks/edume",
    delay_ms: float | None = None,
) -> Path:
    """Write the Lua script for ``pool`` to ``path`` and return it."""
    entries = ",\n".join(f'{{unhex("{body.hex()}"), "{sig}"}}' for body, sig in pool)
    delay = f"function delay() return {delay_ms} end" if delay_ms else ""
    path.write_text(_LUA % {"pool": entries, "path": url_path, "delay": delay}, encoding="utf-8")
    return path


def run_wrk(
    url: str,
    script: Path,
    *,
    connections: int = 64,
    threads: int = 2,
    duration_s: float = 10.0,
    timeout_s: float = 5.0,
) -> WrkResult:
    """Run wrk once and parse its summary. Raises ``RuntimeError`` if wrk is missing or fails."""
    binary = shutil.which("wrk")
    if binary is None:
        raise RuntimeError("wrk is not installed (Debian/Ubuntu: apt-get install wrk)")
    done = subprocess.run(
        [
            binary,
            "-c",
            str(connections),
            "-t",
            str(threads),
            "-d",
            f"{max(1, round(duration_s))}s",
            "--timeout",
            f"{max(1, round(timeout_s))}s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        timeout=duration_s + 60,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("WRK_JSON ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr or done.stdout}")
    raw = json.loads(line.removeprefix("WRK_JSON "))
    return WrkResult(
        requests=raw["requests"],
        duration_s=raw["duration_us"] / 1e6,
        p50_ms=raw["p50_us"] / 1e3,
        p99_ms=raw["p99_us"] / 1e3,
        max_ms=raw["max_us"] / 1e3,
        errors=raw["errors"],
        statuses={int(code): count for code, count in raw["statuses"].items()},
    )
