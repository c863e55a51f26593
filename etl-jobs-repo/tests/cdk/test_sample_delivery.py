"""The rehearsal's delivery step (`etl-jobs deliver-sample`) against moto's S3, SSM, DynamoDB and Glue, with the
trigger chain stood in by `Chain`: moto runs no EventBridge rule here (the emulator's trigger chain is tested in
the deployment account's `test_emulated_step_functions.py` and run by the rehearsal). `Chain` does what the
deployed chain does, as the audit table records it: each object created under a group's raw prefix starts an
execution; at each poll the first running execution runs the jobs (one SUCCEEDED audit item per job, with its
Glue run id and counts), the others end Skipped, and a burst gets one follow-up execution."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.orchestration import LOCK_ITEM, lock_key
from etl_jobs.sample_delivery import DeliveryError, deliver_samples

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = load(EXAMPLE_CONFIG_PATH)
NAMES = names_for(CONFIG, "dev")
REGION = CONFIG.env("dev").region
ACCOUNT = CONFIG.env("dev").account
ACCOUNT_MOTO = DEFAULT_ACCOUNT_ID  # the account moto's own clients act in (the scheduled rule's ARN)
AUDIT_TABLE = "etl-audit"
GROUP_JOBS = {"orders": ["conform_orders", "daily_totals"], "crm": ["load_customers"]}
RAW_PREFIXES = {"orders": "orders/incoming/"}


class Chain:
    """The deployed trigger chain, as far as the delivery step can see it (module docstring)."""

    def __init__(self, dynamodb: Any) -> None:
        self.dynamodb = dynamodb
        self.machines = {
            group: f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{NAMES.state_machine_name(group)}"
            for group in GROUP_JOBS
        }
        self.executions: dict[str, list[dict[str, Any]]] = {arn: [] for arn in self.machines.values()}
        self.triggers = True
        self.failing_job: str | None = None
        self.stuck = False
        self._ids = itertools.count(1)

    # --- the Step Functions API the step reads ------------------------------------------------------------------

    def get_paginator(self, operation: str) -> Any:
        chain = self

        class Pages:
            def paginate(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
                if operation == "list_state_machines":
                    yield {
                        "stateMachines": [
                            {"name": arn.rsplit(":", 1)[-1], "stateMachineArn": arn} for arn in chain.machines.values()
                        ]
                    }
                else:
                    yield {"executions": [dict(e) for e in chain.executions[kwargs["stateMachineArn"]]]}

        return Pages()

    def start_execution(self, stateMachineArn: str, input: str = "{}") -> dict[str, str]:  # noqa: N803
        number = next(self._ids)
        arn = f"{stateMachineArn.replace(':stateMachine:', ':execution:')}:e{number}"
        self.executions[stateMachineArn].append(
            {"executionArn": arn, "status": "RUNNING", "startDate": f"2026-12-01T10:00:{number:02d}", "input": input}
        )
        return {"executionArn": arn}

    # --- what S3's events and the executions do ---------------------------------------------------------------

    def object_created(self, key: str) -> None:
        for group, prefix in RAW_PREFIXES.items():
            if self.triggers and key.startswith(prefix):
                self.start_execution(self.machines[group])

    def advance(self) -> None:
        """One poll's worth of progress: every group's running executions end as the state machine ends them."""
        if self.stuck:
            return
        for group, machine in self.machines.items():
            running = [e for e in self.executions[machine] if e["status"] == "RUNNING"]
            if not running:
                continue
            holder, skipped = running[0], running[1:]
            self._run_jobs(group, holder)
            for execution in skipped:
                self._audit(group, GROUP_JOBS[group][0], execution, "SKIPPED")
                execution["status"] = "SUCCEEDED"
            if skipped and holder["status"] == "SUCCEEDED":
                self.start_execution(machine)  # the holder's follow-up for the burst

    def _run_jobs(self, group: str, execution: dict[str, Any]) -> None:
        for job in GROUP_JOBS[group]:
            if job == self.failing_job:
                # Step Functions' cause for a failed Glue .sync task: the JobRun, as JSON
                run = {"Id": "jr_x", "JobRunState": "FAILED", "ErrorMessage": "ValueError: boom", "Arguments": {}}
                self._audit(group, job, execution, "FAILED", error="States.TaskFailed", cause=json.dumps(run))
                execution["status"] = "FAILED"
                return
            self._audit(group, job, execution, "SUCCEEDED", job_run_id=f"jr_{job}_{execution['executionArn'][-2:]}")
        execution["status"] = "SUCCEEDED"

    def _audit(self, group: str, job: str, execution: dict[str, Any], status: str, **extra: str) -> None:
        item = {
            "job_name": NAMES.glue_job_name(group, job),
            "run_id": f"{execution['startDate']}#{execution['executionArn'].rsplit(':', 1)[-1]}",
            "execution_arn": execution["executionArn"],
            "status": status,
            "started_at": execution["startDate"],
            **extra,
        }
        if status == "SUCCEEDED":
            item["counts"] = json.dumps({"read": {"incoming": 3}, "written": {"orders": 2}, "quarantined": {}})
        self.dynamodb.put_item(TableName=AUDIT_TABLE, Item={key: {"S": value} for key, value in item.items()})


class S3WithEvents:
    """moto's S3 client, and the "Object Created" event of every upload handed to the chain."""

    def __init__(self, s3: Any, chain: Chain) -> None:
        self.s3, self.chain = s3, chain

    def upload_file(self, path: str, bucket: str, key: str) -> None:
        self.s3.upload_file(path, bucket, key)
        self.chain.object_created(key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.s3, name)


