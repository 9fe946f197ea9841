"""The per-event-type payload contracts and the one validator that compares a shape with them.

A contract is a JSON Schema 2020-12 document, ``pipeline/contracts/edume/<type>.json`` (package
data). The validator understands the subset the contracts use: ``type`` (a name or a list),
``properties``, ``required``, ``additionalProperties: false`` and ``items``; ``const`` and
``format`` are left to full JSON Schema validators (the tests use ``jsonschema``). Annotations:

- ``x-provenance``: ``documented`` (eduMe's published samples), ``hypothesis`` (this project's
  assumption) or ``observed`` (written by ``contract-report --propose``, awaiting review);
- ``x-read-by``: the staging columns (``model.column``) that read the path, or, for ``type`` and
  ``timestamp``, the raw column the loader derives from it;
- ``x-unused``: true where nothing reads the path (it is still checked).

A *shape* is what a body looks like without its values: a ``dict`` of shapes for an object, a
``list`` of distinct item shapes for an array whose items are known, :data:`OPAQUE_ARRAY` for an
array whose items are checked separately, or a JSON type name for a scalar. Shapes come from
DuckDB's ``json_structure()`` (:func:`shape_from_structure`) or from parsed values
(:func:`shape_of`).

Numbers: the warehouse reads ids with ``edume.json_bigint``, which accepts only digits, so a
JSON number written with a fraction or exponent (DuckDB's ``DOUBLE``, Python's ``float``, even
``1.0``) is ``number``, never ``integer``; an integer literal (DuckDB's ``UBIGINT``, ``BIGINT``,
``HUGEINT``; Python's ``int``) is ``integer``, which also satisfies ``number``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

CONTRACT_PACKAGE = "pipeline.contracts"
CONTRACT_DIR = "edume"
OPAQUE_ARRAY = "array"
PROBLEMS = ("missing", "unexpected", "type")
ABSENT = "absent"

# DuckDB json_structure() leaf types -> JSON Schema types. "JSON" outside an array is an empty
# object (json_structure gives it for `{}`); inside arrays items are never read from it.
_DUCKDB_TYPES = {
    "UBIGINT": "integer",
    "BIGINT": "integer",
    "HUGEINT": "integer",
    "UHUGEINT": "integer",
    "INTEGER": "integer",
    "DOUBLE": "number",
    "VARCHAR": "string",
    "BOOLEAN": "boolean",
    "NULL": "null",
}


@dataclass(frozen=True, order=True)
class Deviation:
    """One way a shape differs from its contract, at a dotted ``path`` (``[]`` for array items).

    ``problem`` is ``missing`` (a required field is absent: ``seen`` is ``absent``),
    ``unexpected`` (a field the contract does not list: ``expected`` is ``absent``) or ``type``.
    """

    path: str
    problem: str
    expected: str
    seen: str


@cache
def load_contracts() -> Mapping[str, Mapping[str, Any]]:
    """Every shipped contract by event type (read once, on first use)."""
    folder = resources.files(CONTRACT_PACKAGE).joinpath(CONTRACT_DIR)
    contracts = {}
    for entry in folder.iterdir():
        if entry.name.endswith(".json"):
            contract = json.loads(entry.read_text(encoding="utf-8"))
            contracts[contract["title"]] = contract
    return dict(sorted(contracts.items()))


def contracts_fingerprint(contracts: Mapping[str, Mapping[str, Any]]) -> str:
    """SHA-256 of the contracts' canonical JSON: when it changes, past checks are redone."""
    canonical = json.dumps(contracts, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def shape_from_structure(structure: str) -> Any:
    """The shape of a body from DuckDB's ``json_structure(body)`` text (arrays left opaque)."""

    def convert(node: Any) -> Any:
        if isinstance(node, dict):
            return {key: convert(value) for key, value in node.items()}
        if isinstance(node, list):
            return OPAQUE_ARRAY
        if node == "JSON":
            return {}
        return _DUCKDB_TYPES.get(node, node.lower())

    return convert(json.loads(structure))


# JSON types of the scalars a parser returns, by exact Python type (bool is not int here).
_SCALAR_TYPES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def shape_of(value: Any) -> Any:
    """The shape of a parsed JSON value, array items included (distinct, in first-seen order).

    The receiver runs this on every delivery (landing format 3's ``body_shape``), so the usual
    types are told apart by one look-up of their exact type; subclasses take the slower way."""
    kind = _SCALAR_TYPES.get(type(value))
    if kind is not None:
        return kind
    if type(value) is dict:
        return {key: shape_of(item) for key, item in value.items()}
    if type(value) is list:
        items: list[Any] = []
        for item in value:
            shape = shape_of(item)
            if shape not in items:
                items.append(shape)
        return items
    return _shape_of_subclass(value)


def _shape_of_subclass(value: Any) -> Any:
    if isinstance(value, dict):
        return shape_of(dict(value))
    if isinstance(value, list):
        return shape_of(list(value))
    # The nearest JSON type among the value's bases (a bool subclass meets bool before int).
    return next((_SCALAR_TYPES[t] for t in type(value).__mro__ if t in _SCALAR_TYPES), "null")


def json_type_of(shape: Any) -> str:
    """The JSON Schema type name of a shape."""
    if isinstance(shape, dict):
        return "object"
    if isinstance(shape, list) or shape == OPAQUE_ARRAY:
        return "array"
    return shape


def expected_types(schema: Mapping[str, Any]) -> tuple[str, ...]:
    """The schema's ``type`` as a tuple (empty: any type is accepted)."""
    declared = schema.get("type", ())
    return (declared,) if isinstance(declared, str) else tuple(declared)


def type_matches(seen: str, expected: tuple[str, ...]) -> bool:
    """Whether a value of JSON type ``seen`` satisfies ``expected`` (an integer is a number)."""
    return not expected or seen in expected or (seen == "integer" and "number" in expected)


def join_path(parent: str, key: str) -> str:
    return f"{parent}.{key}" if parent else key


def deviations(shape: Any, schema: Mapping[str, Any], path: str = "") -> Iterator[Deviation]:
    """Every deviation of ``shape`` from ``schema`` (may repeat one found in several items)."""
    expected = expected_types(schema)
    seen = json_type_of(shape)
    if not type_matches(seen, expected):
        yield Deviation(path, "type", "|".join(expected), seen)
        return
    if isinstance(shape, dict):
        properties = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in shape:
                wanted = "|".join(expected_types(properties.get(key, {}))) or "any"
                yield Deviation(join_path(path, key), "missing", wanted, ABSENT)
        for key, child in shape.items():
            if key in properties:
                yield from deviations(child, properties[key], join_path(path, key))
            elif schema.get("additionalProperties", True) is False:
                yield Deviation(join_path(path, key), "unexpected", ABSENT, json_type_of(child))
    elif isinstance(shape, list) and "items" in schema:
        for item in shape:
            yield from deviations(item, schema["items"], f"{path}[]")


def distinct_deviations(shape: Any, schema: Mapping[str, Any], path: str = "") -> list[Deviation]:
    """:func:`deviations` without repeats, sorted."""
    return sorted(set(deviations(shape, schema, path)))


def subschema(schema: Mapping[str, Any], path: str) -> Mapping[str, Any] | None:
    """The part of ``schema`` at a dotted ``path`` (``[]`` steps into items), or None."""
    node: Mapping[str, Any] | None = schema
    for step in _steps(path):
        if node is None:
            return None
        node = node.get("items") if step == "[]" else node.get("properties", {}).get(step)
    return node


def _steps(path: str) -> Iterator[str]:
    for part in path.split(".") if path else ():
        key = part
        trailing = 0
        while key.endswith("[]"):
            key, trailing = key[:-2], trailing + 1
        if key:
            yield key
        yield from ["[]"] * trailing


def array_paths(schema: Mapping[str, Any], path: str = "") -> list[str]:
    """Dotted paths of the arrays the contract declares outside other arrays (checked per item)."""
    found = []
    for key, child in schema.get("properties", {}).items():
        child_path = join_path(path, key)
        if "array" in expected_types(child):
            found.append(child_path)
        else:
            found.extend(array_paths(child, child_path))
    return found


def json_path(dotted: str) -> str:
    """``payload.teams`` -> ``$."payload"."teams"`` (quoted, so any key is safe)."""
    return "$" + "".join(f'."{key}"' for key in dotted.split("."))


def read_by(schema: Mapping[str, Any], path: str) -> tuple[str, ...]:
    """The staging columns reading ``path`` (empty when none does, or it is not in the contract)."""
    node = subschema(schema, path)
    return tuple(node.get("x-read-by", ())) if node is not None else ()


def schema_leaves(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping]]:
    """Every property of the contract as (dotted path, its schema), depth first."""
    for key, child in schema.get("properties", {}).items():
        child_path = join_path(path, key)
        yield child_path, child
        yield from schema_leaves(child, child_path)
    if "items" in schema:
        yield from schema_leaves(schema["items"], f"{path}[]")
