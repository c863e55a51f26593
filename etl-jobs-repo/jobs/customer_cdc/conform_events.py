"""customer_cdc/conform_events: raw change events (JSON lines) → typed, normalised events in parquet.

Incremental: Glue bookmarks hand each run only the raw files it has not seen, and the conformed events are
appended under new file names (partitioned by event date). A run that fails after its append and before its
bookmark commit is retried on the same raw files: the append skips events already in the partitions they go
to, and the quarantine records already stored, so a retry adds nothing twice (an event delivered twice,
like c005's insert in the sample, is one event). Events that are not JSON, lack key/op/time, carry an
unknown op or an upsert without a country go to the quarantine, counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import LongType, StringType, StructField, StructType, TimestampType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.cdc import CdcSpec
from lakejobs.context import JobContext
from lakejobs.io import append_dataset, enforce_malformed_limit, split_malformed, write_quarantine

CDC = CdcSpec(keys=("customer_id",), timestamp="event_ts", sequence="seq", op="op")
RAW_EVENTS = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("op", StringType()),
        StructField("event_ts", TimestampType()),
        StructField("seq", LongType()),
        StructField("name", StringType()),
        StructField("email", StringType()),
        StructField("country", StringType()),
        StructField("city", StringType()),
        StructField("tier", StringType()),
    ]
)

ARGS = job_args(
    Arg("input_raw_events"),
    Arg("output_events"),
    Arg("partition_by_events", tuple, help="the events' partition columns, as group.yaml declares them"),
    Arg("quarantine_path", help="malformed events, per run"),
    Arg("max_malformed_fraction", float, default=0.5, help="fail the run when more of the batch is malformed"),
)


def _trimmed(column: str) -> Column:
    return sf.nullif(sf.trim(sf.col(column)), sf.lit(""))


def event_rules(cdc: CdcSpec = CDC) -> dict[str, Column]:
    is_delete = sf.col("op").isin(*cdc.delete_markers)
    return {
        f"op must be one of {', '.join(cdc.known_ops)}": cdc.unknown_op(),
        "upsert without a country (the current state is partitioned by it)": ~is_delete & _trimmed("country").isNull(),
    }


def conform_events(events: DataFrame) -> DataFrame:
    """Normalise: trimmed text, upper-case country codes, lower-case e-mail addresses, the event date."""
    return events.select(
        _trimmed("customer_id").alias("customer_id"),
        _trimmed("op").alias("op"),
        "event_ts",
        "seq",
        _trimmed("name").alias("name"),
        sf.lower(_trimmed("email")).alias("email"),
        sf.upper(_trimmed("country")).alias("country"),
        _trimmed("city").alias("city"),
        sf.lower(_trimmed("tier")).alias("tier"),
        sf.to_date("event_ts").alias("event_date"),
    )


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    raw = context.read("raw_events", args["input_raw_events"], "json", RAW_EVENTS, incremental=True)
    good, malformed = split_malformed(raw, required=("customer_id", "op", "event_ts"), rules=event_rules())
    quarantined = write_quarantine(context, malformed, args["quarantine_path"], dataset="events", skip_known=True)
    enforce_malformed_limit("events", quarantined, context.counts.read["raw_events"], args["max_malformed_fraction"])
    append_dataset(
        context, conform_events(good), args["output_events"], dataset="events", partition_by=args["partition_by_events"]
    )
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
