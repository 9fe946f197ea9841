"""The contracts and the staging models agree: every payload path staging reads is in a
contract, every contract field is read by staging or marked unused, and only staging reads
payload paths."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.contracts.lineage import staging_reads_in
from pipeline.contracts.schema import expected_types, load_contracts, schema_leaves

DBT = Path(__file__).resolve().parents[2] / "dbt_project"
STAGING = DBT / "models" / "staging" / "edume"


def _declared() -> set[tuple[str, str]]:
    return {
        (path, reader)
        for contract in load_contracts().values()
        for path, node in schema_leaves(contract)
        for reader in node.get("x-read-by", ())
    }


def test_every_path_staging_reads_is_declared_in_a_contract_with_its_reader() -> None:
    read = {(r.path, r.reader) for r in staging_reads_in(STAGING)}
    assert read, "the staging parser found no read: it no longer understands the models"
    assert read - _declared() == set()


def test_every_reader_a_contract_names_is_a_staging_read() -> None:
    read = {(r.path, r.reader) for r in staging_reads_in(STAGING)}
    assert _declared() - read == set()


def test_every_contract_field_is_read_or_marked_unused_and_has_a_provenance() -> None:
    for event_type, contract in load_contracts().items():
        for path, node in schema_leaves(contract):
            where = f"{event_type}: {path}"
            assert node.get("x-provenance") in {"documented", "hypothesis", "observed"}, where
            is_container = "object" in expected_types(node)
            read, unused = bool(node.get("x-read-by")), bool(node.get("x-unused"))
            assert not (read and unused), f"{where} is read and marked unused"
            assert is_container or read or unused, f"{where} is neither read nor marked unused"


def _code(sql: str) -> str:
    """The SQL without Jinja and SQL comments (which may well mention a body)."""
    return re.sub(r"--[^\n]*", "", re.sub(r"\{#.*?#\}", "", sql, flags=re.DOTALL))


def test_only_staging_models_read_payload_paths() -> None:
    reads_payload = re.compile(r"edume\.json_\w+\(|\bbody\b")
    outside = [
        path.relative_to(DBT).as_posix()
        for path in (DBT / "models").rglob("*.sql")
        if STAGING not in path.parents and reads_payload.search(_code(path.read_text()))
    ]
    assert outside == []
