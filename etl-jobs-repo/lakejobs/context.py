"""What a job's `main(context, args)` receives: Spark, identity, a logger, row counts, and the sources it reads.

`JobContext.local(...)` runs on a laptop's Spark; `GlueJobContext` wraps GlueContext and the Glue `Job`
(bookmarks need `job.init`/`job.commit` and DynamicFrame sources) and is only built by `run_in_glue`, which
job scripts call under `if __name__ == "__main__":`.
"""

from __future__ import annotations

import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql.types import StructType

from lakejobs import io
from lakejobs.args import ArgSpec, JobArgs
from lakejobs.catalog import register_written_partitions

LOCAL_SPARK_CONF: dict[str, str] = {
    # Loopback only: a laptop (or CI box) has no business exposing Spark ports.
    "spark.driver.host": "127.0.0.1",
    "spark.driver.bindAddress": "127.0.0.1",
    # Glue runs in UTC; local runs must agree or timestamps shift between laptop and cloud.
    "spark.sql.session.timeZone": "UTC",
    # Sample-sized data: 200 shuffle partitions would make every join take seconds.
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.sources.partitionOverwriteMode": "static",
}
# Set on every job's session, local or Glue. Spark's default ("EXCEPTION") fails the whole run on a date or
# timestamp text such as 1990-02-30 that its pre-3.0 parser would have read differently; CORRECTED parses with
# the current parser only, so such a value is an unparseable record (quarantined) like any other bad value.
JOB_SQL_CONF: dict[str, str] = {"spark.sql.legacy.timeParserPolicy": "CORRECTED"}

Main = Callable[["JobContext", JobArgs], Mapping[str, Mapping[str, int]]]


def local_spark(app_name: str = "lakejobs-local", master: str = "local[2]") -> SparkSession:
    """A small local SparkSession configured like Glue where it matters (UTC, loopback only)."""
    # Spark resolves its own address before reading any config; without this it probes the network interfaces.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    builder = SparkSession.builder.master(master).appName(app_name)
    for key, value in LOCAL_SPARK_CONF.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def new_run_id() -> str:
    return f"local-{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


@dataclass
class Counts:
    """Rows read, written and quarantined, per dataset name: what a run reports and the audit records."""

    read: dict[str, int] = field(default_factory=dict)
    written: dict[str, int] = field(default_factory=dict)
    quarantined: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, dataset: str, rows: int) -> None:
        tables = {"read": self.read, "written": self.written, "quarantined": self.quarantined}
        if kind not in tables:
            raise ValueError(f"count kind must be read, written or quarantined, got {kind!r}")
        tables[kind][dataset] = tables[kind].get(dataset, 0) + rows

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {
            "read": dict(sorted(self.read.items())),
            "written": dict(sorted(self.written.items())),
            "quarantined": dict(sorted(self.quarantined.items())),
        }


class JobContext:
    """Spark session, job name, run id, logger and counts for one run; reads sources for the job."""

    def __init__(
        self,
        spark: SparkSession,
        *,
        job_name: str,
        run_id: str,
        logger: logging.Logger | None = None,
        s3_client: Any = None,
    ) -> None:
        self.spark = spark
        for key, value in JOB_SQL_CONF.items():
            spark.conf.set(key, value)
        self.job_name = job_name
        self.run_id = run_id
        self.logger = logger or logging.getLogger(f"lakejobs.{job_name}")
        self.counts = Counts()
        # Per dataset path: (partition columns, partition values written): what the Glue edge registers.
        self.written_partitions: dict[str, tuple[tuple[str, ...], set[tuple[Any, ...]]]] = {}
        self._s3_client = s3_client

    @classmethod
    def local(
        cls,
        job_name: str,
        *,
        run_id: str | None = None,
        spark: SparkSession | None = None,
        logger: logging.Logger | None = None,
    ) -> JobContext:
        """A context on local Spark (an existing session, e.g. the test suite's, or a new local[2] one)."""
        return cls(
            spark or local_spark(f"lakejobs-{job_name}"),
            job_name=job_name,
            run_id=run_id or new_run_id(),
            logger=logger,
        )

    def store(self, path: str) -> io.FileStore:
        """The file store behind `path`: the local file system, or S3 through this context's client."""
        return io.file_store(path, s3_client=self._s3_client)

    def record_partitions(self, path: str, partition_by: Sequence[str], values: Iterable[Sequence[Any]]) -> None:
        """Note partitions a sink wrote under `path`, so the catalog can be told about them after the run."""
        columns = tuple(partition_by)
        known_columns, known = self.written_partitions.setdefault(path, (columns, set()))
        if known_columns != columns:
            raise ValueError(f"{path}: written with partition columns {known_columns} and then {columns}")
        known.update(tuple(v) for v in values)

    def read(
        self,
        name: str,
        path: str,
        fmt: str,
        schema: StructType,
        *,
        incremental: bool = False,
        source_column: str | None = None,
    ) -> DataFrame:
        """Read input `name`; `incremental` inputs are the ones Glue bookmarks track (ignored locally).

        `source_column` adds a column naming each row's file. Only for full reads: a bookmarked read on Glue is a
        DynamicFrame, which does not say where a record came from, so it is refused on both paths alike.
        """
        if incremental and source_column is not None:
            raise ValueError(f"input {name}: source_column is for full reads, not incremental (bookmarked) ones")
        frame = io.read_dataset(self.spark, path, fmt, schema, store=self.store(path), source_column=source_column)
        rows = frame.count()
        self.counts.add("read", name, rows)
        self.logger.info("read %s: %d rows from %s", name, rows, path)
        return frame

    def commit(self) -> None:
        """Local runs have no bookmarks to commit."""


