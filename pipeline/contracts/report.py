"""What ``edume-pipeline contract-report`` reads, prints and proposes (no argparse here).

:func:`read_report` reads the deviations and the HTTP envelope from the warehouse when it can
take the warehouse lock at once, else from the exports (``<export_dir>/quality/*.parquet``,
written by the last run), so an operator gets an answer while a run holds the warehouse.
:func:`propose_contracts` turns the observed deviations into contract files for review.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from pipeline.contracts.check import read_deviations
from pipeline.contracts.lineage import load_manifest, marts_fed_by
from pipeline.contracts.schema import expected_types, load_contracts, subschema
from pipeline.warehouse_lock import WarehouseLockTimeout, warehouse_lock

# The keys of `--format json`, in order.
JSON_KEYS = (
    "event_type",
    "path",
    "problem",
    "expected",
    "seen",
    "deliveries",
    "example_delivery_id",
)
ENVELOPE_HEADERS = ("content_type", "content_encoding", "user_agent")


class NothingToReadError(RuntimeError):
    """Neither a warehouse nor exported quality facts exist yet."""


@dataclass
class ContractReport:
    """Deviations (dicts with :data:`JSON_KEYS` plus timings, readers and marts fed) and the
    envelope (``header``, ``value``, ``deliveries``), and where they were read."""

    source: str
    deviations: list[dict[str, Any]] = field(default_factory=list)
    envelope: list[dict[str, Any]] = field(default_factory=list)


def read_report(warehouse: Path, export_dir: Path, manifest_path: Path | None) -> ContractReport:
    """The report from ``warehouse``, or from ``export_dir`` when the warehouse is absent or
    locked by a run. Raises :class:`NothingToReadError` when neither exists."""
    if Path(warehouse).is_file():
        try:
            with warehouse_lock(Path(warehouse), timeout_s=0):
                return _from_warehouse(Path(warehouse), manifest_path)
        except WarehouseLockTimeout:
            pass
    quality = Path(export_dir) / "quality"
    if (quality / "contract_deviations.parquet").is_file():
        return _from_exports(quality)
    raise NothingToReadError(
        f"neither the warehouse {warehouse} (free to read) nor {quality}/contract_deviations."
        "parquet exists: run `edume-pipeline materialize` first"
    )


def _from_warehouse(warehouse: Path, manifest_path: Path | None) -> ContractReport:
    manifest = load_manifest(manifest_path) if manifest_path is not None else None
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("set TimeZone = 'UTC'")
        deviations = read_deviations(con)
        envelope = _envelope(con)
    for row in deviations:
        readers = [r.strip() for r in (row.get("read_by") or "").split(",") if r.strip()]
        row["read_by"] = ", ".join(readers) or None
        row["feeds_marts"] = ", ".join(marts_fed_by(manifest, readers)) or None
    return ContractReport(f"warehouse {warehouse}", deviations, envelope)


def _envelope(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    columns = {
        name
        for (name,) in con.execute(
            "select column_name from information_schema.columns "
            "where table_schema = 'raw' and table_name = 'edume_events'"
        ).fetchall()
    }
    headers = [h for h in ENVELOPE_HEADERS if h in columns]
    if not headers:
        return []
    union = " union all ".join(
        f"select '{h}' as header, delivery_id, {h} as value from raw.edume_events" for h in headers
    )
    rows = con.execute(
        f"select header, coalesce(value, '(none)'), count(distinct delivery_id) from ({union}) "
        "group by all order by header, 3 desc, 2"
    ).fetchall()
    return [{"header": h, "value": v, "deliveries": n} for h, v, n in rows]


def _from_exports(quality: Path) -> ContractReport:
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        cursor = con.execute(
            "select event_type, path, problem, expected, seen, count_deliveries as deliveries, "
            "example_delivery_id, first_received_at, last_received_at, read_by, feeds_marts "
            "from read_parquet($file) order by deliveries desc, event_type, path, problem, seen",
            {"file": str(quality / "contract_deviations.parquet")},
        )
        names = [column[0] for column in cursor.description]
        deviations = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        envelope = []
        if (quality / "delivery_envelopes.parquet").is_file():
            envelope = [
                {"header": h, "value": v, "deliveries": n}
                for h, v, n in con.execute(
                    "select header, value, count_deliveries from read_parquet($file) "
                    "order by header, count_deliveries desc, value",
                    {"file": str(quality / "delivery_envelopes.parquet")},
                ).fetchall()
            ]
    return ContractReport(f"exports {quality} (the last run's)", deviations, envelope)


def as_json(report: ContractReport) -> str:
    """``--format json``: an array of objects with exactly :data:`JSON_KEYS`."""
    return json.dumps([{key: row[key] for key in JSON_KEYS} for row in report.deviations], indent=2)


def as_text(report: ContractReport) -> str:
    """``--format text``: deviations by event type, what each path feeds, then the envelope."""
    lines = [f"Data contract ({report.source})"]
    if not report.deviations:
        lines.append("  No deviation: every checked delivery matches its event type's contract.")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for row in report.deviations:
        by_type.setdefault(row["event_type"], []).append(row)
    for event_type, rows in sorted(by_type.items()):
        lines.append(f"  {event_type}")
        for row in rows:
            lines.append(
                f"    {row['path']} {_problem(row)} in {row['deliveries']:,} "
                f"deliver{'y' if row['deliveries'] == 1 else 'ies'} "
                f"(first {_when(row['first_received_at'])}, last {_when(row['last_received_at'])}"
                f", e.g. delivery_id {row['example_delivery_id']})"
            )
            if row.get("read_by"):
                feeds = row.get("feeds_marts") or "no mart (or no dbt manifest to tell)"
                lines.append(f"      read by {row['read_by']}, which feeds {feeds}")
            elif row["problem"] == "unexpected":
                lines.append("      read by nothing yet: --propose adds it to the contract")
    lines.append("HTTP envelope (what eduMe's client sends), distinct deliveries")
    if not report.envelope:
        lines.append("  not recorded yet")
    for row in report.envelope:
        lines.append(f"  {row['header']:<17} {row['value']}  {row['deliveries']:,}")
    return "\n".join(lines)


def _problem(row: Mapping[str, Any]) -> str:
    if row["problem"] == "missing":
        return f"missing (expected {row['expected']})"
    if row["problem"] == "unexpected":
        return f"unexpected (seen {row['seen']}; the contract does not list it)"
    return f"has type {row['seen']} (expected {row['expected']})"


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if hasattr(value, "strftime") else str(value)


def propose_contracts(
    deviations: Iterable[Mapping[str, Any]],
    contracts: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """Every contract, amended as the observed deviations suggest, by event type.

    A missing field becomes optional; an unexpected field is added as optional with the type
    seen; a field of another type accepts the type seen too. What changed carries
    ``"x-provenance": "observed"`` (new fields) so that review finds it; staging's readers and
    ``x-unused`` are left for the reviewer (the coverage test asks for one of them).
    """
    proposed = {t: copy.deepcopy(dict(c)) for t, c in (contracts or load_contracts()).items()}
    for row in sorted(deviations, key=lambda r: (r["event_type"], r["path"], r["problem"])):
        contract = proposed.get(row["event_type"])
        if contract is not None:
            _amend(contract, row["path"], row["problem"], row["seen"])
    return proposed


def _amend(contract: dict[str, Any], path: str, problem: str, seen: str) -> None:
    parent_path, _, key = path.rpartition(".")
    if path.endswith("[]"):  # a type deviation of the items themselves
        parent_path, key = path, ""
    parent = subschema(contract, parent_path) if parent_path else contract
    if parent is None:
        return
    if problem == "missing":
        parent["required"] = [k for k in parent.get("required", ()) if k != key]
    elif problem == "unexpected":
        parent.setdefault("properties", {})[key] = {"type": seen, "x-provenance": "observed"}
    elif problem == "type":
        node = subschema(contract, path)
        if node is not None:
            types = list(expected_types(node))
            node["type"] = [*types, seen] if seen not in types else types


def write_proposals(proposed: Mapping[str, Mapping[str, Any]], folder: Path) -> list[Path]:
    """Write ``<folder>/<type>.json`` as the shipped files are laid out; return those written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for event_type, contract in sorted(proposed.items()):
        path = folder / f"{event_type}.json"
        path.write_text(json.dumps(contract, indent=2, ensure_ascii=False) + "\n", "utf-8")
        written.append(path)
    return written


def changed_types(
    proposed: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> Sequence[str]:
    """Event types whose proposed contract differs from the shipped one."""
    return sorted(t for t, c in proposed.items() if c != current.get(t))
