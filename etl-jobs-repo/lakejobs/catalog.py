"""Registering the partitions a run wrote in the Glue Data Catalog, so queries through the catalog see them.

A catalog table with partition keys shows only registered partitions; nothing discovers new directories
on its own. The sinks record the partitions each output received (`JobContext.written_partitions`), and
after `main` the Glue edge registers them in the output's table, named by the platform argument
`--catalog_tables` (`{"<output>": {"database": ..., "table": ...}}`, set by the deployment). Registering
is idempotent: a partition that is already registered is left as it is, so a rerun is safe. A partition a
rebuild emptied stays registered and reads as no rows.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from lakejobs.io import HIVE_DEFAULT_PARTITION, join_path, partition_dir

# Glue's BatchCreatePartition accepts at most this many partitions per call.
_BATCH = 100
# What a partition inherits from its table; the rest (location) is the partition's own.
_INHERITED = ("InputFormat", "OutputFormat", "SerdeInfo", "Columns", "Compressed", "Parameters")


class CatalogError(RuntimeError):
    """Partitions that could not be registered; the message names the table and the reason."""


@dataclass(frozen=True)
class CatalogTableRef:
    """The Glue table describing one output."""

    database: str
    table: str


def parse_catalog_tables(text: str) -> dict[str, CatalogTableRef]:
    """`--catalog_tables` as the deployment sets it; empty text (local runs) means no catalog."""
    if not text.strip():
        return {}
    try:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise TypeError(raw)
        return {str(output): CatalogTableRef(str(ref["database"]), str(ref["table"])) for output, ref in raw.items()}
    except (ValueError, TypeError, KeyError):
        raise ValueError(
            '--catalog_tables: expected JSON like {"<output>": {"database": "...", "table": "..."}}'
        ) from None


def partition_values(values: Sequence[Any]) -> list[str]:
    """Catalog partition values as text, unescaped, as Spark names the directories (a null is Hive's default)."""
    texts = [str(value).lower() if isinstance(value, bool) else "" if value is None else str(value) for value in values]
    return [text or HIVE_DEFAULT_PARTITION for text in texts]


def register_partitions(
    glue: Any,
    ref: CatalogTableRef,
    path: str,
    partition_by: Sequence[str],
    partitions: Iterable[Sequence[Any]],
) -> int:
    """Register `partitions` (value tuples in `partition_by` order) of the dataset at `path`; returns how many
    were new. The table's partition keys must be `partition_by`: the spec declares both, so a difference means
    the deployed table and the job disagree."""
    label = f"{ref.database}.{ref.table}"
    table = glue.get_table(DatabaseName=ref.database, Name=ref.table)["Table"]
    keys = [key["Name"] for key in table.get("PartitionKeys", [])]
    if keys != list(partition_by):
        raise CatalogError(f"{label}: partition keys {keys} differ from the columns the job wrote {list(partition_by)}")
    descriptor = {k: v for k, v in table["StorageDescriptor"].items() if k in _INHERITED}
    inputs = [
        {
            "Values": partition_values(values),
            "StorageDescriptor": {**descriptor, "Location": join_path(path, partition_dir(partition_by, values)) + "/"},
        }
        for values in sorted({tuple(v) for v in partitions}, key=repr)
    ]
    created = 0
    for start in range(0, len(inputs), _BATCH):
        batch = inputs[start : start + _BATCH]
        response = glue.batch_create_partition(DatabaseName=ref.database, TableName=ref.table, PartitionInputList=batch)
        errors = response.get("Errors", [])
        failures = [e for e in errors if e.get("ErrorDetail", {}).get("ErrorCode") != "AlreadyExistsException"]
        if failures:
            shown = ", ".join(
                f"{e.get('PartitionValues')} ({e.get('ErrorDetail', {}).get('ErrorMessage', 'error')})"
                for e in failures[:5]
            )
            raise CatalogError(f"{label}: could not register {len(failures)} partition(s): {shown}")
        created += len(batch) - len(errors)
    return created


def register_written_partitions(
    glue: Any,
    written: Mapping[str, tuple[tuple[str, ...], set[tuple[Any, ...]]]],
    outputs: Mapping[str, str],
    text: str,
) -> dict[str, int]:
    """Register what the sinks recorded for every output that has a catalog table; new partitions per output.

    `written` maps a dataset path to (partition columns, partition values); `outputs` maps output names to
    their paths (the job's `--output_<name>` values); `text` is the `--catalog_tables` argument.
    """
    created: dict[str, int] = {}
    by_path = {path.rstrip("/"): name for name, path in outputs.items()}
    tables = parse_catalog_tables(text)
    unknown = sorted(set(tables) - set(outputs))
    if unknown:
        raise ValueError(f"--catalog_tables: no output named {', '.join(unknown)}")
    for path, (columns, values) in sorted(written.items()):
        name = by_path.get(path.rstrip("/"))
        if name is None or name not in tables or not columns:
            continue
        created[name] = register_partitions(glue, tables[name], path, columns, values)
    return created
