"""Sources and sinks: schema-checked reads that keep malformed records, quarantine, and idempotent writes.

Three rules hold everywhere here:
- a record that does not match its schema is never dropped: `split_malformed` separates it with a reason
  and `write_quarantine` stores and counts it; a value of the wrong type makes its record malformed on the
  local path and on Glue's DynamicFrame path alike (`conform_to_schema`), never a silent null;
- a rebuild never purges first: `rebuild_partitions` lists the files it will replace, writes the new
  generation beside them under new unique names, and only then deletes exactly the listed files, so a
  failed run leaves the previous data readable and a rerun converges to the same result;
- an append adds no row that is already there (`append_dataset`), so retrying a run that appended and then
  failed before its bookmark commit adds nothing twice.

Every output sink finishes by writing `<dataset>/_manifest.json` (`MANIFEST_FILE`) with the rows this run
wrote and the run's read/written/quarantined counts: the post-deploy integration check reads it instead of
scanning the data. It is written last, so a manifest never describes data that is not in place yet, and its
`_` prefix keeps it out of data listings (a rebuild never deletes it).
"""

from __future__ import annotations

import csv
import json
import os
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pyspark.sql import Column, DataFrame, SparkSession, Window
from pyspark.sql import functions as sf
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

if TYPE_CHECKING:
    from lakejobs.context import JobContext

FORMATS = ("json", "csv", "parquet")
# Beside the data files of every output dataset; read by etl_jobs.integration_check.
MANIFEST_FILE = "_manifest.json"
# Under the run's --TempDir: one record per Glue run, `<TempDir>/_runs/<run id>.json`, with the run's counts;
# the group's state machine reads it into the run's audit item (etl_jobs.orchestration).
RUN_RECORDS_FOLDER = "_runs"
CORRUPT_COLUMN = "_corrupt_record"
HIVE_DEFAULT_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Characters Spark percent-encodes in partition directory names (as its catalog utilities do).
_PARTITION_ESCAPED = set("\"#%'*/:=?\\{[]^\x7f") | {chr(c) for c in range(1, 32)}
_S3_DELETE_BATCH = 1000


# --- file stores ------------------------------------------------------------------------------------


class FileStore(Protocol):
    """Lists and deletes the data files of a dataset; local paths and s3:// URLs behind one interface."""

    def list_files(self, path: str) -> list[str]:
        """Data files under `path` (recursively), sorted; Spark's `_`-prefixed markers and temp dirs excluded."""
        ...

    def delete_files(self, paths: Sequence[str]) -> None:
        """Delete exactly these files; raise if any could not be deleted."""
        ...

    def write_text(self, path: str, text: str) -> None:
        """Create or replace the file at `path` with `text` (UTF-8); a reader sees the old or the new content."""
        ...

    def read_head(self, path: str, max_bytes: int) -> bytes:
        """The first `max_bytes` bytes of the file at `path` (all of it when shorter)."""
        ...


def _is_data_file(relative_parts: Sequence[str]) -> bool:
    # `_SUCCESS`, `_temporary/` (an in-flight write) and their `._SUCCESS.crc` checksums are not data: a
    # rebuild must neither count them as the old generation nor delete another writer's staging area.
    return bool(relative_parts) and not any(part.startswith("_") or part.startswith("._") for part in relative_parts)


