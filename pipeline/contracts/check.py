"""Check every loaded body against its event type's contract, once, after the load.

:func:`check_new_deliveries` is what a loader's caller runs after :func:`load_landing` (the
Dagster raw asset, the live worker). It looks only at rows loaded since the last check (a
``loaded_at`` watermark in ``raw.edume_contract_state``) and never reads a payload path that
staging reads: it compares shapes, not values.

How it stays cheap: the receiver names each body's shape as it lands it (``body_shape``, landing
format 3; it has parsed the body anyway), so one scan of the new rows groups them by (event type,
``body_shape``) and one example body of each group is parsed and validated
(:mod:`pipeline.contracts.schema`), array items included. Equal names mean equal shapes, so the
deliveries of a deviating group are found by that name too, without parsing them.

Lines landed before format 3 have no name: one scan reduces them, per event type, to their
distinct (``json_structure(body)``, items) pairs. ``json_structure`` merges array items, which
would hide an item missing a field or with a different type, so for each array the contract
declares (``payload.teams`` ...) the scan also lists the distinct ``json_structure`` of its items,
sorted: shapes, not texts, so that arrays of different ids and names do not make a pair per
delivery. Each distinct body shape and item shape is validated once; only when some pair deviates
are the deliveries that have it found, by a second parse of the new rows of the deviating types.
Either way, when every delivery of a type deviates alike (a wrong hypothesis does that), its
deliveries are recorded by event type.

What it costs: a group-by over a short column for named shapes; ``json_structure`` itself, a few
µs a body, for older lines. ``bench/loader.py`` measures both.

Tables (schema ``raw``; created here, upgraded in place):

- ``edume_contract_shape_deviations``: one row per deviating pair (``shape_key``) and deviation;
- ``edume_contract_deviating_deliveries``: one row per deviating delivery line and its pair;
- ``edume_contract_deviation_counts``: per event type, path, problem, expected and seen type, the
  count of distinct deliveries, first and last receive time, an example ``delivery_id`` and the
  staging columns that read the path. Each check adds its new deliveries (looking up earlier
  copies of them by id, so a delivery landed twice counts once), so that reading the counts costs
  the same whatever the history; a warehouse recorded before this table existed is counted once;
- ``edume_contract_state``: the watermark and the fingerprint of the contracts it was checked
  against. When the contracts change, everything is checked again under the new ones.
- the view ``edume_contract_deviations``: the counts, as every reader reads them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

from pipeline.contracts.schema import (
    Deviation,
    array_paths,
    contracts_fingerprint,
    distinct_deviations,
    json_path,
    load_contracts,
    read_by,
    shape_from_structure,
    shape_of,
    subschema,
)
from pipeline.receiver.landing_format import parse_body
from pipeline.warehouse_lock import warehouse_lock

log = logging.getLogger(__name__)

# Per declared array, the sorted distinct json_structure texts of its items (None: no array).
Items = list[list[str] | None] | None

DEVIATIONS_VIEW = "raw.edume_contract_deviations"

DDL = """
create schema if not exists raw;
create table if not exists raw.edume_contract_state (
  contracts_sha256 varchar not null,  -- the contracts checked_through was checked against
  checked_through timestamp,          -- newest loaded_at checked (NULL: nothing yet)
  checked_at timestamp not null
);
create table if not exists raw.edume_contract_shape_deviations (
  shape_key varchar not null,         -- sha256 of (event type, json_structure, items)
  event_type varchar not null,
  path varchar not null,              -- dotted, [] for array items: payload.activities[].type
  problem varchar not null,           -- missing | unexpected | type
  expected varchar not null,          -- the contract's JSON type(s), or 'absent'
  seen varchar not null,              -- the JSON type seen, or 'absent'
  read_by varchar                     -- staging columns reading the path, comma-separated
);
create table if not exists raw.edume_contract_deviating_deliveries (
  shape_key varchar not null,
  delivery_id varchar not null,
  received_at timestamp not null
);
create table if not exists raw.edume_contract_deviation_counts (
  event_type varchar not null,
  path varchar not null,
  problem varchar not null,
  expected varchar not null,
  seen varchar not null,
  deliveries bigint not null,         -- distinct delivery_id (a delivery landed twice counts once)
  first_received_at timestamp not null,
  last_received_at timestamp not null,
  example_delivery_id varchar not null,
  read_by varchar,
  primary key (event_type, path, problem, expected, seen)
);
create or replace view raw.edume_contract_deviations as
select
  event_type, path, problem, expected, seen, deliveries, first_received_at, last_received_at,
  example_delivery_id, read_by
