"""The rehearsal's ETL step: deliver each group's sample data to an environment's raw bucket, then let the
deployed Glue jobs process it.

In the emulator `StartJobRun` runs the deployed job for real (its script and `lakejobs` zip as published to
the asset bucket, its `DefaultArguments`, bookmarks, s3:// paths into the emulator's buckets), but the trigger
chain cannot deliver yet: the emulator sends no S3 event to EventBridge, and moto's Step Functions interpreter
cannot run the `.sync` Glue task. So the jobs are started the way the state machine starts them, one group at
a time and each job after the one before it has succeeded, by whichever step would start them first:

- where the environment's post-deploy Verify runs the jobs (`integration_check`, every environment that does
  not retain data), this step only delivers; Verify then starts each job, waits for it and requires the
  manifests to be written by the run it started. Starting them here too would leave Verify's runs nothing new
  to read (bookmarks), so its row minimums would fail on a correct lake;
- where Verify only reads (an environment that retains data), this step starts the jobs, with the same
  checks, as the triggers would after the delivery.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datalake_config import LakeConfig, names_for
from etl_jobs.integration_check import IntegrationCheck
from etl_jobs.local_runner import SAMPLE_DATA_DIR
from etl_jobs.spec import JOBS_DIR, discover

POLL_SECONDS = 2.0


class DeliveryError(RuntimeError):
    """A job run started after the delivery did not succeed or did not write what its checks require."""


def deliver_samples(
    config: LakeConfig,
    env_name: str,
    clients: Callable[[str], Any],
    *,
    jobs_dir: Path = JOBS_DIR,
    samples: Path = SAMPLE_DATA_DIR,
    poll_seconds: float = POLL_SECONDS,
) -> list[str]:
    """Upload every group's `sample-data/<group>/raw` tree to `env_name`'s raw bucket and, where Verify starts
    no job, run the group's deployed jobs; `clients(service)` acts in that environment's account. One line per
    delivery and per check; DeliveryError names every check that failed."""
    names = names_for(config, env_name)
    ssm, s3 = clients("ssm"), clients("s3")
    raw_bucket = ssm.get_parameter(Name=names.bucket_name("raw"))["Parameter"]["Value"]
    groups = discover(jobs_dir, env=env_name, env_names=config.environment_names)
    lines = []
    for group in groups:
        uploaded = _upload_tree(samples / group.name / "raw", raw_bucket, s3)
        lines.append(f"{group.name}: delivered {uploaded} sample object(s) to s3://{raw_bucket}/")
    if not config.env(env_name).retain_data:
        lines.append(f"{env_name}: Verify's integration check starts each deployed job on this delivery")
        return lines
    check = IntegrationCheck(glue=clients("glue"), s3=s3, ssm=ssm, names=names, poll_seconds=poll_seconds)
    results = check.check_groups(groups)
    lines += [f"{'PASS' if r.passed else 'FAIL'} {r.name}: {r.detail}" for r in results]
    failed = [f"{r.name}: {r.detail}" for r in results if not r.passed]
    if failed:
        raise DeliveryError(f"{len(failed)} check(s) failed after the delivery to {env_name}: " + "; ".join(failed))
    return lines


def _upload_tree(local: Path, bucket: str, s3: Any) -> int:
    """Every file under `local` to the same relative key in `bucket` (Spark's `.crc` side files excluded)."""
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".crc")):
        s3.upload_file(str(path), bucket, path.relative_to(local).as_posix())
        count += 1
    return count
