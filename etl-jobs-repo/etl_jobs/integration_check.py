"""Post-deploy integration check: run each group's Glue jobs in order and check their state, duration and data.

    python -m etl_jobs.integration_check --config .lake/config.json --env dev [--group G] [--role-arn ARN]
        [--endpoint-url URL] [--region R] [--timeout SECONDS] [--jobs-dir DIR]

In an environment that retains data (prod) the check only reads and never starts a job: a run there would move
the bookmarks, collide with the triggered runs (`max_concurrent_runs`) and rewrite real outputs. It requires every
job to exist, its last run (if any) not to have failed, and each manifest present to be readable.

For every job: start a run, poll it until it ends (or `--timeout` passes), require SUCCEEDED within the job's
own timeout, then require objects under every output prefix and the `_manifest.json` the job library writes
beside the output (`{"rows": N, "run_id": ..., ...}`) to be this run's: its `run_id` must be the id of the run
the check started (the job library records the `--JOB_RUN_ID` Glue passes), or the data is an older run's and
the check fails naming both ids. Where the spec declares `expected_min_rows`, the manifest must count at least
that many rows. A failed job stops its group: later jobs read its output. One line per check is printed; the
exit status is 0 only when every check passed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config import ConfigError, EnvironmentNames, load, names_for
from etl_jobs.spec import JOBS_DIR, Group, Job, SpecError, discover
from lake_pipelines.verify import CheckResult, report, verify_parser, verify_session
from lakejobs.io import MANIFEST_FILE, read_manifest, read_manifest_rows, run_record_path

TERMINAL_STATES = frozenset({"SUCCEEDED", "FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED"})
DEFAULT_TIMEOUT_SECONDS = 3600
DEFAULT_POLL_SECONDS = 15.0
LAST_RUNS_PAGE = 200  # GetJobRuns' largest page
SESSION_NAME = "etl-integration-check"


@dataclass
class IntegrationCheck:
    """Runs the checks with the given boto3 clients; `clock`/`sleep` are injectable so tests never wait."""

    glue: Any
    s3: Any
    ssm: Any
    names: EnvironmentNames
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    poll_seconds: float = DEFAULT_POLL_SECONDS
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _buckets: dict[str, str] = field(default_factory=dict, init=False)

    def check_groups(self, groups: Sequence[Group]) -> list[CheckResult]:
        results: list[CheckResult] = []
        for group in groups:
            results += self.check_group(group)
        return results

    def check_group(self, group: Group) -> list[CheckResult]:
        results: list[CheckResult] = []
        for position, job in enumerate(group.jobs):
            job_results = self.check_job(group, job)
            results += job_results
            if not all(r.passed for r in job_results):
                results += [
                    CheckResult(f"{group.name}/{later.name}", False, f"not run: {group.name}/{job.name} failed")
                    for later in group.jobs[position + 1 :]
                ]
                break
        return results

    def check_job(self, group: Group, job: Job) -> list[CheckResult]:
        label = f"{group.name}/{job.name}"
        glue_name = self.names.glue_job_name(group.name, job.name)
        try:
            run_id = self.glue.start_job_run(JobName=glue_name)["JobRunId"]
        except (ClientError, BotoCoreError) as exc:
            return [CheckResult(f"{label} run", False, f"cannot start Glue job {glue_name}: {exc}")]
        run = self._wait(glue_name, run_id)
        state = run.get("JobRunState", "UNKNOWN")
        if state not in TERMINAL_STATES:
            return [
                CheckResult(
                    f"{label} run",
                    False,
                    f"run {run_id} still {state} after {self.timeout_seconds:g}s (check timeout)",
                )
            ]
        if state != "SUCCEEDED":
            message = run.get("ErrorMessage", "no error message")
            return [CheckResult(f"{label} run", False, f"run {run_id} ended {state}: {message}")]
        results = [CheckResult(f"{label} run", True, f"run {run_id} SUCCEEDED")]
        seconds = int(run.get("ExecutionTime", 0))
        limit = job.timeout_minutes * 60
        results.append(
            CheckResult(
                f"{label} duration",
                seconds <= limit,
                f"{seconds}s {'within' if seconds <= limit else 'exceeds'} the job timeout of {limit}s",
            )
        )
        for output in job.outputs:
            results += self._check_output(label, job, glue_name, run_id, output.name, output.zone, output.prefix)
        return results

    def inspect_groups(self, groups: Sequence[Group]) -> list[CheckResult]:
        """The read-only check (retained environments): jobs exist, last runs did not fail, manifests read."""
        results: list[CheckResult] = []
        for group in groups:
            for job in group.jobs:
                results += self.inspect_job(group, job)
        return results

    def inspect_job(self, group: Group, job: Job) -> list[CheckResult]:
        label = f"{group.name}/{job.name}"
        glue_name = self.names.glue_job_name(group.name, job.name)
        try:
            # The latest by its start, not by its place: the GetJobRuns reference promises no order.
            runs = self.glue.get_job_runs(JobName=glue_name, MaxResults=LAST_RUNS_PAGE)["JobRuns"]
        except (ClientError, BotoCoreError) as exc:
            return [CheckResult(f"{label} deployed", False, f"cannot read Glue job {glue_name}: {exc}")]
        if not runs:
            last = CheckResult(f"{label} last run", True, "no run yet (its trigger starts the first)")
        else:
            latest = max(runs, key=lambda r: str(r.get("StartedOn", "")))
            state = latest.get("JobRunState", "UNKNOWN")
            failed = state in TERMINAL_STATES - {"SUCCEEDED", "STOPPED"}
            detail = f"run {latest.get('Id', '?')} {state}"
            last = CheckResult(
                f"{label} last run", not failed, f"{detail}: {latest.get('ErrorMessage', '')}" if failed else detail
            )
        results = [CheckResult(f"{label} deployed", True, f"Glue job {glue_name} exists"), last]
        for output in job.outputs:
            if output.name in job.expected_min_rows:
                results.append(self._read_manifest(f"{label} output {output.name}", output.zone, output.prefix))
        return results

    def _read_manifest(self, check: str, zone: str, prefix: str) -> CheckResult:
        key = f"{prefix}{MANIFEST_FILE}"
        try:
            bucket = self._bucket(zone)
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response["Error"]["Code"] in ("NoSuchKey", "404"):
                return CheckResult(check, True, f"no manifest yet at .../{key} (no run has written it)")
            return CheckResult(check, False, f"cannot read .../{key}: {exc}")
        try:
            rows = read_manifest_rows(body)
        except ValueError as exc:
            return CheckResult(check, False, f"s3://{bucket}/{key}: {exc}")
        return CheckResult(check, True, f"{rows} rows at the last run")

    def _wait(self, glue_name: str, run_id: str) -> dict[str, Any]:
        deadline = self.clock() + self.timeout_seconds
        while True:
            run: dict[str, Any] = self.glue.get_job_run(JobName=glue_name, RunId=run_id)["JobRun"]
            if run.get("JobRunState") in TERMINAL_STATES or self.clock() >= deadline:
                return run
            self.sleep(self.poll_seconds)

    def _check_output(
        self, label: str, job: Job, glue_name: str, run_id: str, name: str, zone: str, prefix: str
    ) -> list[CheckResult]:
        check = f"{label} output {name}"
        try:
            bucket = self._bucket(zone)
            listing = self.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=100)
        except (ClientError, BotoCoreError) as exc:
            return [CheckResult(check, False, f"cannot list s3://.../{prefix}: {exc}")]
        # `_SUCCESS`, the manifest and Spark's `_temporary/` are markers, not data: an output holding only
        # markers has no rows, whatever a marker says.
        data = [
            o["Key"]
            for o in listing.get("Contents", [])
            if not any(part.startswith(("_", ".")) for part in o["Key"][len(prefix) :].split("/"))
        ]
        if not data:
            return [CheckResult(check, False, f"no objects under s3://{bucket}/{prefix}")]
        results = [CheckResult(check, True, f"objects under s3://{bucket}/{prefix}")]
        results.append(
            self._check_rows(f"{check} rows", bucket, prefix, glue_name, run_id, job.expected_min_rows.get(name))
        )
        return results

    def _check_rows(
        self, check: str, bucket: str, prefix: str, glue_name: str, run_id: str, expected: int | None
    ) -> CheckResult:
        """The output's manifest is the started run's (its `run_id`), with at least `expected` rows if given; or
        the run read nothing new (a bookmarked job after the triggered runs) and an earlier run's output stands."""
        key = f"{prefix}{MANIFEST_FILE}"
        try:
            body = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            return CheckResult(check, False, f"no manifest s3://{bucket}/{key} ({exc.response['Error']['Code']})")
        try:
            rows, written_by = read_manifest(body)
        except ValueError as exc:
            return CheckResult(check, False, f"s3://{bucket}/{key}: {exc}")
        short = written_by != run_id or (expected is not None and rows < expected)
        if short and self._read_nothing(glue_name, run_id):
            # A bookmarked job whose input the triggered runs have already read has nothing new: it writes no rows
            # (or no output at all), and what earlier runs wrote stands. Only its own record can say so.
            return CheckResult(
                check,
                True,
                f"run {run_id} read nothing new (its run record says 0 rows read); the manifest's {rows} rows of "
                f"run {written_by or '(no run_id recorded)'} stand",
            )
        if written_by != run_id:
            # A manifest is replaced only by a run that writes the output: this one is an older run's, so the
            # objects beside it prove nothing about the run started here.
            return CheckResult(
                check,
                False,
                f"s3://{bucket}/{key} was written by run {written_by or '(no run_id recorded)'}, not by run "
                f"{run_id} that this check started: the run did not write this output",
            )
        if expected is None:
            return CheckResult(check, True, f"{rows} rows, written by run {run_id}")
        return CheckResult(
            check,
            rows >= expected,
            f"{rows} rows ({'at least' if rows >= expected else 'fewer than'} {expected}), written by run {run_id}",
        )

    def _read_nothing(self, glue_name: str, run_id: str) -> bool:
        """Whether the run's record (`lakejobs.io.run_record_path` under the job's --TempDir) counts no row read;
        False when there is no readable record: only the run's own word excuses an output it did not write."""
        try:
            temp_dir = self.glue.get_job(JobName=glue_name)["Job"].get("DefaultArguments", {}).get("--TempDir")
            if not temp_dir:
                return False
            bucket, _, key = run_record_path(temp_dir, run_id).removeprefix("s3://").partition("/")
            counts = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            return bool(sum(counts.get("read", {}).values()) == 0)
        except (ClientError, BotoCoreError, ValueError, AttributeError, TypeError):
            return False

    def _bucket(self, zone: str) -> str:
        if zone not in self._buckets:
            parameter = self.ssm.get_parameter(Name=self.names.bucket_name(zone))["Parameter"]["Value"]
            self._buckets[zone] = str(parameter)
        return self._buckets[zone]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = verify_parser("python -m etl_jobs.integration_check", __doc__.splitlines()[0])
    parser.add_argument("--group", action="append", help="check only this group (repeatable)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_SECONDS, help="seconds to wait for each job run"
    )
    parser.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS, help="seconds between status polls")
    parser.add_argument("--jobs-dir", type=Path, default=JOBS_DIR, help="where the job group folders are")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout: must be positive")
    if args.poll <= 0:
        parser.error("--poll: must be positive")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load(args.config)
        names = names_for(config, args.env_name)
        groups = discover(args.jobs_dir, args.env_name, config.environment_names)
    except (ConfigError, SpecError, KeyError, OSError) as exc:
        print(f"FAIL setup: {exc}", file=sys.stderr)
        return 1
    if args.group:
        unknown = sorted(set(args.group) - {g.name for g in groups})
        if unknown:
            print(f"FAIL setup: --group: unknown {', '.join(unknown)}; groups: {', '.join(g.name for g in groups)}")
            return 1
        groups = [g for g in groups if g.name in args.group]
    if not groups:
        print(f"FAIL setup: no job groups found in {args.jobs_dir}")
        return 1
    region = args.region or config.env(args.env_name).region
    try:
        session = verify_session(
            region=region, role_arn=args.role_arn, endpoint_url=args.endpoint_url, session_name=SESSION_NAME
        )
    except (ClientError, BotoCoreError) as exc:
        print(f"FAIL setup: cannot assume {args.role_arn}: {exc}")
        return 1
    check = IntegrationCheck(
        glue=session.client("glue", endpoint_url=args.endpoint_url),
        s3=session.client("s3", endpoint_url=args.endpoint_url),
        ssm=session.client("ssm", endpoint_url=args.endpoint_url),
        names=names,
        timeout_seconds=args.timeout,
        poll_seconds=args.poll,
    )
    what = f"job groups of {args.env_name} ({config.env(args.env_name).account})"
    if config.env(args.env_name).retain_data:
        print(f"{args.env_name} retains data: reading only, no job is started")
        return report(check.inspect_groups(groups), what)
    return report(check.check_groups(groups), what)


if __name__ == "__main__":
    sys.exit(main())
