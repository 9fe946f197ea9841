"""The project's configuration: one environment variable per concept, read lazily.

Nothing here runs at import time. Call :func:`load_settings` where the value is needed; every
tool (receiver, loader, Dagster, dbt via ``env_var()``) reads the same names.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
ENGINES = ("duckdb", "spark")


class SettingsError(ValueError):
    """A configuration value is missing or malformed; the message says which and how to fix it."""


@dataclass(frozen=True)
class Settings:
    signature_secrets: tuple[bytes, ...]
    bearer_tokens: tuple[str, ...]
    landing_dir: Path
    warehouse: Path
    export_dir: Path
    max_body_bytes: int
    engine: str
    # The live worker (`edume-pipeline live`, pipeline/live/worker.py).
    live_poll_s: float = 0.1  # EDUME_LIVE_POLL_S: how often it looks for sealed segments
    live_refresh_s: float = 3600.0  # EDUME_LIVE_REFRESH_S: how old the live worker's as_of gets
    run_retention_days: float = 7.0  # EDUME_RUN_RETENTION_DAYS: its Dagster runs (0: keep all)
    segment_retention_days: float = 30.0  # EDUME_SEGMENT_RETENTION_DAYS: loaded segments (0: keep)
    # Dagster's landing sensor: how often its tick looks for sealed segments (`make up` sets 60:
    # the live worker does the work there, and each tick costs Dagster's daemon CPU).
    sensor_interval_s: float = 5.0  # EDUME_SENSOR_INTERVAL_S

    def __repr__(self) -> str:  # secrets never reach a log line or a traceback
        return (
            f"Settings(signature_secrets=<{len(self.signature_secrets)}>, "
            f"bearer_tokens=<{len(self.bearer_tokens)}>, landing_dir={self.landing_dir!r}, "
            f"warehouse={self.warehouse!r}, export_dir={self.export_dir!r}, "
            f"max_body_bytes={self.max_body_bytes}, engine={self.engine!r})"
        )


def _split(value: str | None) -> list[str]:
    return [item.strip() for item in (value or "").split(",") if item.strip()]


def _positive_int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number of bytes, got {raw!r}") from None
    if value <= 0:
        raise SettingsError(f"{name} must be positive, got {value}")
    return value


def _number(env: Mapping[str, str], name: str, default: float, *, zero_ok: bool) -> float:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if value < 0 or (value == 0 and not zero_ok) or value != value:
        raise SettingsError(f"{name} must be {'0 or more' if zero_ok else 'positive'}, got {raw!r}")
    return value


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the ``EDUME_*`` variables (from ``env``, default ``os.environ``).

    Raises :class:`SettingsError` naming the variable when a value is malformed.
    """
    env = os.environ if env is None else env
    engine = env.get("EDUME_ENGINE", "duckdb").strip().lower() or "duckdb"
    if engine not in ENGINES:
        raise SettingsError(f"EDUME_ENGINE must be one of {', '.join(ENGINES)}, got {engine!r}")
    return Settings(
        signature_secrets=tuple(s.encode() for s in _split(env.get("EDUME_SIGNATURE_SECRETS"))),
        bearer_tokens=tuple(_split(env.get("EDUME_BEARER_TOKENS"))),
        landing_dir=Path(env.get("EDUME_LANDING_DIR") or "landing"),
        warehouse=Path(env.get("EDUME_WAREHOUSE") or "warehouse/edume.duckdb"),
        export_dir=Path(env.get("EDUME_EXPORT_DIR") or "exports"),
        max_body_bytes=_positive_int(env, "EDUME_MAX_BODY_BYTES", DEFAULT_MAX_BODY_BYTES),
        engine=engine,
        live_poll_s=_number(env, "EDUME_LIVE_POLL_S", Settings.live_poll_s, zero_ok=False),
        live_refresh_s=_number(env, "EDUME_LIVE_REFRESH_S", Settings.live_refresh_s, zero_ok=False),
        run_retention_days=_number(
            env, "EDUME_RUN_RETENTION_DAYS", Settings.run_retention_days, zero_ok=True
        ),
        segment_retention_days=_number(
            env, "EDUME_SEGMENT_RETENTION_DAYS", Settings.segment_retention_days, zero_ok=True
        ),
        sensor_interval_s=_number(
            env, "EDUME_SENSOR_INTERVAL_S", Settings.sensor_interval_s, zero_ok=False
        ),
    )
