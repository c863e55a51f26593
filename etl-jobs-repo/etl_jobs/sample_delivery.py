"""The rehearsal's ETL step: deliver each group's sample data to an environment's raw bucket and follow what the
deployed trigger chain does with it.

Each object created under a group's raw prefix is an "Object Created" event; the group's EventBridge rule starts
its state machine, which takes the group's lock, runs the jobs in order (Glue `.sync`), records each run in the
audit table and lets the lock go (etl_jobs.orchestration, etl_jobs.triggers). A burst of objects starts one
execution per object: the first runs the jobs, the others end Skipped with a rerun request, and the holder starts
one follow-up execution for them. This step uploads, then waits until each group has settled (no execution of
its state machines that started after the upload still running, the lock free, no rerun request left), and
reports, from the audit table, every job run with its Glue run id and the execution that started it. It fails
when no execution started (the trigger chain is broken), when an execution did not succeed, when a job has no
successful run, or when the read-only check of the outputs (`IntegrationCheck.inspect_groups`) fails.

A group with a schedule and no raw prefix is started here as its schedule would start it, with the event a
scheduled rule sends: the emulator fires no schedule. Verify runs afterwards, as in the pipeline: where it runs
the jobs itself (environments that do not retain data), its bookmarked runs find nothing new and the outputs of
the triggered runs stand (etl_jobs.integration_check).
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from datalake_config import EnvironmentNames, LakeConfig, names_for
from etl_jobs.integration_check import IntegrationCheck
from etl_jobs.local_runner import SAMPLE_DATA_DIR
from etl_jobs.orchestration import FREE, LOCK_ITEM, RERUN_ITEM, lock_key
from etl_jobs.spec import JOBS_DIR, Group, discover

POLL_SECONDS = 2.0
# Every group settles within this; the emulated Glue runs each job on local Spark, a few minutes at most.
SETTLE_TIMEOUT_SECONDS = 1800.0
# How long an upload may take to start the first execution before the trigger chain counts as broken.
TRIGGER_TIMEOUT_SECONDS = 60.0
ENDED_BADLY = ("FAILED", "TIMED_OUT", "ABORTED")


class DeliveryError(RuntimeError):
    """The delivery started nothing, or what it started did not succeed or did not write what it must."""


@dataclass
class GroupRun:
    """What one group's delivery started: its state machines' ARNs and the executions that began after it."""

    group: Group
    machines: list[str]
    before: set[str]
    executions: dict[str, dict[str, Any]] = field(default_factory=dict)


def deliver_samples(
    config: LakeConfig,
    env_name: str,
    clients: Callable[[str], Any],
    *,
    jobs_dir: Path = JOBS_DIR,
    samples: Path = SAMPLE_DATA_DIR,
    poll_seconds: float = POLL_SECONDS,
    settle_timeout: float = SETTLE_TIMEOUT_SECONDS,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Upload every group's `sample-data/<group>/raw` tree to `env_name`'s raw bucket, wait for the executions
    it starts and report them; `clients(service)` acts in that environment's account. One line per delivery,
    execution and job run; DeliveryError names everything that went wrong."""
    names = names_for(config, env_name)
    ssm, s3, sfn = clients("ssm"), clients("s3"), clients("stepfunctions")
    raw_bucket = ssm.get_parameter(Name=names.bucket_name("raw"))["Parameter"]["Value"]
    audit = _AuditTable(clients("dynamodb"), ssm.get_parameter(Name=names.audit_table_name)["Parameter"]["Value"])
    groups = discover(jobs_dir, env=env_name, env_names=config.environment_names)
    runs = [_before_delivery(sfn, names, group) for group in groups]
    lines: list[str] = []
    for run in runs:
        if run.group.raw_prefix is not None:
            uploaded = _upload_tree(samples / run.group.name / "raw", raw_bucket, s3)
            lines.append(f"{run.group.name}: delivered {uploaded} sample object(s) to s3://{raw_bucket}/")
        else:
            event = _scheduled_event(run, clients("events"))
            sfn.start_execution(stateMachineArn=run.machines[0], input=json.dumps(event))
            lines.append(f"{run.group.name}: started as its schedule {run.group.schedule} would")
    problems: list[str] = []
    deadline = clock() + settle_timeout
    for run in runs:
        problems += _settle(run, sfn, audit, names, clock=clock, sleep=sleep, poll=poll_seconds, deadline=deadline)
        group_lines, group_problems = _report(run, audit, names)
        lines += group_lines
        problems += group_problems
    check = IntegrationCheck(glue=clients("glue"), s3=s3, ssm=ssm, names=names, poll_seconds=poll_seconds)
    for result in check.inspect_groups(groups):
        lines.append(f"{'PASS' if result.passed else 'FAIL'} {result.name}: {result.detail}")
        if not result.passed:
            problems.append(f"{result.name}: {result.detail}")
    if problems:
        raise DeliveryError(f"the delivery to {env_name}: " + "; ".join(problems))
    return lines


