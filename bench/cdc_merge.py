"""The CDC merge against the group-by + join formulation on generated data, in one local Spark session.

    python bench/cdc_merge.py --rows 1000000 --runs 3     # prints one JSON line

A current-state table of `rows` customers and a batch of `rows` events (10 % deletes, keys spread over
1.2 × `rows` so a sixth of the events are inserts) are cached first, so only the merges are timed; each
merge's result (current state and tombstones) is fully computed into Spark's `noop` sink.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from pyspark.sql import functions as sf

from lakejobs.cdc import CdcSpec, merge, merge_groupby
from lakejobs.context import local_spark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    spark = local_spark("bench-cdc")
    rows = args.rows
    current = spark.range(rows).select(
        sf.col("id").cast("string").alias("customer_id"),
        sf.lit("2024-01-01 00:00:00").cast("timestamp").alias("updated_at"),
        (sf.col("id") % 97).cast("string").alias("country"),
        (sf.col("id") * 3).alias("balance"),
    )
    events = spark.range(rows).select(
        ((sf.col("id") * 7919) % int(rows * 1.2)).cast("string").alias("customer_id"),
        (sf.lit(1704067200) + (sf.col("id") % 86400) * 10).cast("timestamp").alias("updated_at"),
        (sf.col("id") % 97).cast("string").alias("country"),
        sf.col("id").alias("balance"),
        sf.when(sf.col("id") % 10 == 0, sf.lit("D")).otherwise(sf.lit("U")).alias("op"),
    )
    current, events = current.cache(), events.cache()
    current.count(), events.count()
    spec = CdcSpec(keys=("customer_id",), timestamp="updated_at", op="op")
    out: dict[str, object] = {"rows": rows, "events": rows}
    for name, formulation in (("window", merge), ("groupby_join", merge_groupby)):
        times = []
        for _ in range(args.runs):
            started = time.monotonic()
            result = formulation(current, events, spec)
            result.current.write.format("noop").mode("overwrite").save()
            result.tombstones.write.format("noop").mode("overwrite").save()
            times.append(time.monotonic() - started)
        seconds = statistics.median(times)
        out[name] = {"seconds": round(seconds, 2), "events_per_second": round(rows / seconds), "runs": times}
    window, groupby = out["window"], out["groupby_join"]
    assert isinstance(window, dict) and isinstance(groupby, dict)
    out["window_speedup"] = round(groupby["seconds"] / window["seconds"], 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
