"""What an analyst sees in the exports, read with pyarrow (an independent reader, close to what
BI tools use): shared by the export tests and the real dbt build's export test."""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

# Declared (dbt contract or DuckDB) type names -> the Arrow type an analyst reads.
_ARROW_TYPES = {
    "varchar": pa.string(),
    "text": pa.string(),
    "string": pa.string(),
    "bigint": pa.int64(),
    "int8": pa.int64(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "int4": pa.int32(),
    "smallint": pa.int16(),
    "tinyint": pa.int8(),
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "double": pa.float64(),
    "float": pa.float32(),
    "real": pa.float32(),
    "date": pa.date32(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp with time zone": pa.timestamp("us", tz="UTC"),
}
_DECIMAL = re.compile(r"(?:decimal|numeric)\((\d+),\s*(\d+)\)")


def arrow_type(declared: str) -> pa.DataType:
    """The Arrow type a column declared as ``declared`` must have in the exports."""
    name = declared.strip().lower()
    if match := _DECIMAL.fullmatch(name):
        return pa.decimal128(int(match[1]), int(match[2]))
    return _ARROW_TYPES[name]


def read_export(path: Path) -> pa.Table:
    """An exported relation as pyarrow reads it: a file, or a monthly mart's directory (its
    ``month`` partition key is the directory name, not a column of the mart)."""
    if path.is_dir():
        return ds.dataset(path, format="parquet", partitioning=None).to_table()
    return pq.read_table(path)


def bi_problems(schema: pa.Schema) -> list[str]:
    """Columns BI tools read badly: unsigned or 128-bit integers, JSON or binary, timestamps
    not in UTC."""
    problems = []
    for column in schema:
        kind = column.type
        if pa.types.is_unsigned_integer(kind):
            problems.append(f"{column.name}: unsigned {kind}")
        if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
            problems.append(f"{column.name}: binary")
        if isinstance(kind, pa.ExtensionType) or "json" in str(kind).lower():
            problems.append(f"{column.name}: {kind}")
        if pa.types.is_decimal(kind) and kind.scale == 0:
            problems.append(f"{column.name}: a 128-bit integer as {kind}")
        if pa.types.is_timestamp(kind) and kind.tz != "UTC":
            problems.append(f"{column.name}: timestamp in {kind.tz!r}, not UTC")
    return problems
