"""The group's state machine, as synthesized, run by moto's Step Functions interpreter against moto's DynamoDB:
single flight (a burst of executions while one holds the lock ends `Skipped`, succeeded, with one rerun request),
the lock let go at every end, and the lock of a stopped execution released by the status-change rule's input.

moto 5.2.5 runs the DynamoDB, SNS and S3 tasks of the definition, with DynamoDB's conditional writes, but not two
of its integrations: `glue:startJobRun.sync` (its callback code fails on a service without task tokens) and
`states:startExecution` (it passes `StateMachineArn` to boto3 uncased). Those states are stood in by Pass states
(`Run <job>` with the fields the task selects from Glue's JobRun, `Start a follow-up ...` doing nothing); the test
checks they are reached. What AWS does with those two integrations is pinned by the template tests instead.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import assertions
from moto import mock_aws
from moto.core.models import DEFAULT_ACCOUNT_ID

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.stage import EtlStage
from lake_pipelines.checks import lake_app

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = load(EXAMPLE_CONFIG_PATH)
NAMES = names_for(CONFIG, "dev")
REGION = CONFIG.env("dev").region
ACCOUNT = DEFAULT_ACCOUNT_ID  # moto's account: the executions' ARNs name it
AUDIT_TABLE = "acme-lake-dev-etl-audit"
MACHINE = NAMES.state_machine_name("orders")
LOCK = f"lock#{MACHINE}"
JOBS = [NAMES.glue_job_name("orders", job) for job in ("conform_orders", "daily_totals")]


def _resolve(value: Any, parameters: dict[str, str], values: dict[str, str]) -> Any:
    """A template value with the deploy-time parameters filled in (the intrinsics CDK writes here)."""
    if isinstance(value, str):
        return value
    if "Ref" in value:
        return "aws" if value["Ref"] == "AWS::Partition" else values[parameters[value["Ref"]]]
    if "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(_resolve(part, parameters, values) for part in parts)
    if "Fn::Select" in value:
        index, items = value["Fn::Select"]
        return _resolve(items, parameters, values)[index]
    if "Fn::Split" in value:
        separator, text = value["Fn::Split"]
        return _resolve(text, parameters, values).split(separator)
    raise ValueError(f"unexpected intrinsic {value}")


@pytest.fixture(scope="module")
def definition(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = lake_app(outdir=str(tmp_path_factory.mktemp("single-flight")))
    stage = EtlStage(
        app, "dev", config=CONFIG, env_name="dev", jobs_dir=FIXTURES / "jobs", library_dir=FIXTURES / "lakejobs"
    )
    (stack,) = [s for s in stage.group_stacks if s.part.group.name == "orders"]
    template = assertions.Template.from_stack(stack).to_json()
    parameters = {logical_id: p["Default"] for logical_id, p in template["Parameters"].items()}
    values = {
        NAMES.audit_table_arn: f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{AUDIT_TABLE}",
        NAMES.alarm_topic_arn: f"arn:aws:sns:{REGION}:{ACCOUNT}:alarms",
        **{NAMES.bucket_name(zone): f"lake-{zone}" for zone in CONFIG.zones},
    }
    (machine,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine"]
    states_language: dict[str, Any] = json.loads(
        _resolve(machine["Properties"]["DefinitionString"], parameters, values)
    )
    return states_language


def with_stand_ins(definition: dict[str, Any], failing_job: str | None = None) -> str:
    """The definition with the two integrations moto cannot run replaced (module docstring); `failing_job`'s run
    fails instead, as a Glue run that ends FAILED does."""
    states = dict(definition["States"])
    for name, state in definition["States"].items():
        if name.startswith("Run "):
            job = name.removeprefix("Run ")
            states[name] = {
                "Type": "Pass",
                "Result": {"job_run_id": f"jr_{job}", "state": "SUCCEEDED", "execution_seconds": 1},
                "ResultPath": "$.run",
                "Next": state["Next"],
            }
            if job == failing_job:
                # a task that fails on AWS and in moto alike (a table that does not exist), with the run's catch
                states[name] = {
                    **{key: value for key, value in state.items() if key != "ResultSelector"},
                    "Resource": "arn:aws:states:::dynamodb:getItem",
                    "Parameters": {"TableName": "no-such-table", "Key": {"k": {"S": "v"}}},
                }
        elif state.get("Resource", "").endswith(":states:::states:startExecution"):
            states[name] = {"Type": "Pass", "ResultPath": None, "Next": state["Next"]}
    return json.dumps({**definition, "States": states})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, audit_table: Callable[[Any, str], None]) -> Iterator[dict[str, Any]]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        clients = {name: boto3.client(name, region_name=REGION) for name in ("dynamodb", "stepfunctions", "sns", "s3")}
        audit_table(clients["dynamodb"], AUDIT_TABLE)
        clients["sns"].create_topic(Name="alarms")
        for zone in CONFIG.zones:
            clients["s3"].create_bucket(Bucket=f"lake-{zone}", CreateBucketConfiguration={"LocationConstraint": REGION})
        yield clients


def create_machine(aws: dict[str, Any], definition: str) -> str:
    role = f"arn:aws:iam::{ACCOUNT}:role/state-machine"
    arn: str = aws["stepfunctions"].create_state_machine(name=MACHINE, definition=definition, roleArn=role)[
        "stateMachineArn"
    ]
    return arn


def run(aws: dict[str, Any], machine: str, name: str, payload: dict[str, Any] | None = None) -> tuple[str, list[str]]:
    """Start an execution, wait for its end: (status, the states it entered, in order)."""
    sfn = aws["stepfunctions"]
    execution = sfn.start_execution(stateMachineArn=machine, name=name, input=json.dumps(payload or {}))["executionArn"]
    deadline = time.monotonic() + 60
    while sfn.describe_execution(executionArn=execution)["status"] == "RUNNING" and time.monotonic() < deadline:
        time.sleep(0.1)
    status: str = sfn.describe_execution(executionArn=execution)["status"]
    events = sfn.get_execution_history(executionArn=execution)["events"]
    entered = [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]
    return status, entered


def execution_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:execution:{MACHINE}:{name}"


def item(aws: dict[str, Any], job_name: str, run_id: str) -> dict[str, Any]:
    found: dict[str, Any] = (
        aws["dynamodb"]
        .get_item(TableName=AUDIT_TABLE, Key={"job_name": {"S": job_name}, "run_id": {"S": run_id}})
        .get("Item", {})
    )
    return found


def audit_items(aws: dict[str, Any]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = aws["dynamodb"].scan(TableName=AUDIT_TABLE)["Items"]
    return [i for i in items if not i["job_name"]["S"].startswith("lock#")]


def test_a_burst_while_the_lock_is_held_ends_skipped_and_asks_for_one_follow_up(
    aws: dict[str, Any], definition: dict[str, Any]
) -> None:
    machine = create_machine(aws, with_stand_ins(definition))
    holder = execution_arn("the-run-in-progress")
    aws["dynamodb"].put_item(
        TableName=AUDIT_TABLE, Item={"job_name": {"S": LOCK}, "run_id": {"S": "lock"}, "holder": {"S": holder}}
    )
    for n in range(3):
        status, entered = run(aws, machine, f"upload-{n}")
        assert status == "SUCCEEDED", entered
        assert entered == [
            "Release requested?",
            "Start the group",
            "Take the lock",
            "Request a rerun",
            "Take the lock again",
            "Record skipped",
            "Skipped",
        ]
    skipped = audit_items(aws)
    assert len(skipped) == 3
    assert {i["status"]["S"] for i in skipped} == {"SKIPPED"}
    assert {i["job_name"]["S"] for i in skipped} == {JOBS[0]}
    assert sorted(i["execution_arn"]["S"] for i in skipped) == [execution_arn(f"upload-{n}") for n in range(3)]
    # the lock is still the running execution's; one rerun request stands for the whole burst
    assert item(aws, LOCK, "lock")["holder"] == {"S": holder}
    assert item(aws, LOCK, "rerun")["requested"] == {"BOOL": True}

    # that execution ends without letting go (aborted): its status-change event has the lock released, and the
    # rerun asked for starts
    status, entered = run(aws, machine, "release-1", {"release_lock_of": holder})
    assert status == "SUCCEEDED"
    assert entered == [
        "Release requested?",
        "Release the lock of a stopped execution",
        "Take the rerun request of a stopped execution",
        "Start a follow-up of a stopped execution",
        "Lock released",
    ]
    assert item(aws, LOCK, "lock")["holder"] == {"S": "none"}
    assert item(aws, LOCK, "rerun")["requested"] == {"BOOL": False}
    # a release for an execution that holds nothing changes nothing
    status, entered = run(aws, machine, "release-2", {"release_lock_of": holder})
    assert (status, entered[-1]) == ("SUCCEEDED", "Lock not held")


def test_the_holder_runs_the_jobs_and_lets_the_lock_go(aws: dict[str, Any], definition: dict[str, Any]) -> None:
    machine = create_machine(aws, with_stand_ins(definition))
    status, entered = run(aws, machine, "first")
    assert status == "SUCCEEDED", entered
    assert [s for s in entered if s.startswith(("Take", "Run ", "Release the", "Start a follow-up", "Done"))] == [
        "Take the lock",
        "Run conform_orders",
        "Run daily_totals",
        "Release the lock after success",
        "Take the rerun request after success",
        "Done",
    ]  # no rerun was asked for: no follow-up
    runs = audit_items(aws)
    assert sorted((i["job_name"]["S"], i["status"]["S"], i["job_run_id"]["S"]) for i in runs) == [
        (JOBS[0], "SUCCEEDED", "jr_conform_orders"),
        (JOBS[1], "SUCCEEDED", "jr_daily_totals"),
    ]
    # these runs left no record of their counts (no job ran): the audit says so instead of failing the run
    assert all(i["counts"] == {"S": ""} and i["counts_error"]["S"] for i in runs)
    assert item(aws, LOCK, "lock")["holder"] == {"S": "none"}
    # the lock is free again: the next execution takes it
    status, entered = run(aws, machine, "second")
    assert status == "SUCCEEDED" and "Skipped" not in entered


def test_a_failed_run_lets_the_lock_go_and_starts_the_follow_up_asked_for(
    aws: dict[str, Any], definition: dict[str, Any]
) -> None:
    machine = create_machine(aws, with_stand_ins(definition, failing_job="daily_totals"))
    aws["dynamodb"].put_item(
        TableName=AUDIT_TABLE,
        Item={"job_name": {"S": LOCK}, "run_id": {"S": "rerun"}, "requested": {"BOOL": True}},
    )
    status, entered = run(aws, machine, "failing")
    assert status == "FAILED"
    assert entered[entered.index("Record failure") :] == [
        "Record failure",
        "Release the lock after a failure",
        "Take the rerun request after a failure",
        "Start a follow-up after a failure",
        "Notify failure",
        "Failed",
    ]
    assert item(aws, LOCK, "lock")["holder"] == {"S": "none"}
    assert item(aws, LOCK, "rerun")["requested"] == {"BOOL": False}
    failed = [i for i in audit_items(aws) if i["status"]["S"] == "FAILED"]
    assert [i["job_name"]["S"] for i in failed] == [JOBS[1]]
