"""Run the job groups against an environment's buckets in the emulator (the rehearsal's ETL step).

Glue itself cannot run here, so the data takes the same path a Glue run would, with local Spark in the
middle: the shipped sample data is uploaded to the raw bucket named by the infra contract, pulled to a
local lake with boto3, processed by each job's `main`, and the outputs are uploaded to the conformed and
curated buckets. The row counts are then read back from the emulator's buckets and compared.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from datalake_config import LakeConfig, names_for
from etl_jobs.local_runner import SAMPLE_DATA_DIR, lake_path, quarantine_path, run_job
from etl_jobs.spec import JOBS_DIR, Group, discover


class EmulatedRunError(RuntimeError):
    """A job group did not produce what it reported, as read back from the emulator's buckets."""


def run_groups_on_emulator(
    config: LakeConfig, env_name: str, clients: Callable[[str], Any], lake: Path, *, echo: Callable[[str], None]
) -> list[str]:
    """Every group of `jobs/` through the buckets of `env_name`; `clients(service)` returns a boto3 client
    acting in that environment's account and `lake` is the local working folder. One line per job."""
    names = names_for(config, env_name)
    ssm, s3 = clients("ssm"), clients("s3")
    buckets = {zone: ssm.get_parameter(Name=names.bucket_name(zone))["Parameter"]["Value"] for zone in config.zones}
    from lakejobs.context import local_spark

    spark = local_spark("rehearsal")
    lines: list[str] = []
    for group in discover(JOBS_DIR, env=env_name, env_names=config.environment_names):
        lines += _run_group(group, buckets, s3, lake / group.name, spark, echo)
    return lines


def _run_group(group: Group, buckets: dict[str, str], s3: Any, lake: Path, spark: Any, note: Any) -> list[str]:
    shutil.rmtree(lake, ignore_errors=True)
    uploaded = _upload_tree(SAMPLE_DATA_DIR / group.name / "raw", buckets["raw"], "", s3)
    note(f"{group.name}: uploaded {uploaded} sample object(s) to the raw bucket {buckets['raw']}")
    raw_inputs = {loc.prefix for job in group.jobs for loc in job.inputs if loc.zone == "raw"}
    for prefix in sorted(raw_inputs):
        _download_prefix(s3, buckets["raw"], prefix, lake / "raw" / prefix)
    lines = []
    for job in group.jobs:
        for location in job.inputs:
            if location.zone != "raw" and not lake_path(lake, location).exists():
                _download_prefix(s3, buckets[location.zone], location.prefix, lake_path(lake, location))
        quarantine_zone, quarantine_key = job.quarantine_location(group.name)
        quarantine_dir = quarantine_path(lake, group, job)
        result = run_job(
            group.name,
            job.name,
            {loc.name: lake_path(lake, loc) for loc in job.inputs},
            {loc.name: lake_path(lake, loc) for loc in job.outputs},
            quarantine=quarantine_dir,
            spark=spark,
            echo=note,
        )
        for location in job.outputs:
            _upload_tree(lake_path(lake, location), buckets[location.zone], location.prefix, s3)
        if quarantine_dir.exists():
            _upload_tree(quarantine_dir, buckets[quarantine_zone], quarantine_key, s3)
        written = result.counts.get("written", {})
        for location in job.outputs:
            in_bucket = _rows_in_bucket(s3, buckets[location.zone], location.prefix, lake.parent / "readback", spark)
            expected = written.get(location.name)
            if expected is not None and in_bucket != expected:
                raise EmulatedRunError(
                    f"{group.name}/{job.name}: {location.name} reported {expected} rows written, "
                    f"but s3://{buckets[location.zone]}/{location.prefix} holds {in_bucket}"
                )
        read = sum(result.counts.get("read", {}).values())
        quarantined = sum(result.counts.get("quarantined", {}).values())
        outputs = ", ".join(f"{name} {rows}" for name, rows in sorted(written.items()))
        lines.append(
            f"{group.name}/{job.name}: read {read}, quarantined {quarantined}, wrote {outputs} "
            f"(verified in the buckets, {result.seconds:.1f}s)"
        )
    return lines


def _upload_tree(local: Path, bucket: str, prefix: str, s3: Any) -> int:
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".crc")):
        s3.upload_file(str(path), bucket, prefix + path.relative_to(local).as_posix())
        count += 1
    return count


def _download_prefix(s3: Any, bucket: str, prefix: str, target: Path) -> int:
    count = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            destination = target / item["Key"][len(prefix) :]
            destination.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(destination))
            count += 1
    return count


def _rows_in_bucket(s3: Any, bucket: str, prefix: str, scratch: Path, spark: Any) -> int:
    """Count the rows of the parquet dataset under `prefix`, as read back from the bucket."""
    target = scratch / bucket / prefix
    shutil.rmtree(target, ignore_errors=True)
    if _download_prefix(s3, bucket, prefix, target) == 0:
        return 0
    data_files = [p for p in target.rglob("*.parquet")]
    if not data_files:
        return 0
    rows: int = spark.read.option("basePath", str(target)).parquet(*map(str, data_files)).count()
    return rows
