"""customer_cdc/merge_current: conformed change events merged into the curated current-state table.

The latest event per customer wins, deletes remove the customer (remembered as a tombstone so an older
late event cannot bring it back), older late events never overwrite newer state. Only the country
partitions the events touch are rebuilt — new files first, then the files that were there before — so a
failed run leaves the previous state readable and a rerun converges to the same table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as sf
from pyspark.sql.types import DateType, LongType, StringType, StructField, StructType, TimestampType

from lakejobs.args import Arg, JobArgs, job_args
from lakejobs.cdc import CdcSpec, merge, tombstone_schema
from lakejobs.context import JobContext
from lakejobs.io import rebuild_dataset, rebuild_partitions, require_previous_state

CDC = CdcSpec(keys=("customer_id",), timestamp="event_ts", sequence="seq", op="op")
# What conform_events writes (each script is uploaded on its own; a test checks the two agree).
EVENTS = StructType(
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
        StructField("event_date", DateType()),
    ]
)
CURRENT = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("event_ts", TimestampType()),
        StructField("seq", LongType()),
        StructField("name", StringType()),
        StructField("email", StringType()),
        StructField("city", StringType()),
        StructField("tier", StringType()),
        StructField("country", StringType()),
    ]
)
TOMBSTONES = tombstone_schema(CURRENT, CDC)

ARGS = job_args(
    Arg("input_events"),
    Arg("input_previous_current"),
    Arg("input_previous_tombstones"),
    Arg("output_current"),
    Arg("partition_by_current", tuple, help="the current state's partition columns, as group.yaml declares them"),
    Arg("output_tombstones"),
)


def touched_partitions(current: DataFrame, events: DataFrame, partition_by: Sequence[str]) -> list[tuple[Any, ...]]:
    """Partitions whose content may change: where the events' keys live now, and where upserts put them."""
    keys = list(CDC.keys)
    event_keys = events.select(*keys).distinct()
    where_now = current.join(event_keys, on=keys, how="left_semi").select(*partition_by)
    where_next = events.where(~sf.col("op").isin(*CDC.delete_markers)).select(*partition_by)
    return sorted((tuple(r) for r in where_now.union(where_next).distinct().collect()), key=repr)


def main(context: JobContext, args: JobArgs) -> Mapping[str, Mapping[str, int]]:
    events = context.read("events", args["input_events"], "parquet", EVENTS, incremental=True)
    if context.counts.read["events"] == 0:
        context.logger.info("no new events: the current state stays as it is")
        return context.counts.as_dict()
    current = context.read("previous_current", args["input_previous_current"], "parquet", CURRENT)
    tombstones = context.read("previous_tombstones", args["input_previous_tombstones"], "parquet", TOMBSTONES)
    for output in ("current", "tombstones"):
        previous = f"previous_{output}"
        require_previous_state(
            context, previous, args[f"input_{previous}"], output=output, output_path=args[f"output_{output}"]
        )
    result = merge(current, events.drop("event_date"), CDC, tombstones=tombstones)
    partition_by = args["partition_by_current"]
    partitions = touched_partitions(current, events, partition_by)
    # Both outputs derive from the previous files, and the first rebuild deletes some of them: compute both
    # now (a lost executor fails the run, and the rerun is safe because the merge is idempotent).
    new_current = result.current.localCheckpoint(eager=True)
    new_tombstones = result.tombstones.localCheckpoint(eager=True)
    rebuild_partitions(
        context,
        new_current,
        args["output_current"],
        dataset="current",
        partition_by=partition_by,
        partitions=partitions,
    )
    rebuild_dataset(context, new_tombstones, args["output_tombstones"], dataset="tombstones")
    return context.counts.as_dict()


if __name__ == "__main__":
    from lakejobs.context import run_in_glue

    run_in_glue(main, ARGS)
