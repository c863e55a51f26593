"""`GlueContext`: the run's SparkSession and `create_dynamic_frame.from_options` for S3 sources.

`s3://` paths are read through the Spark configuration the emulator gives the run (the buckets mirrored as
local folders, `lakeops.emulator.glue_mirror`), so files are listed and read as Spark sees them. Supported:
`connection_type="s3"`; connection options `paths` (a list of URLs: folders or files) and `recurse`
(descend into sub-folders; Glue's default is not to); formats `json` (format option `multiline`), `csv`
(`withHeader`, `separator`, `quoteChar`, `multiline`) and `parquet`. Anything else raises ValueError naming
what is not emulated, rather than being ignored. Files and folders whose name starts with `_` or `.` are
not data (Spark's and Glue's `_SUCCESS`, `_temporary`, checksums).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from pyspark.context import SparkContext
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as sf
from pyspark.sql.types import StructType

from . import job as job_module
from .dynamicframe import DynamicFrame

FORMAT_OPTIONS = {
    "json": {"multiline": "multiLine"},
    "csv": {"withHeader": "header", "separator": "sep", "quoteChar": "quote", "multiline": "multiLine"},
    "parquet": {},
}
CONNECTION_OPTIONS = frozenset({"paths", "recurse"})
# The column Spark puts an unparseable JSON record's text in; named so that no input field is taken for it.
_UNPARSED = "__lakeops_unparsed_record"


class GlueContext:
    def __init__(self, spark_context: SparkContext, **options: Any) -> None:
        self._sc = spark_context
        self.spark_session = SparkSession.builder.getOrCreate()
        self.create_dynamic_frame = DynamicFrameReader(self)


class DynamicFrameReader:
    """`glue_context.create_dynamic_frame`."""

    def __init__(self, glue_context: GlueContext) -> None:
        self._glue_context = glue_context

    def from_options(
        self,
        connection_type: str,
        connection_options: Mapping[str, Any] | None = None,
        format: str | None = None,
        format_options: Mapping[str, Any] | None = None,
        transformation_ctx: str = "",
        **options: Any,
    ) -> DynamicFrame:
        if connection_type != "s3":
            raise ValueError(f"connection_type {connection_type!r} is not emulated (only s3)")
        connection = dict(connection_options or {})
        unknown = sorted(set(connection) - CONNECTION_OPTIONS)
        if unknown:
            raise ValueError(f"connection option(s) {', '.join(unknown)} not emulated (only paths, recurse)")
        if format not in FORMAT_OPTIONS:
            raise ValueError(f"format {format!r} is not emulated (only {', '.join(FORMAT_OPTIONS)})")
        reader_options = _reader_options(format, format_options or {})
        spark = self._glue_context.spark_session
        paths = connection.get("paths") or []
        if isinstance(paths, str):
            paths = [paths]
        recurse = str(connection.get("recurse", False)).lower() == "true"

        # Per path: its folder (for partition columns) and its data files, with their modification times.
        listed = [_data_files(spark, path, recurse) for path in paths]
        every_file = {url: modified for _, files in listed for url, modified in files.items()}
        job = job_module.current()
        wanted = set(job.unread(transformation_ctx, every_file) if job is not None else every_file)

        frames: list[DataFrame] = []
        errors: list[DataFrame] = []
        for base, files in listed:
            chosen = sorted(url for url in files if url in wanted)
            if chosen:
                frame, bad = _read(spark, format, base, chosen, reader_options)
                frames.append(frame)
                errors.append(bad)
        return DynamicFrame(_union(spark, frames), _union(spark, errors), self._glue_context, transformation_ctx)


def _reader_options(fmt: str, given: Mapping[str, Any]) -> dict[str, str]:
    known = FORMAT_OPTIONS[fmt]
    unknown = sorted(set(given) - set(known))
    if unknown:
        allowed = ", ".join(known) or "none"
        raise ValueError(f"{fmt} format option(s) {', '.join(unknown)} not emulated (only {allowed})")
    return {known[name]: str(value).lower() if isinstance(value, bool) else str(value) for name, value in given.items()}


def _data_files(spark: SparkSession, path: str, recurse: bool) -> tuple[str, dict[str, int]]:
    """(the folder partition columns are found below, {file url: modification time in ms}) of `path`."""
    jvm: Any = spark.sparkContext._jvm
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    fs = hadoop_path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(hadoop_path):
        return path, {}  # an S3 prefix with no objects: nothing to read, as on Glue
    status = fs.getFileStatus(hadoop_path)
    if not status.isDirectory():
        return str(hadoop_path.getParent().toString()), {str(status.getPath().toString()): status.getModificationTime()}
    root = str(status.getPath().toString()).rstrip("/")
    files: dict[str, int] = {}
    listing = fs.listFiles(hadoop_path, recurse)
    while listing.hasNext():
        found = listing.next()
        url = str(found.getPath().toString())
        if not any(part.startswith(("_", ".")) for part in url[len(root) :].split("/") if part):
            files[url] = int(found.getModificationTime())
    return root, files


def _read(
    spark: SparkSession, fmt: str, base: str, files: Sequence[str], options: Mapping[str, str]
) -> tuple[DataFrame, DataFrame]:
    """(records, error records) of these files."""
    reader = spark.read.options(**options).option("basePath", base)
    no_errors = spark.createDataFrame([], StructType([]))
    if fmt == "parquet":
        return reader.parquet(*files), no_errors
    if fmt == "csv":
        return reader.option("inferSchema", "false").csv(list(files)), no_errors
    raw = reader.option("mode", "PERMISSIVE").option("columnNameOfCorruptRecord", _UNPARSED).json(list(files))
    # Spark refuses a query over raw JSON that names only the corrupt-record column unless it is materialised.
    raw = raw.localCheckpoint(eager=True)
    if _UNPARSED not in raw.columns:
        return raw, no_errors
    unparsed = sf.col(_UNPARSED)
    records = raw.where(unparsed.isNull()).drop(_UNPARSED)
    return records, raw.where(unparsed.isNotNull()).select(unparsed.alias("record"))


def _union(spark: SparkSession, frames: Iterable[DataFrame]) -> DataFrame:
    result: DataFrame | None = None
    for frame in frames:
        result = frame if result is None else result.unionByName(frame, allowMissingColumns=True)
    return result if result is not None else spark.createDataFrame([], StructType([]))