from raw.edume_contract_deviation_counts;
"""

# The counts from every recorded delivery: what the incremental updates add up to. Used once, to
# fill the counts table of a warehouse whose deliveries were recorded before it existed.
ALL_COUNTS_QUERY = """
select
  s.event_type, s.path, s.problem, s.expected, s.seen,
  count(distinct d.delivery_id), min(d.received_at), max(d.received_at), min(d.delivery_id),
  any_value(s.read_by)
from raw.edume_contract_shape_deviations as s
join raw.edume_contract_deviating_deliveries as d using (shape_key)
group by all
"""

# Adds the deliveries in _new_deviating (not yet in edume_contract_deviating_deliveries) to the
# counts: a delivery counts for a deviation unless an earlier copy of it already did. The earlier
# copies are found by the new ids, so the cost follows the batch, not the history.
_ADD_COUNTS_SQL = """
insert into raw.edume_contract_deviation_counts
select * from (
  with new_pairs as (
    select s.event_type, s.path, s.problem, s.expected, s.seen, s.read_by, n.delivery_id,
           n.received_at
    from _new_deviating as n
    join raw.edume_contract_shape_deviations as s using (shape_key)
  ),
  earlier as (
    select distinct s.event_type, s.path, s.problem, s.expected, s.seen, d.delivery_id
    from raw.edume_contract_deviating_deliveries as d
    join raw.edume_contract_shape_deviations as s using (shape_key)
    where d.delivery_id in (select delivery_id from _new_deviating)
  )
  select
    p.event_type, p.path, p.problem, p.expected, p.seen,
    count(distinct p.delivery_id) filter (where e.delivery_id is null),
    min(p.received_at), max(p.received_at), min(p.delivery_id), any_value(p.read_by)
  from new_pairs as p
  left join earlier as e using (event_type, path, problem, expected, seen, delivery_id)
  group by all
)
on conflict (event_type, path, problem, expected, seen) do update set
  deliveries = deliveries + excluded.deliveries,
  first_received_at = least(first_received_at, excluded.first_received_at),
  last_received_at = greatest(last_received_at, excluded.last_received_at),
  example_delivery_id = least(example_delivery_id, excluded.example_delivery_id)