def _before_delivery(sfn: Any, names: EnvironmentNames, group: Group) -> GroupRun:
    """The group's state machines (its first part, then `-2`, `-3`, ...) and the executions they already had."""
    entry = names.state_machine_name(group.name)
    part = re.compile(rf"^{re.escape(entry)}(-\d+)?$")
    machines = sorted(
        (
            m["stateMachineArn"]
            for page in sfn.get_paginator("list_state_machines").paginate()
            for m in page["stateMachines"]
            if part.match(m["name"])
        ),
        key=lambda arn: (len(arn), arn),
    )
    if not machines or not machines[0].endswith(f":{entry}"):
        raise DeliveryError(f"{group.name}: state machine {entry} is not deployed")
    return GroupRun(group, machines, {arn for machine in machines for arn in _executions(sfn, machine)})


def _executions(sfn: Any, machine: str) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine):
        for execution in page["executions"]:
            found[execution["executionArn"]] = execution
    return found


def _settle(
    run: GroupRun,
    sfn: Any,
    audit: _AuditTable,
    names: EnvironmentNames,
    *,
    clock: Callable[[], float],
    sleep: Callable[[float], None],
    poll: float,
    deadline: float,
) -> list[str]:
    """Wait until the group's new executions have all ended, its lock is free and no rerun is asked for."""
    group = run.group.name
    lock = lock_key(names.state_machine_name(group))
    first_seen_by = clock() + TRIGGER_TIMEOUT_SECONDS
    while True:
        run.executions = {
            arn: execution
            for machine in run.machines
            for arn, execution in _executions(sfn, machine).items()
            if arn not in run.before
        }
        running = sorted(arn for arn, e in run.executions.items() if e["status"] == "RUNNING")
        holder = audit.item(lock, LOCK_ITEM).get("holder", FREE)
        rerun_asked = audit.item(lock, RERUN_ITEM).get("requested") is True
        if run.executions and not running and holder == FREE and not rerun_asked:
            return []
        now = clock()
        if not run.executions and now >= first_seen_by:
            return [
                f"{group}: no execution of {names.state_machine_name(group)} started within "
                f"{TRIGGER_TIMEOUT_SECONDS:g}s of the delivery (is its ObjectCreated rule deployed and EventBridge "
                "enabled on the raw bucket?)"
            ]
        if now >= deadline:
            waiting = [f"execution {_name(arn)} still running" for arn in running]
            waiting += [f"lock held by {_name(holder)}"] if holder != FREE else []
            waiting += ["a rerun request not taken"] if rerun_asked else []
            return [f"{group}: not settled in time: {', '.join(waiting)}"]
        sleep(poll)


def _report(run: GroupRun, audit: _AuditTable, names: EnvironmentNames) -> tuple[list[str], list[str]]:
    """One line per execution (what it did) and per audited job run; the problems among them."""
    group = run.group.name
    lines: list[str] = []
    problems: list[str] = []
    runs: list[tuple[str, dict[str, Any]]] = []
    skipped: set[str] = set()
    for job in run.group.jobs:
        job_name = names.glue_job_name(group, job.name)
        items = [i for i in audit.runs(job_name) if i.get("execution_arn") in run.executions]
        skipped |= {str(i["execution_arn"]) for i in items if i.get("status") == "SKIPPED"}
        runs += [(job.name, i) for i in items if i.get("status") != "SKIPPED"]
        if not any(i.get("status") == "SUCCEEDED" for i in items):
            problems.append(f"{group}/{job.name}: no successful run recorded for the delivery")
    for arn, execution in sorted(run.executions.items(), key=lambda item: str(item[1]["startDate"])):
        what = " (skipped: another execution held the group's lock and followed up)" if arn in skipped else ""
        lines.append(f"{group}: execution {_name(arn)} {execution['status']}{what}")
        if execution["status"] in ENDED_BADLY:
            problems.append(f"{group}: execution {_name(arn)} ended {execution['status']}")
    for job_label, item in sorted(runs, key=lambda pair: str(pair[1].get("started_at", ""))):
        status = item.get("status", "?")
        started_by = _name(str(item.get("execution_arn", "")))
        if status == "SUCCEEDED":
            lines.append(
                f"{group}/{job_label}: Glue run {item.get('job_run_id', '?')} SUCCEEDED, started by execution "
                f"{started_by}{_counts(item)}"
            )
            continue
        detail = _failure(item)
        lines.append(f"{group}/{job_label}: {status} in execution {started_by}: {detail}")
        if status == "FAILED":
            problems.append(f"{group}/{job_label} failed in execution {started_by}: {detail}")
    return lines, problems


