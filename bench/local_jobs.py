"""Each example job on the shipped sample data, with one local Spark session, as a laptop run would.

python bench/local_jobs.py     # prints one JSON line: Spark start-up and seconds per job
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from etl_jobs.local_runner import run_sample
from etl_jobs.spec import discover
from lakejobs.context import local_spark


def main() -> None:
    started = time.monotonic()
    spark = local_spark("bench-jobs")
    out = {"spark_start_seconds": round(time.monotonic() - started, 2)}
    for group in discover():
        with tempfile.TemporaryDirectory() as lake:
            for result in run_sample(group.name, Path(lake), spark=spark, echo=lambda _: None):
                out[f"{result.group}/{result.job}"] = round(result.seconds, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
