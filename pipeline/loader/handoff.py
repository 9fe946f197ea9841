"""The seam between the DuckDB raw table and another dbt engine.

With ``EDUME_ENGINE=duckdb`` dbt reads ``raw.edume_events`` where the loader wrote it, so there is
nothing to hand off. With ``EDUME_ENGINE=spark`` the raw asset calls :func:`hand_off` after loading,
and the Spark implementation (the scale-out issue) makes the same rows visible to Spark as
``raw.edume_events``. The asset graph is the same for both engines.
"""

from __future__ import annotations

from pathlib import Path


class HandOffNotAvailable(NotImplementedError):
    """The chosen engine has no hand-off yet; the message says what to do."""


def hand_off(engine: str, warehouse: Path) -> None:
    """Make ``raw.edume_events`` of ``warehouse`` readable by ``engine``'s dbt target."""
    if engine == "duckdb":
        return
    raise HandOffNotAvailable(
        f"EDUME_ENGINE={engine}: the hand-off of raw.edume_events from {warehouse} to {engine} "
        "is not implemented yet; run with EDUME_ENGINE=duckdb"
    )