"""


@dataclass(frozen=True)
class ContractCheckResult:
    """What one check looked at: new rows of a known type, their distinct shapes (named by the
    receiver, or (structure, items) pairs for older lines), the deviating ones and the delivery
    lines that have them."""

    rows_checked: int = 0
    shapes: int = 0
    deviating_shapes: int = 0
    deviating_rows: int = 0
    rechecked_all: bool = False  # the contracts changed since the last check


@dataclass(frozen=True)
class _Plan:
    """The SQL pieces every check of one set of contracts shares."""

    types: tuple[str, ...]
    array_paths: tuple[str, ...]  # dotted, aligned with the `items` column
    items_sql: str


@cache
def _plan(fingerprint: str) -> _Plan:
    contracts = load_contracts()
    paths = sorted({p for c in contracts.values() for p in array_paths(c)})
    with_arrays = [t for t, c in contracts.items() if array_paths(c)]
    if paths and with_arrays:
        listed = ", ".join(f"'{json_path(p)}'" for p in paths)
        types = ", ".join(f"'{t}'" for t in with_arrays)
        # Per declared array (NULL where absent): the distinct structures of its items, sorted.
        # Bodies of types without arrays (most learner events) are not parsed a second time.
        items_sql = (
            f"case when event_type in ({types}) then list_transform("
            f"json_extract(body, [{listed}]), lambda a: list_sort(list_distinct(list_transform("
            "json_extract(a, '$[*]'), lambda x: json_structure(x)::varchar)))) end"
        )
    else:
        items_sql = "cast(null as varchar[][])"
    return _Plan(tuple(contracts), tuple(paths), items_sql)


def check_new_deliveries(warehouse: Path) -> ContractCheckResult:
    """Check the rows loaded into ``warehouse`` since the last check; call it after each load.

    Takes the warehouse lock and writes the contract tables in one transaction. Safe to call
    when nothing was loaded (it returns at once) and on a warehouse that has no raw table yet.
    """
    with warehouse_lock(Path(warehouse), on_wait=log.warning):
        con = duckdb.connect(str(warehouse))
        try:
            con.execute("set TimeZone = 'UTC'")
            return check_deliveries(con)
        finally:
            con.close()


def check_deliveries(con: duckdb.DuckDBPyConnection) -> ContractCheckResult:
    """:func:`check_new_deliveries` on an open connection (the caller holds the lock)."""
    contracts = load_contracts()
    fingerprint = contracts_fingerprint(contracts)
    plan = _plan(fingerprint)
    con.execute("begin transaction")
    try:
        con.execute(DDL)
        if not _has_raw_table(con):
            con.execute("commit")
            return ContractCheckResult()
        # A warehouse last loaded before landing format 3 (its loader's DDL adds this too).
        con.execute("alter table raw.edume_events add column if not exists body_shape varchar")
        _fill_counts_once(con)
        watermark, rechecked = _watermark(con, fingerprint)
        (through,) = con.execute("select max(loaded_at) from raw.edume_events").fetchone()
        result = ContractCheckResult(rechecked_all=rechecked)
        if through is not None and (watermark is None or through > watermark):
            result = _check_window(con, contracts, plan, watermark, through, rechecked)
            con.execute("delete from raw.edume_contract_state")
            con.execute(
                "insert into raw.edume_contract_state values (?, ?, now()::timestamp)",
                [fingerprint, through],
            )
        con.execute("commit")
    except BaseException:
        con.execute("rollback")
        raise
    return result


def _has_raw_table(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(
        con.execute(
            "select count(*) from information_schema.tables "
            "where table_schema = 'raw' and table_name = 'edume_events'"
        ).fetchone()[0]
    )


def _fill_counts_once(con: duckdb.DuckDBPyConnection) -> None:
    """Count the deliveries recorded before the counts table existed (an upgraded warehouse)."""
    counted = con.execute("select exists (from raw.edume_contract_deviation_counts)").fetchone()
    recorded = con.execute(
        "select exists (from raw.edume_contract_deviating_deliveries)"
    ).fetchone()
    if recorded[0] and not counted[0]:
        con.execute(f"insert into raw.edume_contract_deviation_counts {ALL_COUNTS_QUERY}")


def _watermark(con: duckdb.DuckDBPyConnection, fingerprint: str) -> tuple[Any, bool]:
    """The newest ``loaded_at`` already checked; None (and tables cleared) for new contracts."""
    state = con.execute(
        "select contracts_sha256, checked_through from raw.edume_contract_state"
    ).fetchone()
    if state is not None and state[0] == fingerprint:
        return state[1], False
    con.execute("delete from raw.edume_contract_shape_deviations")
    con.execute("delete from raw.edume_contract_deviating_deliveries")
    con.execute("delete from raw.edume_contract_deviation_counts")
    return None, state is not None


def _window_sql(watermark: Any) -> tuple[str, dict[str, Any]]:
    if watermark is None:
        return "loaded_at <= $through", {}
    return "loaded_at > $watermark and loaded_at <= $through", {"watermark": watermark}


@dataclass(frozen=True)
class _Group:
    """The new lines of one event type that share a shape, and how that shape deviates.

    The shape is named by the receiver (``body_shape``, landing format 3), or, for older lines,
    is DuckDB's ``json_structure`` of the body with its arrays' item structures."""

    event_type: str
    lines: int
    problems: tuple[Deviation, ...]
    body_shape: str | None = None
    structure: str | None = None
    items: Items = None

    @property
    def key(self) -> str:
        return _shape_key(self.event_type, self.body_shape or self.structure, self.items)


def _named_groups(
    con: duckdb.DuckDBPyConnection,
    contracts: Mapping[str, Mapping[str, Any]],
    selected: str,
    params: dict[str, Any],
) -> list[_Group]:
    """Lines whose shape the receiver named: one example body of each (type, shape) is parsed
    and validated (equal names mean equal shapes, array items included)."""
    rows = con.execute(
        f"select event_type, body_shape, any_value(body)::varchar, count(*) "
        f"from raw.edume_events where {selected} and body_shape is not null group by all",
        params,
    ).fetchall()
    return [
        _Group(
            event_type,
            lines,
            tuple(
                distinct_deviations(shape_of(parse_body(example.encode())), contracts[event_type])
            ),
            body_shape=name,
        )
        for event_type, name, example, lines in rows
    ]


def _structured_groups(
    con: duckdb.DuckDBPyConnection,
    contracts: Mapping[str, Mapping[str, Any]],
    plan: _Plan,
    selected: str,
    params: dict[str, Any],
) -> list[_Group]:
    """Lines landed before the receiver named shapes (formats 1 and 2): one scan reduces them to
    their distinct (json_structure, items) pairs; each body and item structure is validated once."""
    rows = con.execute(
        f"""
        select event_type, json_structure(body)::varchar as shape, {plan.items_sql} as items,
               count(*) as lines
        from raw.edume_events
        where {selected} and body_shape is null
        group by all
        """,
        params,
    ).fetchall()
    item_cache: dict[tuple[str, str, str], list[Deviation]] = {}
    groups = []
    for event_type, shape, items, lines in rows:
        contract = contracts[event_type]
        problems = set(distinct_deviations(shape_from_structure(shape), contract))
        for path, structures in zip(plan.array_paths, items or (), strict=False):
            for structure in structures or ():
                key = (event_type, path, structure)
                if key not in item_cache:
                    item_cache[key] = _item_deviations(contract, path, structure)
                problems.update(item_cache[key])
        groups.append(
            _Group(event_type, lines, tuple(sorted(problems)), structure=shape, items=items)
        )
    return groups


def _check_window(
    con: duckdb.DuckDBPyConnection,
    contracts: Mapping[str, Mapping[str, Any]],
    plan: _Plan,
    watermark: Any,
    through: Any,
    rechecked: bool,
) -> ContractCheckResult:
    window, params = _window_sql(watermark)
    params = {**params, "through": through, "types": list(plan.types)}
    selected = f"{window} and event_type in (select unnest($types))"
    groups = [
        *_named_groups(con, contracts, selected, params),
        *_structured_groups(con, contracts, plan, selected, params),
    ]
    per_type: dict[str, list[_Group]] = {}
    for group in groups:
        per_type.setdefault(group.event_type, []).append(group)
    whole_types: dict[str, str] = {}
    deviating: list[_Group] = []
    found: list[tuple[str, str, str, str, str, str, str]] = []
    for event_type, entries in per_type.items():
        kinds = {group.problems for group in entries}
        if len(kinds) == 1 and entries[0].problems:
            # Every delivery of the type deviates in the same ways (a wrong hypothesis does that
            # to a whole type): its deliveries are found by type, without looking at shapes.
            key = _shape_key(event_type, "*", [str(d) for d in entries[0].problems])
            whole_types[event_type] = key
            found += _found_rows(key, event_type, contracts[event_type], entries[0].problems)
            continue
        for group in entries:
            if group.problems:
                deviating.append(group)
                found += _found_rows(group.key, event_type, contracts[event_type], group.problems)
    rows = sum(group.lines for group in groups)
    deviating_rows = (
        _record(con, window, params, plan, whole_types, deviating, found) if found else 0
    )
    deviating_shapes = len(deviating) + sum(len(per_type[t]) for t in whole_types)
    return ContractCheckResult(rows, len(groups), deviating_shapes, deviating_rows, rechecked)


def _found_rows(
    key: str, event_type: str, contract: Mapping[str, Any], problems: Sequence[Deviation]
) -> list[tuple[str, str, str, str, str, str, str]]:
    return [
        (
            key,
            event_type,
            d.path,
            d.problem,
            d.expected,
            d.seen,
            ", ".join(read_by(contract, d.path)),
        )
        for d in problems
    ]


def _item_deviations(contract: Mapping[str, Any], path: str, structure: str) -> list[Deviation]:
    """Deviations of an item whose ``json_structure`` is ``structure``, in the array at ``path``
    (the array's own type is the body check's business). Arrays inside an item are left opaque,
    as no contract declares one (a test keeps it so)."""
    node = subschema(contract, path)
    if node is None or "items" not in node:
        return []
    return distinct_deviations(shape_from_structure(structure), node["items"], f"{path}[]")


def _shape_key(event_type: str, shape: str | None, items: Items) -> str:
    canonical = json.dumps([event_type, shape, items])
    return hashlib.sha256(canonical.encode()).hexdigest()


def _record(
    con: duckdb.DuckDBPyConnection,
    window: str,
    params: dict[str, Any],
    plan: _Plan,
    whole_types: Mapping[str, str],
    deviating: list[_Group],
    found: list[tuple[str, str, str, str, str, str, str]],
) -> int:
    """Store the deviations and find the deliveries that have them: by type where a whole type
    deviates alike, by ``body_shape`` where the receiver named the shape, else by (structure,
    items), which takes a second parse of those types' older rows."""
    con.execute(
        "insert into raw.edume_contract_shape_deviations "
        "select * from (select unnest($rows, recursive := true)) "
        "where shape_key not in (select shape_key from raw.edume_contract_shape_deviations)",
        {"rows": [dict(zip(_FOUND_COLUMNS, row, strict=True)) for row in found]},
    )
    con.execute(
        "create or replace temp table _new_deviating "
        "(shape_key varchar, delivery_id varchar, received_at timestamp)"
    )
    window_params = {k: v for k, v in params.items() if k != "types"}
    by_type = [{"event_type": t, "shape_key": k} for t, k in whole_types.items()]
    _find_deliveries(con, window, window_params, by_type, ("event_type",))
    by_name = [
        {"event_type": g.event_type, "body_shape": g.body_shape, "shape_key": g.key}
        for g in deviating
        if g.body_shape is not None
    ]
    _find_deliveries(con, window, window_params, by_name, ("event_type", "body_shape"))
    structured = [g for g in deviating if g.body_shape is None]
    if structured:
        con.execute(
            "create or replace temp table _contract_deviating as "
            "select unnest($rows, recursive := true)",
            {
                "rows": [
                    {
                        "shape_key": g.key,
                        "event_type": g.event_type,
                        "shape": g.structure,
                        "items": g.items,
                    }
                    for g in structured
                ]
            },
        )
        con.execute(
            f"""
            insert into _new_deviating
            select k.shape_key, e.delivery_id, e.received_at
            from (
                select delivery_id, received_at, event_type,
                       json_structure(body)::varchar as shape, {plan.items_sql} as items
                from raw.edume_events
                where {window} and event_type in (select unnest($types))
                  and body_shape is null
            ) as e
            join _contract_deviating as k
              on k.event_type = e.event_type and k.shape = e.shape
             and k.items is not distinct from e.items
            """,
            {**params, "types": sorted({g.event_type for g in structured})},
        )
        con.execute("drop table _contract_deviating")
    con.execute(_ADD_COUNTS_SQL)
    con.execute("insert into raw.edume_contract_deviating_deliveries select * from _new_deviating")
    (recorded,) = con.execute("select count(*) from _new_deviating").fetchone()
    con.execute("drop table _new_deviating")
    return recorded