def _failure(item: dict[str, Any]) -> str:
    """The audit item's error and cause. A failed Glue `.sync` task's cause is the whole JobRun as JSON, as
    GetJobRun returns it: its id, state and error message say what happened; the rest (arguments, capacity)
    would bury it. Any other cause is shown as it is."""
    error, cause = str(item.get("error", "")), str(item.get("cause", ""))
    try:
        run = json.loads(cause)
    except ValueError:
        run = None
    if isinstance(run, dict) and "JobRunState" in run:
        cause = f"Glue run {run.get('Id', '?')} {run['JobRunState']}: {run.get('ErrorMessage') or 'no error message'}"
    return f"{error} {cause}".strip() or "no error recorded"


def _counts(item: dict[str, Any]) -> str:
    """`, read N, wrote M` from the audit item's counts (the run's own record), or why they are missing."""
    text = item.get("counts", "")
    if not text:
        return f" (counts unavailable: {item.get('counts_error', 'no record')})"
    counts = json.loads(text)
    return f", read {sum(counts.get('read', {}).values())}, wrote {sum(counts.get('written', {}).values())}"


def _scheduled_event(run: GroupRun, events: Any) -> dict[str, Any]:
    """The event the group's scheduled rule sends its state machine (Amazon EventBridge User Guide, "Creating a
    rule that runs on a schedule": source aws.events, detail-type "Scheduled Event", the rule's ARN in
    `resources`, an empty detail); the rule is the deployed one that targets the group's first state machine."""
    machine = run.machines[0]
    names = [
        n for p in events.get_paginator("list_rule_names_by_target").paginate(TargetArn=machine) for n in p["RuleNames"]
    ]
    rules = [events.describe_rule(Name=name) for name in names]
    scheduled = [rule for rule in rules if rule.get("ScheduleExpression")]
    if not scheduled:
        raise DeliveryError(f"{run.group.name}: no scheduled rule targets {machine} (its schedule is not deployed)")
    _, _, _, region, account, _ = machine.split(":", 5)
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": region,
        "resources": [scheduled[0]["Arn"]],
        "detail": {},
    }


def _name(arn: str) -> str:
    """An execution's name (the last part of its ARN), as the console shows it."""
    return arn.rsplit(":", 1)[-1]


class _AuditTable:
    """The audit table's items as plain values (strings, numbers, booleans)."""

    def __init__(self, dynamodb: Any, table: str) -> None:
        self.dynamodb, self.table = dynamodb, table

    def item(self, job_name: str, run_id: str) -> dict[str, Any]:
        found = self.dynamodb.get_item(
            TableName=self.table, Key={"job_name": {"S": job_name}, "run_id": {"S": run_id}}, ConsistentRead=True
        )
        return _plain(found.get("Item", {}))

    def runs(self, job_name: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "job_name = :job",
            "ExpressionAttributeValues": {":job": {"S": job_name}},
            "ConsistentRead": True,
        }
        while True:
            page = self.dynamodb.query(**kwargs)
            items += [_plain(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _plain(item: dict[str, dict[str, Any]]) -> dict[str, Any]:
    deserializer = TypeDeserializer()
    return {key: deserializer.deserialize(value) for key, value in item.items()}


def _upload_tree(local: Path, bucket: str, s3: Any) -> int:
    """Every file under `local` to the same relative key in `bucket` (Spark's `.crc` side files excluded)."""
    count = 0
    for path in sorted(p for p in local.rglob("*") if p.is_file() and not p.name.endswith(".crc")):
        s3.upload_file(str(path), bucket, path.relative_to(local).as_posix())
        count += 1
    return count
