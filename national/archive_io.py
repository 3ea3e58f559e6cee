"""Reading the regional archives (``central.archive.schema``) as one table.

Each region's archive is one root (a local directory or an object-store URL); the national
table is the union of the roots' ``sightings/`` trees. Both readers take the partition keys
as strings and the file columns with the schema's own types, stated up front: Spark then
neither samples file footers nor guesses types, and an archive without files yet is an
empty table rather than an error.
"""

from __future__ import annotations

import glob
from collections.abc import Mapping
from pathlib import Path
from typing import Final

import pyarrow as pa

from central.archive.schema import FILE_SCHEMA, PARTITION_KEYS, SIGHTINGS_DIR
from shared.errors import InvalidRequest

_REMOTE: Final = ("s3://", "s3a://", "gs://", "abfs://", "hdfs://")


def _spark_type(t: pa.DataType) -> str:
    """Spark SQL DDL of one Arrow type of the archive schema."""
    if pa.types.is_string(t):
        return "STRING"
    if pa.types.is_float32(t):
        return "FLOAT"
    if pa.types.is_int32(t):
        return "INT"
    if pa.types.is_timestamp(t):
        return "TIMESTAMP"
    if pa.types.is_list(t):
        return f"ARRAY<{_spark_type(t.value_type)}>"
    if pa.types.is_struct(t):
        fields = ", ".join(f"{f.name}: {_spark_type(f.type)}" for f in t)
        return f"STRUCT<{fields}>"
    raise TypeError(f"archive column type {t} has no Spark equivalent here")


def spark_ddl() -> str:
    """The archive table's schema as Spark DDL: file columns, then the partition keys."""
    cols = [f"{f.name} {_spark_type(f.type)}" for f in FILE_SCHEMA]
    cols += [f"{key} STRING" for key in PARTITION_KEYS]
    return ", ".join(cols)


def sightings_root(root: str) -> str:
    """The ``sightings/`` directory of an archive root."""
    return f"{root.rstrip('/')}/{SIGHTINGS_DIR}"


def pick_roots(archives: Mapping[str, str], regions: tuple[str, ...]) -> dict[str, str]:
    """The archive roots of ``regions`` (every configured one when empty).

    Raises:
        InvalidRequest: A region that has no archive configured.
    """
    if not regions:
        return dict(archives)
    unknown = [r for r in regions if r not in archives]
    if unknown:
        known = ", ".join(sorted(archives)) or "none"
        raise InvalidRequest(f"region: expected one of {known}, got {', '.join(unknown)}")
    return {r: archives[r] for r in regions}


def parquet_globs(roots: Mapping[str, str]) -> list[str]:
    """DuckDB globs of every file under the roots; local roots without files are left out."""
    out: list[str] = []
    for root in roots.values():
        pattern = f"{sightings_root(root)}/*/*/*.parquet"
        if root.startswith(_REMOTE) or glob.glob(pattern):
            out.append(pattern)
    return out


def duckdb_source(roots: Mapping[str, str]) -> str | None:
    """A DuckDB table expression over the roots (None: no file yet).

    The globs come from configuration (archive roots), not from requests; quotes in them
    are doubled.
    """
    globs = parquet_globs(roots)
    if not globs:
        return None
    files = ", ".join("'" + g.replace("'", "''") + "'" for g in globs)
    types = ", ".join(f"'{key}': 'VARCHAR'" for key in PARTITION_KEYS)
    return f"read_parquet([{files}], hive_partitioning = true, hive_types = {{{types}}})"


def local_files(root: str | Path) -> list[Path]:
    """The Parquet files of a local archive root, sorted (tests and the benchmark)."""
    return sorted(Path(sightings_root(str(root))).glob("*/*/*.parquet"))


__all__ = [
    "duckdb_source",
    "local_files",
    "parquet_globs",
    "pick_roots",
    "sightings_root",
    "spark_ddl",
]