def _find_deliveries(
    con: duckdb.DuckDBPyConnection,
    window: str,
    params: dict[str, Any],
    keys: list[dict[str, str]],
    columns: tuple[str, ...],
) -> None:
    """Add to ``_new_deviating`` the window's rows that match one of ``keys`` on ``columns``,
    each with its key's ``shape_key``."""
    if not keys:
        return
    matches = " and ".join(f"k.{column} = e.{column}" for column in columns)
    con.execute(
        f"""
        insert into _new_deviating
        select k.shape_key, e.delivery_id, e.received_at
        from raw.edume_events as e
        join (select unnest($keys, recursive := true)) as k on {matches}
        where {window}
        """,
        {**params, "keys": keys},
    )


_FOUND_COLUMNS = ("shape_key", "event_type", "path", "problem", "expected", "seen", "read_by")


def read_deviations(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The deviations view as dicts, most deliveries first; empty when never checked."""
    exists = con.execute(
        "select count(*) from information_schema.tables "
        "where table_schema = 'raw' and table_name = 'edume_contract_deviations'"
    ).fetchone()[0]
    if not exists:
        return []
    cursor = con.execute(
        f"select * from {DEVIATIONS_VIEW} "
        "order by deliveries desc, event_type, path, problem, expected, seen"
    )
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