class GlueJobContext(JobContext):
    """A context inside a Glue job run: bookmarked inputs are read as DynamicFrames, `commit` saves bookmarks."""

    def __init__(self, spark: SparkSession, *, glue_context: Any, job: Any, job_name: str, run_id: str) -> None:
        import boto3

        super().__init__(spark, job_name=job_name, run_id=run_id, s3_client=boto3.client("s3"))
        self.glue_client = boto3.client("glue")
        self.glue_context = glue_context
        self.job = job

    @classmethod
    def start(cls, argv: Sequence[str]) -> GlueJobContext:
        # awsglue exists only in the Glue runtime: imported here, never at module level.
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from awsglue.utils import getResolvedOptions
        from pyspark.context import SparkContext

        resolved = getResolvedOptions(list(argv), ["JOB_NAME"])
        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        job.init(resolved["JOB_NAME"], resolved)
        run_id = str(resolved.get("JOB_RUN_ID") or new_run_id())
        return cls(
            glue_context.spark_session, glue_context=glue_context, job=job, job_name=resolved["JOB_NAME"], run_id=run_id
        )

    def read(
        self,
        name: str,
        path: str,
        fmt: str,
        schema: StructType,
        *,
        incremental: bool = False,
        source_column: str | None = None,
    ) -> DataFrame:
        if not incremental or source_column is not None:
            return super().read(name, path, fmt, schema, incremental=incremental, source_column=source_column)
        # Bookmarks only track DynamicFrame sources with a stable transformation_ctx (the input name).
        dynamic = self.glue_context.create_dynamic_frame.from_options(
            connection_type="s3",
            connection_options={"paths": [path], "recurse": True},
            format=fmt,
            # Columns by their header names, as a local read takes them (io.read_csv_by_header).
            format_options={"withHeader": True} if fmt == "csv" else {},
            transformation_ctx=name,
        )
        # Only columns Glue saw with several types are choices, and only those are resolved. make_struct keeps
        # each value with its own type, so conform_to_schema judges it as the local parser would; a cast here
        # (in Glue's type names: long, not Spark's bigint) would turn a value that does not fit into a silent null.
        choices = [f.name for f in dynamic.schema().fields if f.dataType.typeName() == "choice"]
        if choices:
            dynamic = dynamic.resolveChoice(specs=[(_glue_path(c), "make_struct") for c in choices])
        frame = io.conform_to_schema(dynamic.toDF(), schema, fmt=fmt, choice_columns=choices)
        if fmt != "parquet":
            # Records the Glue reader could not parse are error records, not rows: keep them for quarantine.
            errors = dynamic.errorsAsDynamicFrame().toDF()
            if errors.columns:
                frame = frame.unionByName(io.error_records_as_corrupt(errors, schema))
        frame = frame.cache()
        rows = frame.count()
        self.counts.add("read", name, rows)
        self.logger.info("read %s (incremental): %d new rows from %s", name, rows, path)
        return frame

    def commit(self) -> None:
        self.job.commit()


def _glue_path(column: str) -> str:
    """A top-level column as a Glue field path: backticks keep a dot in a name from reading as nesting."""
    return f"`{column}`" if "." in column else column


def run_in_glue(main: Main, spec: ArgSpec, argv: Sequence[str] | None = None) -> None:
    """The whole Glue edge of a job script: context, arguments, `main`, counts in the log, bookmark commit."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    argv = list(sys.argv if argv is None else argv)
    context = GlueJobContext.start(argv)
    args = spec.parse(argv)
    context.logger.info("run %s of %s with %s", context.run_id, context.job_name, args.redacted())
    counts = main(context, args)
    context.logger.info("counts %s", dict(counts))
    # Before the bookmark commit: a failure here fails the run, and the rerun registers again (idempotent).
    outputs = {name.removeprefix("output_"): value for name, value in args.items() if name.startswith("output_")}
    registered = register_written_partitions(
        context.glue_client, context.written_partitions, outputs, args["catalog_tables"]
    )
    for output, created in sorted(registered.items()):
        context.logger.info("catalog: %d new partition(s) of %s registered", created, output)
    # Also before the commit: the run's audit item reads its counts from here (etl_jobs.orchestration). Glue
    # always passes --TempDir (the deployment sets it to the job's staging prefix).
    temp_dir = args.system.get("TempDir")
    if temp_dir:
        context.logger.info("run record %s", io.write_run_record(context, temp_dir))
    else:
        context.logger.warning("no --TempDir: the run's counts are not recorded for its audit")
    context.commit()