class LocalFileStore:
    """The local file system (pathlib): what local runs and tests use."""

    def list_files(self, path: str) -> list[str]:
        root = Path(_strip_file_scheme(path))
        if root.is_file():
            return [str(root)]
        if not root.is_dir():
            return []
        return sorted(str(p) for p in root.rglob("*") if p.is_file() and _is_data_file(p.relative_to(root).parts))

    def delete_files(self, paths: Sequence[str]) -> None:
        parents: set[Path] = set()
        for path in paths:
            file = Path(_strip_file_scheme(path))
            file.unlink(missing_ok=True)
            parents.add(file.parent)
        # A partition emptied by the rebuild should disappear like an S3 prefix does, not linger as a folder.
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            if parent.is_dir() and not any(parent.iterdir()):
                parent.rmdir()

    def write_text(self, path: str, text: str) -> None:
        target = Path(_strip_file_scheme(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half a file. The `_` prefix keeps the staging file
        # out of data listings should a crash leave it behind.
        staging = target.with_name(f"_{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            staging.write_text(text, encoding="utf-8")
            os.replace(staging, target)
        finally:
            staging.unlink(missing_ok=True)

    def read_head(self, path: str, max_bytes: int) -> bytes:
        with Path(_strip_file_scheme(path)).open("rb") as file:
            return file.read(max_bytes)


class S3FileStore:
    """S3 through an injected boto3 client (so the Glue job's role and tests' moto both work)."""

    def __init__(self, client: Any) -> None:
        self.client = client

    def list_files(self, path: str) -> list[str]:
        bucket, key = split_s3_url(path)
        prefix = f"{key.rstrip('/')}/" if key else ""
        files: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                relative = item["Key"][len(prefix) :]
                if _is_data_file([p for p in relative.split("/") if p]) and not item["Key"].endswith("/"):
                    files.append(f"s3://{bucket}/{item['Key']}")
        return sorted(files)

    def delete_files(self, paths: Sequence[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for path in paths:
            bucket, key = split_s3_url(path)
            by_bucket.setdefault(bucket, []).append(key)
        failures: list[str] = []
        for bucket, keys in sorted(by_bucket.items()):
            for start in range(0, len(keys), _S3_DELETE_BATCH):
                batch = keys[start : start + _S3_DELETE_BATCH]
                response = self.client.delete_objects(
                    Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                )
                failures += [f"s3://{bucket}/{e['Key']} ({e.get('Code', 'error')})" for e in response.get("Errors", [])]
        if failures:
            raise OSError(f"could not delete {len(failures)} old file(s): {', '.join(failures[:5])}")

    def write_text(self, path: str, text: str) -> None:
        # A single PUT replaces an object atomically; the bucket's default encryption (the data key) applies.
        bucket, key = split_s3_url(path)
        if not key or key.endswith("/"):
            raise ValueError(f"not an object URL (no file name): {path!r}")
        self.client.put_object(Bucket=bucket, Key=key, Body=text.encode("utf-8"))

    def read_head(self, path: str, max_bytes: int) -> bytes:
        bucket, key = split_s3_url(path)
        if max_bytes <= 0:
            return b""
        # A ranged GET: a header line needs the first bytes of the object, not the object.
        body: bytes = self.client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{max_bytes - 1}")["Body"].read()
        return body


def split_s3_url(url: str) -> tuple[str, str]:
    if not url.startswith("s3://") or len(url) <= len("s3://") or url[len("s3://")] == "/":
        raise ValueError(f"not an s3://bucket/key URL: {url!r}")
    bucket, _, key = url[len("s3://") :].partition("/")
    return bucket, key


def file_store(path: str, *, s3_client: Any = None) -> FileStore:
    """The store for `path`: S3 for s3:// URLs (needs a client), the local file system for plain paths."""
    if path.startswith("s3://"):
        if s3_client is None:
            raise ValueError(f"{path}: an S3 path needs an S3 client (local runs read and write local paths)")
        return S3FileStore(s3_client)
    if "://" in path and not path.startswith("file://"):
        raise ValueError(f"{path}: unsupported location; use a local path or an s3:// URL")
    return LocalFileStore()


def join_path(base: str, *parts: str) -> str:
    return "/".join([base.rstrip("/"), *(p.strip("/") for p in parts)])


def _strip_file_scheme(path: str) -> str:
    return path[len("file://") :] if path.startswith("file://") else path


# --- sources ------------------------------------------------------------------------------------------


def with_corrupt_column(schema: StructType) -> StructType:
    return StructType([*schema.fields, StructField(CORRUPT_COLUMN, StringType(), True)])


def read_dataset(
    spark: SparkSession,
    path: str,
    fmt: str,
    schema: StructType,
    *,
    store: FileStore,
    source_column: str | None = None,
) -> DataFrame:
    """Read `path` with an explicit schema; json/csv in PERMISSIVE mode keep bad lines in `_corrupt_record`.

    A location holding no data files yet (the first run of an incremental pipeline) reads as an empty frame
    with the schema, rather than failing. CSV columns are matched to the schema by their header names, file
    by file (`read_csv_by_header`). With `source_column`, each row also says which file it came from, as a
    struct of the file's `path` and its `modified` time (S3's LastModified: when it arrived), e.g. to tell
    deliveries apart.
    """
    if fmt not in FORMATS:
        raise ValueError(f"{path}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if source_column is not None and source_column in schema.fieldNames():
        raise ValueError(f"{path}: source column {source_column!r} is also a column of the schema")
    text_format = fmt != "parquet"
    full_schema = with_corrupt_column(schema) if text_format else schema
    files = store.list_files(path)
    if not files:
        empty = spark.createDataFrame([], full_schema)
        return empty if source_column is None else empty.withColumn(source_column, sf.lit(None).cast(SOURCE_TYPE))
    if not text_format:
        frame = spark.read.schema(schema).parquet(path)
        return frame if source_column is None else frame.withColumn(source_column, _source_file())
    if fmt == "csv":
        return read_csv_by_header(spark, files, schema, store=store, source_column=source_column)
    frame = _permissive(spark, full_schema).option("recursiveFileLookup", "true").json(path)
    if source_column is not None:
        frame = frame.withColumn(source_column, _source_file())
    return _materialised(frame)


# What `source_column` holds: the row's file and when that file was last written.
SOURCE_TYPE = StructType([StructField("path", StringType(), True), StructField("modified", TimestampType(), True)])


def latest_delivery(frame: DataFrame, keys: Sequence[str], source_column: str) -> DataFrame:
    """One row per key, from the delivery that arrived last; drops `source_column` (see `read_dataset`).

    A full read of a raw prefix sees every delivery ever made, so a record a later delivery repeats or corrects
    is there several times: without this a rebuild writes every copy, and whatever joins it multiplies them.
    Files are ordered by modification time (when they arrived), then by path, and two different rows for one
    key in the same file by their content, so every run keeps the same row.
    """
    if source_column not in frame.columns:
        raise ValueError(f"latest_delivery: no column {source_column!r}; read the input with source_column=")
    missing = [k for k in keys if k not in frame.columns]
    if not keys or missing:
        raise ValueError(f"latest_delivery: keys must be columns of the frame, missing {missing or 'all'}")
    columns = [c for c in frame.columns if c != source_column]
    order = Window.partitionBy(*keys).orderBy(
        sf.col(f"{source_column}.modified").desc_nulls_last(),
        sf.col(f"{source_column}.path").desc_nulls_last(),
        sf.to_json(sf.struct(*[sf.col(c) for c in columns])).desc(),
    )
    return frame.withColumn("_rank", sf.row_number().over(order)).where(sf.col("_rank") == 1).select(*columns)


def _source_file() -> Column:
    # `_metadata` is the hidden per-file column of Spark's file sources (path, size, modification time).
    return sf.struct(
        sf.col("_metadata.file_path").alias("path"), sf.col("_metadata.file_modification_time").alias("modified")
    )


def _materialised(frame: DataFrame) -> DataFrame:
    """A raw json/csv read, read once now.

    Spark refuses queries over raw json/csv that reference only the corrupt-record column unless the frame is
    materialised. `cache()` would do that lazily, but Spark serves a later read with an equal plan (the same
    path, schema and options) from that cache, so a second run in the same session would not see files that
    arrived in between. A local checkpoint belongs to this read alone.
    """
    return frame.localCheckpoint(eager=True)


def _permissive(spark: SparkSession, schema: StructType) -> Any:
    return spark.read.schema(schema).option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", CORRUPT_COLUMN)


# Enough for any header line a person would write; a header longer than this is refused, not cut.
_CSV_HEADER_BYTES = 64 * 1024


def read_csv_by_header(
    spark: SparkSession, files: Sequence[str], schema: StructType, *, store: FileStore, source_column: str | None = None
) -> DataFrame:
    """CSV files (with a header line) as `schema`, each column taken by its header name, not its position.

    Spark applies a given schema to CSV columns by position and ignores the header, so a delivery that lists
    its columns in another order would load one column's values into another. Here each file's header is read
    first; files sharing a header are read together with the schema's types in that file's column order;
    columns the schema does not know are dropped and columns a file lacks are null.
    """
    by_header: dict[tuple[str, ...], list[str]] = {}
    for file in files:
        header = _csv_header(file, store.read_head(file, _CSV_HEADER_BYTES))
        if header:
            by_header.setdefault(header, []).append(file)
    known = {f.name: f for f in schema.fields}
    frames: list[DataFrame] = []
    for header, group in sorted(by_header.items()):
        file_schema = StructType(
            [known.get(name, StructField(name, StringType(), True)) for name in header]
            + [StructField(CORRUPT_COLUMN, StringType(), True)]
        )
        raw = _permissive(spark, file_schema).option("header", "true").csv(list(group))
        frames.append(
            raw.select(
                *[
                    (sf.col(f.name) if f.name in header else sf.lit(None).cast(f.dataType)).alias(f.name)
                    for f in schema
                ],
                sf.col(CORRUPT_COLUMN),
                *([_source_file().alias(source_column)] if source_column is not None else []),
            )
        )
    if not frames:
        empty = spark.createDataFrame([], with_corrupt_column(schema))
        return empty if source_column is None else empty.withColumn(source_column, sf.lit(None).cast(SOURCE_TYPE))
    frame = frames[0]
    for other in frames[1:]:
        frame = frame.unionByName(other)
    return _materialised(frame)


def _csv_header(file: str, head: bytes) -> tuple[str, ...]:
    """The column names of a CSV file's header line; () for an empty file."""
    text = head.decode("utf-8-sig", errors="replace")
    line, newline, _ = text.partition("\n")
    if not newline and len(head) >= _CSV_HEADER_BYTES:
        raise ValueError(f"{file}: no end of the header line in its first {_CSV_HEADER_BYTES} bytes")
    if not line.strip():
        return ()
    names = tuple(name.strip() for name in next(csv.reader([line.rstrip("\r")])))
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"{file}: the header names column(s) {', '.join(repeated)} more than once")
    return names


def conform_to_schema(
    frame: DataFrame, schema: StructType, *, fmt: str, choice_columns: Collection[str] = ()
) -> DataFrame:
    """Records as Glue's DynamicFrame reader gave them (`toDF()`), typed as `read_dataset` types the same records.

    The result has the shape of a read: the schema's columns (missing ones null) and `_corrupt_record`. A value
    of the wrong type makes its record corrupt, with the record's text in `_corrupt_record`, exactly where a local
    read would: for json and csv the record is written back as text and parsed by the same Spark parser, with the
    same schema and options, that a local read uses (so "yesterday" as a timestamp, "six" as a number or 7.5 as
    an integer are corrupt on both paths, and an ISO timestamp parses the same on both). A plain cast would turn
    such values into nulls without a trace.

    `choice_columns` are the columns Glue typed as a choice (values of several types) and resolved with
    `make_struct`: a struct with one member per type name, of which a record sets one.
    """
    present = set(frame.columns)
    choices = {name for name in choice_columns if name in present}
    if fmt == "json":
        text = sf.concat(
            sf.lit("{"),
            sf.concat_ws(",", *[_json_field(frame, name, name in choices) for name in frame.columns]),
            sf.lit("}"),
        )
        parsed = sf.from_json(text, with_corrupt_column(schema), _PARSE_OPTIONS)
        return frame.select(parsed.alias("_record")).select(
            *[sf.col(f"_record.{f.name}").alias(f.name) for f in schema.fields],
            sf.col(f"_record.{CORRUPT_COLUMN}").alias(CORRUPT_COLUMN),
        )
    if fmt == "csv":
        as_text = [
            (_choice_value(frame, f.name) if f.name in choices else sf.col(f.name)).cast(StringType())
            if f.name in present
            else sf.lit(None).cast(StringType())
            for f in schema.fields
        ]
        ddl = ", ".join(f"`{f.name}` {f.dataType.simpleString()}" for f in with_corrupt_column(schema).fields)
        parsed = sf.from_csv(sf.to_csv(sf.struct(*as_text)), ddl, _PARSE_OPTIONS)
        return frame.select(parsed.alias("_record"), _record_json(frame, choices).alias("_raw")).select(
            *[sf.col(f"_record.{f.name}").alias(f.name) for f in schema.fields],
            # The record with its column names reads better in the quarantine than a bare CSV line.
            sf.when(sf.col(f"_record.{CORRUPT_COLUMN}").isNotNull(), sf.col("_raw")).alias(CORRUPT_COLUMN),
        )
    # parquet: typed by whoever wrote it (our own sinks); a cast that loses a value still marks the record.
    typed = [
        ((_choice_value(frame, f.name) if f.name in choices else sf.col(f.name)) if f.name in present else sf.lit(None))
        .cast(f.dataType)
        .alias(f.name)
        for f in schema.fields
    ]
    lost: Column = sf.lit(False)
    for f, value in zip(schema.fields, typed, strict=True):
        if f.name in present:
            source = _choice_value(frame, f.name) if f.name in choices else sf.col(f.name)
            lost = lost | (source.isNotNull() & value.isNull())
    return frame.select(*typed, sf.when(lost, _record_json(frame, choices)).alias(CORRUPT_COLUMN))


# How a local read parses text (read_dataset); the Glue path re-parses with the same options.
_PARSE_OPTIONS = {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": CORRUPT_COLUMN}


def _json_field(frame: DataFrame, name: str, is_choice: bool) -> Column:
    """`"name":value` as JSON text, or null for a null value; a choice column gives its one member set."""
    if not is_choice:
        return _json_member(sf.col(name), name)
    members = frame.schema[name].dataType.fieldNames()  # type: ignore[attr-defined]
    return sf.coalesce(*[_json_member(sf.col(name)[member], name) for member in members])


def _json_member(value: Column, name: str) -> Column:
    # to_json leaves null fields out: `{}` becomes an empty fragment, turned into null so concat_ws skips it.
    return sf.nullif(sf.regexp_extract(sf.to_json(sf.struct(value.alias(name))), r"^\{(.*)\}$", 1), sf.lit(""))


def _choice_value(frame: DataFrame, name: str) -> Column:
    """A `make_struct` choice column's set member, as text (the members have different types)."""
    members = frame.schema[name].dataType.fieldNames()  # type: ignore[attr-defined]
    return sf.coalesce(*[sf.col(name)[member].cast(StringType()) for member in members])


def _record_json(frame: DataFrame, choices: Collection[str]) -> Column:
    values = [(_choice_value(frame, c) if c in choices else sf.col(c)).alias(c) for c in frame.columns]
    return sf.to_json(sf.struct(*values))


def error_records_as_corrupt(errors: DataFrame, schema: StructType) -> DataFrame:
    """Glue's error records (unparseable input) as rows with only `_corrupt_record` set, ready for quarantine."""
    return errors.select(
        *[sf.lit(None).cast(f.dataType).alias(f.name) for f in schema.fields],
        sf.to_json(sf.struct(*[sf.col(c) for c in errors.columns])).alias(CORRUPT_COLUMN),
    )


# --- malformed records ----------------------------------------------------------------------------


def split_malformed(
    frame: DataFrame, *, required: Sequence[str] = (), rules: Mapping[str, Column] | None = None
) -> tuple[DataFrame, DataFrame]:
    """(good, malformed): malformed rows failed to parse, lack a required field, or break a rule.

    `rules` maps a reason to a condition that is true for a bad row (null counts as not bad). Malformed rows
    come back as `reason` (the first that applies) and `record` (the raw text, or the parsed row as JSON).
    """
    missing_columns = sorted(set(required) - set(frame.columns))
    if missing_columns:
        raise ValueError(f"required column(s) not in the frame: {', '.join(missing_columns)}")
    data_columns = [c for c in frame.columns if c != CORRUPT_COLUMN]
    reason: Column = sf.lit(None).cast(StringType())
    checks: list[tuple[Column, Column]] = []
    if CORRUPT_COLUMN in frame.columns:
        checks.append((sf.col(CORRUPT_COLUMN).isNotNull(), sf.lit("unparseable or does not match the schema")))
    if required:
        missing = sf.concat_ws(", ", *[sf.when(sf.col(c).isNull(), sf.lit(c)) for c in required])
        checks.append((missing != "", sf.concat(sf.lit("missing required field(s): "), missing)))
    for rule_reason, rule_broken in (rules or {}).items():
        checks.append((sf.coalesce(rule_broken, sf.lit(False)), sf.lit(rule_reason)))
    # Built inside out so the first check that applies names the reason.
    for condition, text in reversed(checks):
        reason = sf.when(condition, text).otherwise(reason)
    flagged = frame.withColumn("_reason", reason)
    good = flagged.where(sf.col("_reason").isNull()).select(*data_columns)
    raw_text = sf.col(CORRUPT_COLUMN) if CORRUPT_COLUMN in frame.columns else sf.lit(None).cast(StringType())
    malformed = flagged.where(sf.col("_reason").isNotNull()).select(
        sf.col("_reason").alias("reason"),
        sf.coalesce(raw_text, sf.to_json(sf.struct(*[sf.col(c) for c in data_columns]))).alias("record"),
    )
    return good, malformed


class DataQualityError(ValueError):
    """A dataset too broken to publish; the malformed part is already quarantined when this is raised."""


def enforce_malformed_limit(dataset: str, malformed: int, total: int, limit: float) -> None:
    """Stop (after quarantining) when a feed is mostly broken: that is an upstream change, not noise."""
    if not 0.0 <= limit <= 1.0:
        raise ValueError(f"malformed fraction limit must be between 0 and 1, got {limit}")
    if total and malformed / total > limit:
        raise DataQualityError(
            f"{dataset}: {malformed} of {total} records malformed ({malformed / total:.0%}), "
            f"above the limit of {limit:.0%}; see the quarantine"
        )


class PreviousStateError(ValueError):
    """A job's previous state reads as empty while its output holds data: it would be rebuilt from nothing."""


def require_previous_state(context: JobContext, name: str, path: str, *, output: str, output_path: str) -> None:
    """Refuse to go on when input `name` (the job's own earlier output) read no rows but `output_path` holds data.

    A previous input that points anywhere but its output reads as empty, and a merge from an empty previous
    state rebuilds partitions without their rows and tombstones without the deleted keys. group.yaml is
    checked for this when it loads (`previous_<output>` inputs); this also covers a mistyped local run.
    """
    if context.counts.read.get(name, 0):
        return
    files = context.store(output_path).list_files(output_path)
    if files:
        raise PreviousStateError(
            f"input {name} ({path}) is empty, but output {output} ({output_path}) holds {len(files)} data file(s): "
            f"{name} must be the location of output {output}"
        )


# --- sinks -------------------------------------------------------------------------------------------


def write_quarantine(
    context: JobContext, malformed: DataFrame, path: str, *, dataset: str, skip_known: bool = False
) -> int:
    """Store malformed rows under `<path>/dataset=<name>/run_id=<run>/` as JSON lines; returns (and counts) them.

    `skip_known` is for incremental jobs: a record already in the dataset's quarantine with the same reason (an
    earlier attempt at the same batch stored it before failing) is not stored again. The count stays what this
    run found malformed, because the malformed limit compares it with the rows this run read.
    """
    rows = malformed.count()
    context.counts.add("quarantined", dataset, rows)
    if rows == 0:
        return 0
    root = join_path(path, f"dataset={dataset}")
    target = join_path(root, f"run_id={context.run_id}")
    new = malformed.select("reason", "record")
    if skip_known and context.store(root).list_files(root):
        known = context.spark.read.schema("reason string, record string").json(root).select("reason", "record")
        # Materialised before the write below adds files under the location it compares with.
        new = new.subtract(known).localCheckpoint(eager=True)
    stored = new.count()
    if stored:
        (
            new.withColumn("dataset", sf.lit(dataset))
            .withColumn("run_id", sf.lit(context.run_id))
            .withColumn("quarantined_at", sf.current_timestamp())
            .write.mode("append")
            .json(target)
        )
    if stored == rows:
        context.logger.warning("quarantined %d malformed %s record(s) to %s", rows, dataset, target)
    else:
        context.logger.warning(
            "quarantined %d malformed %s record(s) to %s; %d more were already in the quarantine",
            stored,
            dataset,
            target,
            rows - stored,
        )
    return rows


def append_dataset(
    context: JobContext,
    frame: DataFrame,
    path: str,
    *,
    dataset: str,
    fmt: str = "parquet",
    partition_by: Sequence[str] = (),
) -> int:
    """Add rows as new files (unique names per write) beside what is there; returns the rows added.

    Appending is idempotent: a row equal to one already in the partitions this batch touches (or in the dataset,
    when it is not partitioned) is not added again, and equal rows within the batch are added once. An
    incremental run that appended and then failed before its bookmark commit is retried on the same input, and
    without this the retry would add every row a second time. Rows that are meant to repeat must therefore
    differ in something (an event's time or sequence number): equal rows are one fact.
    """
    _check_format(fmt, path)
    _check_partition_columns(frame, partition_by, dataset)
    store = context.store(path)
    batch = frame.localCheckpoint(eager=True)
    new = batch.distinct()
    if store.list_files(path):
        existing = _read_back(context.spark, path, fmt, batch.schema)
        if partition_by:
            existing = existing.where(_in_partitions(partition_by, _partition_values(batch, partition_by)))
        # Materialised now: the comparison must see the dataset as it was before this write adds to it.
        new = batch.subtract(existing).localCheckpoint(eager=True)
    rows = _write_new_files(context, new, path, fmt=fmt, partition_by=partition_by)
    context.counts.add("written", dataset, rows)
    write_manifest(context, store, path, dataset=dataset, rows=rows, mode="append")
    skipped = batch.count() - rows
    context.logger.info("appended %d %s row(s) to %s; %d already there or repeated", rows, dataset, path, skipped)
    return rows


def _read_back(spark: SparkSession, path: str, fmt: str, schema: StructType) -> DataFrame:
    """What an earlier run wrote at `path`, partition columns included, as `schema`."""
    reader = spark.read.schema(schema)
    if fmt == "csv":
        reader = reader.option("header", "true")
    # EXCEPT compares by position, and a read puts the partition columns last: back in the schema's order.
    return reader.format(fmt).load(path).select(*schema.fieldNames())


def write_manifest(context: JobContext, store: FileStore, path: str, *, dataset: str, rows: int, mode: str) -> str:
    """Record what this run wrote to the dataset at `path` in `<path>/_manifest.json`; returns the manifest path.

    `rows` counts this run's rows only: for an append the rows added, for a partition rebuild the rows of the
    rebuilt partitions, for a whole rebuild the dataset. `counts` are the run's rows read, written and
    quarantined per dataset when this output was complete (so every input it derives from has been read and
    everything its inputs lost to the quarantine is counted): what the audit of a run needs beside its status.
    """
    manifest = join_path(path, MANIFEST_FILE)
    document = {
        "rows": rows,
        "run_id": context.run_id,
        "job": context.job_name,
        "dataset": dataset,
        "mode": mode,
        "counts": context.counts.as_dict(),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    store.write_text(manifest, json.dumps(document, sort_keys=True) + "\n")
    return manifest


def run_record_path(temp_dir: str, run_id: str) -> str:
    """Where a run's record goes under its temporary directory (RUN_RECORDS_FOLDER)."""
    if not run_id or "/" in run_id:
        raise ValueError(f"not a run id: {run_id!r}")
    return join_path(temp_dir, RUN_RECORDS_FOLDER, f"{run_id}.json")


def write_run_record(context: JobContext, temp_dir: str) -> str:
    """Record the run's rows read, written and quarantined per dataset at `run_record_path`; returns the path.

    The audit of a run needs its counts beside its status; Glue's run result carries no output of the job, so the
    state machine reads this record, found by the run id Glue gave it (`--JOB_RUN_ID`).
    """
    path = run_record_path(temp_dir, context.run_id)
    # Just the counts, {"quarantined": {...}, "read": {...}, "written": {...}}: the audit item keeps the text as it
    # is, beside the run id it already has.
    context.store(path).write_text(path, json.dumps(context.counts.as_dict(), sort_keys=True))
    return path


def read_manifest_rows(text: str | bytes) -> int:
    """The `rows` of a manifest's text; ValueError when it is not JSON holding an integer `rows`."""
    return read_manifest(text)[0]


def read_manifest(text: str | bytes) -> tuple[int, str | None]:
    """The `rows` and `run_id` of a manifest's text: the rows this run wrote, and the run that wrote them (in Glue
    the `--JOB_RUN_ID` Glue passed, e.g. `jr_0123...`); `run_id` is None in a manifest that does not say.
    ValueError when the text is not JSON holding an integer `rows` (and a string `run_id`, when there is one)."""
    try:
        document = json.loads(text)
        rows = document["rows"]
    except (ValueError, KeyError, TypeError):
        raise ValueError("expected JSON with an integer 'rows'") from None
    if isinstance(rows, bool) or not isinstance(rows, int):
        raise ValueError(f"expected JSON with an integer 'rows', got {rows!r}")
    run_id = document.get("run_id")
    if run_id is not None and not isinstance(run_id, str):
        raise ValueError(f"expected a string 'run_id', got {run_id!r}")
    return rows, run_id


def partition_dir(columns: Sequence[str], values: Sequence[Any]) -> str:
    """The directory Spark writes a partition to, e.g. `country=DE` (values escaped as Spark does)."""
    if len(columns) != len(values):
        raise ValueError(f"partition {tuple(values)!r} does not match columns {tuple(columns)!r}")
    return "/".join(f"{column}={_escape_partition_value(value)}" for column, value in zip(columns, values, strict=True))


def _escape_partition_value(value: Any) -> str:
    if value is None:
        return HIVE_DEFAULT_PARTITION
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if text == "":
        return HIVE_DEFAULT_PARTITION
    return "".join(f"%{ord(ch):02X}" if ch in _PARTITION_ESCAPED else ch for ch in text)


def rebuild_dataset(
    context: JobContext,
    frame: DataFrame,
    path: str,
    *,
    dataset: str,
    fmt: str = "parquet",
    partition_by: Sequence[str] = (),
) -> int:
    """Replace everything under `path` with `frame` (partitioned by `partition_by`), idempotently."""
    _check_partition_columns(frame, partition_by, dataset)
    return _replace(context, frame, path, [path], dataset=dataset, fmt=fmt, partition_by=partition_by, mode="rebuild")


def rebuild_partitions(
    context: JobContext,
    frame: DataFrame,
    path: str,
    *,
    dataset: str,
    partition_by: Sequence[str],
    partitions: Iterable[Sequence[Any]] | None = None,
    fmt: str = "parquet",
) -> int:
    """Replace some partitions of `path` with `frame`'s rows, idempotently; returns the rows written.

    `partitions` names the partitions to replace (tuples of values in `partition_by` order); a named
    partition with no rows in `frame` ends up empty, rows of other partitions are not written, and
    partitions not named are untouched. By default the partitions present in `frame` are replaced.
    """
    if not partition_by:
        raise ValueError(
            f"{dataset}: rebuild_partitions needs partition columns; use rebuild_dataset for a whole dataset"
        )
    _check_partition_columns(frame, partition_by, dataset)
    if partitions is None:
        targets = [tuple(r) for r in frame.select(*partition_by).distinct().collect()]
    else:
        targets = sorted({tuple(p) for p in partitions}, key=repr)
        frame = frame.where(_in_partitions(partition_by, targets))
    locations = [join_path(path, partition_dir(partition_by, values)) for values in targets]
    return _replace(
        context, frame, path, locations, dataset=dataset, fmt=fmt, partition_by=partition_by, mode="rebuild_partitions"
    )


def _replace(
    context: JobContext,
    frame: DataFrame,
    path: str,
    locations: Sequence[str],
    *,
    dataset: str,
    fmt: str,
    partition_by: Sequence[str],
    mode: str,
) -> int:
    _check_format(fmt, path)
    store = context.store(path)
    # The previous generation, listed BEFORE writing: exactly these files go once the new ones are in place.
    previous = sorted({file for location in locations for file in store.list_files(location)})
    rows = _write_new_files(context, frame, path, fmt=fmt, partition_by=partition_by)
    store.delete_files(previous)
    context.counts.add("written", dataset, rows)
    write_manifest(context, store, path, dataset=dataset, rows=rows, mode=mode)
    context.logger.info(
        "rebuilt %d location(s) of %s at %s: %d row(s) written, %d previous file(s) removed",
        len(locations),
        dataset,
        path,
        rows,
        len(previous),
    )
    return rows


def _partition_values(frame: DataFrame, partition_by: Sequence[str]) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in frame.select(*partition_by).distinct().collect()]


def _write_new_files(context: JobContext, frame: DataFrame, path: str, *, fmt: str, partition_by: Sequence[str]) -> int:
    """Write `frame` under `path` as new files and return its rows; the partitions written are recorded.

    Append mode gives every file a name unique to this write, so nothing already there is overwritten: a
    failure here leaves the previous generation complete and readable.
    """
    frame = frame.cache()
    try:
        rows: int = frame.count()
        writer = frame.write.mode("append").format(fmt)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        writer.save(path)
        if partition_by:
            context.record_partitions(path, partition_by, _partition_values(frame, partition_by))
    finally:
        frame.unpersist()
    return rows


def _check_partition_columns(frame: DataFrame, partition_by: Sequence[str], dataset: str) -> None:
    unknown = sorted(set(partition_by) - set(frame.columns))
    if unknown:
        raise ValueError(f"{dataset}: partition column(s) not in the frame: {', '.join(unknown)}")


def _in_partitions(columns: Sequence[str], targets: Sequence[tuple[Any, ...]]) -> Column:
    condition: Column = sf.lit(False)
    for values in targets:
        match: Column = sf.lit(True)
        for column, value in zip(columns, values, strict=True):
            match = match & sf.col(column).eqNullSafe(sf.lit(value))
        condition = condition | match
    return condition


def _check_format(fmt: str, path: str) -> None:
    if fmt not in FORMATS:
        raise ValueError(f"{path}: format must be one of {', '.join(FORMATS)}, got {fmt!r}")