@pytest.fixture
def lake(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, audit_table: Callable[[Any, str], None]
) -> Iterator[dict[str, Any]]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        clients = {name: boto3.client(name, region_name=REGION) for name in ("glue", "s3", "ssm", "dynamodb", "events")}
        for zone in CONFIG.zones:
            clients["s3"].create_bucket(Bucket=f"lake-{zone}", CreateBucketConfiguration={"LocationConstraint": REGION})
            clients["ssm"].put_parameter(Name=NAMES.bucket_name(zone), Value=f"lake-{zone}", Type="String")
        clients["ssm"].put_parameter(Name=NAMES.audit_table_name, Value=AUDIT_TABLE, Type="String")
        audit_table(clients["dynamodb"], AUDIT_TABLE)
        for group, jobs in GROUP_JOBS.items():
            for job in jobs:
                clients["glue"].create_job(
                    Name=NAMES.glue_job_name(group, job),
                    Role="arn:aws:iam::123456789012:role/job",
                    Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"},
                )
        samples = tmp_path / "samples"
        for number in (1, 2, 3):  # a burst: three deliveries at once
            delivery = samples / "orders" / "raw" / "orders" / "incoming" / f"batch-{number}.json"
            delivery.parent.mkdir(parents=True, exist_ok=True)
            delivery.write_text('{"order_id": 1}\n', encoding="utf-8")
        chain = Chain(clients["dynamodb"])
        # crm runs on its schedule only: its deployed scheduled rule targets its state machine
        clients["events"].put_rule(Name="crm-schedule", ScheduleExpression="cron(0 3 * * ? *)")
        clients["events"].put_targets(Rule="crm-schedule", Targets=[{"Id": "Crm", "Arn": chain.machines["crm"]}])
        yield {"clients": clients, "chain": chain, "samples": samples}


def deliver(lake: dict[str, Any], *, settle_timeout: float = 600.0) -> list[str]:
    chain: Chain = lake["chain"]
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds
        chain.advance()

    services = {**lake["clients"], "s3": S3WithEvents(lake["clients"]["s3"], chain), "stepfunctions": chain}
    return deliver_samples(
        CONFIG,
        "dev",
        services.__getitem__,
        jobs_dir=FIXTURES / "jobs",
        samples=lake["samples"],
        poll_seconds=5.0,
        settle_timeout=settle_timeout,
        clock=lambda: now[0],
        sleep=sleep,
    )


def test_a_burst_runs_the_jobs_once_skips_the_rest_and_follows_up(lake: dict[str, Any]) -> None:
    lines = deliver(lake)

    assert "orders: delivered 3 sample object(s) to s3://lake-raw/" in lines
    # the schedule-only group is started as its schedule would start it, with a scheduled event
    assert "crm: started as its schedule cron(0 3 * * ? *) would" in lines
    crm = lake["chain"].executions[lake["chain"].machines["crm"]]
    event = json.loads(crm[0]["input"])
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [f"arn:aws:events:{REGION}:{ACCOUNT_MOTO}:rule/crm-schedule"]
    orders = [line for line in lines if line.startswith("orders")]
    # crm's start is e1; three uploads start e2 (it runs the jobs), e3 and e4 (skipped), and e5 follows them up
    assert [line for line in orders if " execution " in line and line.startswith("orders: ")] == [
        "orders: execution e2 SUCCEEDED",
        "orders: execution e3 SUCCEEDED (skipped: another execution held the group's lock and followed up)",
        "orders: execution e4 SUCCEEDED (skipped: another execution held the group's lock and followed up)",
        "orders: execution e5 SUCCEEDED",
    ]
    assert (
        "orders/conform_orders: Glue run jr_conform_orders_e2 SUCCEEDED, started by execution e2, read 3, wrote 2"
        in (lines)
    )
    assert "orders/daily_totals: Glue run jr_daily_totals_e5 SUCCEEDED, started by execution e5, read 3, wrote 2" in (
        lines
    )
    assert all(not line.startswith("FAIL") for line in lines)


def test_a_schedule_only_group_without_its_scheduled_rule_fails_naming_it(lake: dict[str, Any]) -> None:
    lake["clients"]["events"].remove_targets(Rule="crm-schedule", Ids=["Crm"])
    with pytest.raises(DeliveryError, match=r"crm: no scheduled rule targets .*:stateMachine:acme-lake-dev-crm"):
        deliver(lake)


def test_a_delivery_that_starts_nothing_fails_naming_the_trigger(lake: dict[str, Any]) -> None:
    lake["chain"].triggers = False
    with pytest.raises(DeliveryError, match=r"orders: no execution of acme-lake-dev-orders started within 60s"):
        deliver(lake)


def test_a_failed_job_fails_the_delivery_with_its_error(lake: dict[str, Any]) -> None:
    lake["chain"].failing_job = "daily_totals"
    with pytest.raises(DeliveryError) as failure:
        deliver(lake)
    message = str(failure.value)
    assert "orders: execution e2 ended FAILED" in message
    assert "orders/daily_totals failed in execution e2: States.TaskFailed Glue run jr_x FAILED: ValueError: boom" in (
        message
    )


def test_a_group_that_never_settles_names_what_it_waits_for(lake: dict[str, Any]) -> None:
    chain: Chain = lake["chain"]
    chain.stuck = True
    lake["clients"]["dynamodb"].put_item(
        TableName=AUDIT_TABLE,
        Item={
            "job_name": {"S": lock_key(NAMES.state_machine_name("orders"))},
            "run_id": {"S": LOCK_ITEM},
            "holder": {"S": "arn:aws:states:eu-west-1:1:execution:acme-lake-dev-orders:e1"},
        },
    )
    with pytest.raises(
        DeliveryError, match=r"orders: not settled in time: execution e2 still running, .*, lock held by e1"
    ):
        deliver(lake, settle_timeout=100.0)
