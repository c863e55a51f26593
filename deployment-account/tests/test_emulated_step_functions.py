"""The emulator's trigger chain (`--deliver-events`): S3 → EventBridge → Step Functions, executions that run Glue
jobs and nested executions, the roles' permissions, and the status change events that free a group's lock."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lakeops.emulator.events import render_template, select
from lakeops.emulator.process import Emulator

DEPLOYMENT, TARGET, REGION = "111111111111", "222222222222", "eu-west-1"
CODE = "sfn-test-code"
MACHINE_ROLE, NO_GLUE_ROLE, JOB_ROLE = "machine-role", "machine-without-glue", "job-role"
TRIGGER_ROLE, NO_START_ROLE = "trigger-role", "trigger-without-start"
SYNC_RULE = f"arn:aws:events:{REGION}:{TARGET}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"
RECORDS = (["s3:GetObject"], f"arn:aws:s3:::{CODE}/records/*")

Aws = Callable[[str], Any]


def arn(kind: str, name: str) -> str:
    return f"arn:aws:states:{REGION}:{TARGET}:{kind}:{name}"


def role_arn(name: str) -> str:
    return f"arn:aws:iam::{TARGET}:role/{name}"


# --- the input transformer, without the emulator --------------------------------------------------------------

EVENT = {
    "id": "e-1",
    "source": "aws.s3",
    "time": "2026-01-02T03:04:05Z",
    "detail": {"bucket": {"name": "raw"}, "object": {"key": "in/a.csv", "size": 5}, "tags": ["x", "y"]},
}
PREDEFINED = {"aws.events.rule-name": "on-raw", "aws.events.event": {"id": "e-1"}}


def test_a_variable_is_a_json_value_outside_a_string_and_its_text_inside_one() -> None:
    paths = {"key": "$.detail.object.key", "size": "$.detail.object.size", "first": "$.detail.tags[0]"}
    rendered = render_template(
        '{"key": <key>, "size": <size>, "note": "got <key> (<size> bytes) from <aws.events.rule-name>", '
        '"tag": <first>, "event": <aws.events.event>}',
        paths,
        EVENT,
        PREDEFINED,
    )
    assert json.loads(rendered) == {
        "key": "in/a.csv",
        "size": 5,
        "note": "got in/a.csv (5 bytes) from on-raw",
        "tag": "x",
        "event": {"id": "e-1"},
    }
    # What CDK writes for RuleTargetInput.from_object({"release_lock_of": EventField.from_path(...)})
    lock = render_template(
        '{"release_lock_of":<detail-executionArn>}',
        {"detail-executionArn": "$.detail.executionArn"},
        {"detail": {"executionArn": "arn:aws:states:r:1:execution:m:x"}},
        {},
    )
    assert json.loads(lock) == {"release_lock_of": "arn:aws:states:r:1:execution:m:x"}
    # A path the event lacks: null as a value, nothing inside a string; `<...>` that names no variable stays.
    missing = render_template('{"v": <gone>, "s": "[<gone>]", "t": "<tag>"}', {"gone": "$.detail.nope"}, EVENT, {})
    assert json.loads(missing) == {"v": None, "s": "[]", "t": "<tag>"}


def test_json_paths_select_as_eventbridge_does() -> None:
    assert select(EVENT, "$.detail.bucket.name") == (True, "raw")
    assert select(EVENT, "$.detail.tags[1]") == (True, "y")
    assert select(EVENT, "$.detail.tags[*]") == (True, ["x", "y"])
    assert select(EVENT, "$") == (True, EVENT)
    assert select(EVENT, "$.detail.missing") == (False, None)


# --- the emulator ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(
        tmp_path_factory.mktemp("sfn-emulator"), default_account=DEPLOYMENT, region=REGION, deliver_events=True
    ) as emu:
        yield emu


def policy(*statements: tuple[list[str], str | list[str]]) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": a, "Resource": r} for a, r in statements],
        }
    )


def trust(service: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
        }
    )


@pytest.fixture(scope="module")
def aws(emulator: Emulator) -> Aws:
    """Clients acting in the target account, with the roles the tests' state machines and rules use."""
    client = emulator.account_clients(TARGET, "sfn-tests")

    iam = client("iam")
    jobs = f"arn:aws:glue:{REGION}:{TARGET}:job/*"
    states = (["states:StartExecution"], arn("stateMachine", "*"))
    described = (["states:DescribeExecution", "states:StopExecution"], arn("execution", "*"))
    managed_rule = (["events:PutTargets", "events:PutRule", "events:DescribeRule"], SYNC_RULE)
    glue_sync = ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:BatchStopJobRun"]
    for name, document in (
        (MACHINE_ROLE, policy((glue_sync, jobs), states, described, managed_rule, RECORDS)),
        (NO_GLUE_ROLE, policy((glue_sync[1:], jobs), states, described, managed_rule)),
        (TRIGGER_ROLE, policy((["states:StartExecution"], arn("stateMachine", "*")))),
        (NO_START_ROLE, policy((["states:DescribeExecution"], arn("execution", "*")))),
    ):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust("states.amazonaws.com"))
        iam.put_role_policy(RoleName=name, PolicyName="grants", PolicyDocument=document)
    iam.create_role(RoleName=JOB_ROLE, AssumeRolePolicyDocument=trust("glue.amazonaws.com"))
    client("s3").create_bucket(Bucket=CODE, CreateBucketConfiguration={"LocationConstraint": REGION})
    return client


def create_machine(aws: Aws, name: str, states: dict[str, Any], *, role: str = MACHINE_ROLE) -> str:
    definition = {"StartAt": next(iter(states)), "States": states}
    machine: str = aws("stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=role_arn(role)
    )["stateMachineArn"]
    return machine


def wait_for_end(aws: Aws, execution: str, limit_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        described: dict[str, Any] = aws("stepfunctions").describe_execution(executionArn=execution)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.2)
    raise AssertionError(f"{execution} did not end within {limit_s}s")


def run(aws: Aws, machine: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    started = aws("stepfunctions").start_execution(stateMachineArn=machine, input=json.dumps(payload or {}))
    return wait_for_end(aws, started["executionArn"])


def executions(aws: Aws, machine: str) -> list[dict[str, Any]]:
    """The machine's executions, oldest first, each described (input and output parsed)."""
    listed = aws("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    described = [wait_for_end(aws, e["executionArn"]) for e in sorted(listed, key=lambda e: e["startDate"])]
    for execution in described:
        execution["input"] = json.loads(execution["input"])
        execution["output"] = json.loads(execution.get("output", "null"))
    return described


def create_job(aws: Aws, name: str, script: str) -> None:
    """A Glue job whose script needs no Spark (a plain Python script runs in the emulated run's process)."""
    aws("s3").put_object(Bucket=CODE, Key=f"scripts/{name}.py", Body=script.encode())
    aws("glue").create_job(
        Name=name,
        Role=role_arn(JOB_ROLE),
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{CODE}/scripts/{name}.py", "PythonVersion": "3"},
        GlueVersion="5.0",
        Timeout=5,
    )


def glue_task(job: str, **state: Any) -> dict[str, Any]:
    return {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": job},
        **state,
    }


# --- S3 → EventBridge → Step Functions --------------------------------------------------------------------------

RAW = "sfn-test-raw"
ON_RAW_RULE = "on-raw-incoming"
TRANSFORMER = {
    "InputPathsMap": {"bucket": "$.detail.bucket.name", "key": "$.detail.object.key", "reason": "$.detail.reason"},
    "InputTemplate": '{"bucket": <bucket>, "key": <key>, "reason": <reason>, "note": "object <key> arrived", '
    '"rule": <aws.events.rule-name>}',
}


def raw_stack(machine_role: str) -> dict[str, Any]:
    """The infra and ETL repositories' shapes, by hand: an EventBridge-enabled bucket, a rule on objects created
    under a prefix, targeting state machines with a role (one target transforms the event, one passes it)."""
    echo, whole = arn("stateMachine", "echo"), arn("stateMachine", "whole-event")
    pass_through = json.dumps({"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}})
    return {
        "Resources": {
            "Raw": {
                "Type": "AWS::S3::Bucket",
                "Properties": {
                    "BucketName": RAW,
                    "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
                },
            },
            "Echo": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"StateMachineName": "echo", "DefinitionString": pass_through, "RoleArn": machine_role},
            },
            "Whole": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {
                    "StateMachineName": "whole-event",
                    "DefinitionString": pass_through,
                    "RoleArn": machine_role,
                },
            },
            "TriggerRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "AssumeRolePolicyDocument": json.loads(trust("events.amazonaws.com")),
                    "Policies": [
                        {
                            "PolicyName": "start",
                            "PolicyDocument": json.loads(policy((["states:StartExecution"], [echo, whole]))),
                        }
                    ],
                },
            },
            "ObjectCreated": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "Name": ON_RAW_RULE,
                    "EventPattern": {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {"bucket": {"name": [RAW]}, "object": {"key": [{"prefix": "incoming/"}]}},
                    },
                    "Targets": [
                        {
                            "Id": "Transformed",
                            "Arn": echo,
                            "RoleArn": {"Fn::GetAtt": ["TriggerRole", "Arn"]},
                            "InputTransformer": TRANSFORMER,
                        },
                        {"Id": "Whole", "Arn": whole, "RoleArn": {"Fn::GetAtt": ["TriggerRole", "Arn"]}},
                    ],
                },
            },
        }
    }


@pytest.fixture(scope="module")
def raw_bucket(aws: Aws) -> str:
    aws("cloudformation").create_stack(
        StackName="raw-chain", TemplateBody=json.dumps(raw_stack(role_arn(MACHINE_ROLE)))
    )
    return RAW


def test_objects_created_in_an_eventbridge_bucket_start_the_target_with_its_transformed_input(
    aws: Aws, raw_bucket: str, emulator: Emulator
) -> None:
    s3 = aws("s3")

    put = s3.put_object(Bucket=raw_bucket, Key="incoming/a.csv", Body=b"id\n1\n")
    s3.copy_object(
        Bucket=raw_bucket, Key="incoming/copy.csv", CopySource={"Bucket": raw_bucket, "Key": "incoming/a.csv"}
    )
    upload = s3.create_multipart_upload(Bucket=raw_bucket, Key="incoming/big.csv")["UploadId"]
    part = s3.upload_part(Bucket=raw_bucket, Key="incoming/big.csv", UploadId=upload, PartNumber=1, Body=b"id\n2\n")
    s3.complete_multipart_upload(
        Bucket=raw_bucket,
        Key="incoming/big.csv",
        UploadId=upload,
        MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": part["ETag"]}]},
    )

    transformed = executions(aws, arn("stateMachine", "echo"))
    assert [e["output"] for e in transformed] == [
        {"bucket": raw_bucket, "key": key, "reason": reason, "note": f"object {key} arrived", "rule": ON_RAW_RULE}
        for key, reason in (
            ("incoming/a.csv", "PutObject"),
            ("incoming/copy.csv", "CopyObject"),
            ("incoming/big.csv", "CompleteMultipartUpload"),
        )
    ]
    assert all(e["status"] == "SUCCEEDED" for e in transformed)
    # A target without input settings gets the whole event, in S3's shape.
    event = executions(aws, arn("stateMachine", "whole-event"))[0]["input"]
    assert (event["source"], event["detail-type"], event["account"], event["region"]) == (
        "aws.s3",
        "Object Created",
        TARGET,
        REGION,
    )
    assert event["resources"] == [f"arn:aws:s3:::{raw_bucket}"]
    assert event["detail"]["object"]["key"] == "incoming/a.csv"
    assert event["detail"]["object"]["etag"] == put["ETag"].strip('"')
    assert event["detail"]["object"]["size"] == 5
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    started = [d for d in emulator.event_deliveries() if str(d["rule"]).endswith(f"rule/{ON_RAW_RULE}")]
    assert len(started) >= 6 and {d["outcome"] for d in started} == {"started"}  # 3 objects, 2 targets


def test_a_key_outside_the_prefix_or_a_disabled_rule_starts_nothing(aws: Aws, raw_bucket: str) -> None:
    s3, events = aws("s3"), aws("events")
    echo = arn("stateMachine", "echo")
    before = len(aws("stepfunctions").list_executions(stateMachineArn=echo)["executions"])

    s3.put_object(Bucket=raw_bucket, Key="elsewhere/b.csv", Body=b"x")
    events.disable_rule(Name=ON_RAW_RULE)
    try:
        s3.put_object(Bucket=raw_bucket, Key="incoming/while-disabled.csv", Body=b"x")
    finally:
        events.enable_rule(Name=ON_RAW_RULE)

    # Delivery happens within the PutObject request: nothing is on its way.
    assert len(aws("stepfunctions").list_executions(stateMachineArn=echo)["executions"]) == before
    s3.put_object(Bucket=raw_bucket, Key="incoming/after.csv", Body=b"x")
    assert executions(aws, echo)[-1]["output"]["key"] == "incoming/after.csv"


def test_a_target_role_that_may_not_start_the_state_machine_starts_nothing(
    aws: Aws, raw_bucket: str, emulator: Emulator
) -> None:
    machine = create_machine(aws, "guarded", {"Echo": {"Type": "Pass", "End": True}})
    events = aws("events")
    events.put_rule(
        Name="guarded-rule",
        EventPattern=json.dumps({"source": ["aws.s3"], "detail": {"object": {"key": [{"prefix": "guarded/"}]}}}),
    )
    events.put_targets(
        Rule="guarded-rule", Targets=[{"Id": "Guarded", "Arn": machine, "RoleArn": role_arn(NO_START_ROLE)}]
    )

    aws("s3").put_object(Bucket=raw_bucket, Key="guarded/c.csv", Body=b"x")

    assert aws("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    (denied,) = [d for d in emulator.event_deliveries() if d["stateMachineArn"] == machine]
    assert denied["outcome"] == "denied"
    assert denied["reason"] == (
        f"AccessDenied: role {role_arn(NO_START_ROLE)} may not states:StartExecution on {machine} (implicit deny)"
    )
    assert json.loads(str(denied["input"]))["detail"]["object"]["key"] == "guarded/c.csv"


def test_a_scheduled_rule_starts_nothing_on_events(aws: Aws, raw_bucket: str, emulator: Emulator) -> None:
    """A scheduled rule (prod's hourly merge) fires only on its schedule: neither an object created nor the status
    changes of the executions that object starts reach it (before, each of them restarted its target forever)."""
    machine = create_machine(aws, "hourly", {"Echo": {"Type": "Pass", "End": True}})
    events = aws("events")
    events.put_rule(Name="hourly-rule", ScheduleExpression="rate(1 hour)")
    events.put_targets(
        Rule="hourly-rule", Targets=[{"Id": "Hourly", "Arn": machine, "RoleArn": role_arn(TRIGGER_ROLE)}]
    )
    started = create_machine(aws, "on-objects", {"Echo": {"Type": "Pass", "End": True}})
    events.put_rule(Name="objects-rule", EventPattern=json.dumps({"source": ["aws.s3"]}))
    events.put_targets(
        Rule="objects-rule", Targets=[{"Id": "Objects", "Arn": started, "RoleArn": role_arn(TRIGGER_ROLE)}]
    )

    aws("s3").put_object(Bucket=raw_bucket, Key="scheduled/d.csv", Body=b"x")
    for execution in aws("stepfunctions").list_executions(stateMachineArn=started)["executions"]:
        wait_for_end(aws, execution["executionArn"])

    assert aws("stepfunctions").list_executions(stateMachineArn=started)["executions"]
    assert aws("stepfunctions").list_executions(stateMachineArn=machine)["executions"] == []
    assert not [d for d in emulator.event_deliveries() if d["stateMachineArn"] == machine]
    events.remove_targets(Rule="objects-rule", Ids=["Objects"])
    events.delete_rule(Name="objects-rule")


# --- Glue ---------------------------------------------------------------------------------------------------------


def test_a_glue_sync_task_waits_for_the_run_and_returns_the_job_run(aws: Aws) -> None:
    create_job(aws, "sfn-ok", "import sys\nprint('arguments', sys.argv[1:])\n")
    machine = create_machine(
        aws,
        "glue-ok",
        {
            "Run": glue_task("sfn-ok", ResultPath="$.run", Next="Select"),
            "Select": {
                "Type": "Pass",
                "Parameters": {"job_run_id.$": "$.run.Id", "state.$": "$.run.JobRunState", "run.$": "$.run"},
                "End": True,
            },
        },
    )

    execution = run(aws, machine, {"file": "a.csv"})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    (glue_run,) = aws("glue").get_job_runs(JobName="sfn-ok")["JobRuns"]
    assert output["job_run_id"] == glue_run["Id"] and output["state"] == "SUCCEEDED"
    assert output["run"]["JobName"] == "sfn-ok"
    assert output["run"]["JobRunState"] == glue_run["JobRunState"] == "SUCCEEDED"
    assert isinstance(output["run"]["ExecutionTime"], int)
    assert output["run"]["CompletedOn"] >= output["run"]["StartedOn"] > 0  # epoch milliseconds


def test_a_failing_job_fails_the_task_and_its_catch_gets_the_job_run(aws: Aws) -> None:
    create_job(aws, "sfn-fails", "raise ValueError('no partition for 2024-13-01')\n")
    machine = create_machine(
        aws,
        "glue-fails",
        {
            "Run": glue_task(
                "sfn-fails",
                Next="Done",
                Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}],
            ),
            "Done": {"Type": "Succeed"},
            "Caught": {"Type": "Pass", "End": True},
        },
    )

    execution = run(aws, machine)

    assert execution["status"] == "SUCCEEDED"
    error = json.loads(execution["output"])["error"]
    assert error["Error"] == "States.TaskFailed"
    cause = json.loads(error["Cause"])
    assert cause["JobRunState"] == "FAILED" and cause["JobName"] == "sfn-fails"
    assert cause["ErrorMessage"] == "ValueError: no partition for 2024-13-01"
    history = aws("stepfunctions").get_execution_history(executionArn=execution["executionArn"])["events"]
    assert [e["stateEnteredEventDetails"]["name"] for e in history if e["type"] == "PassStateEntered"] == ["Caught"]


def test_glue_api_errors_reach_the_definition_under_glue_names(aws: Aws) -> None:
    create_job(aws, "sfn-busy", "import time\ntime.sleep(3)\n")
    busy = aws("glue").start_job_run(JobName="sfn-busy")["JobRunId"]  # MaxConcurrentRuns is 1
    machine = create_machine(
        aws,
        "glue-busy",
        {
            "Run": glue_task(
                "sfn-busy",
                Next="Done",
                Catch=[
                    {"ErrorEquals": ["Glue.ConcurrentRunsExceededException"], "ResultPath": "$.error", "Next": "Busy"}
                ],
            ),
            "Done": {"Type": "Succeed"},
            "Busy": {"Type": "Pass", "End": True},
        },
    )

    execution = run(aws, machine)

    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["error"]["Error"] == "Glue.ConcurrentRunsExceededException"
    assert [r["Id"] for r in aws("glue").get_job_runs(JobName="sfn-busy")["JobRuns"]] == [busy]


def test_a_role_without_glue_start_job_run_fails_the_task_naming_the_action(aws: Aws) -> None:
    create_job(aws, "sfn-denied", "print('never run')\n")
    machine = create_machine(aws, "glue-denied", {"Run": glue_task("sfn-denied", End=True)}, role=NO_GLUE_ROLE)

    execution = run(aws, machine)

    assert execution["status"] == "FAILED"
    assert execution["error"] == "Glue.AccessDeniedException"
    job = f"arn:aws:glue:{REGION}:{TARGET}:job/sfn-denied"
    assert execution["cause"] == (
        f"AccessDenied: role {role_arn(NO_GLUE_ROLE)} may not glue:StartJobRun on {job} (implicit deny)"
    )
    assert aws("glue").get_job_runs(JobName="sfn-denied")["JobRuns"] == []


def test_an_s3_get_object_task_answers_the_body_as_text_and_only_where_the_role_may_read(aws: Aws) -> None:
    aws("s3").put_object(Bucket=CODE, Key="records/jr_1.json", Body=b'{"read": {"events": 3}}')
    aws("s3").put_object(Bucket=CODE, Key="scripts/secret.txt", Body=b"not for the state machine")
    read = {
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
        "Parameters": {"Bucket": CODE, "Key.$": "$.key"},
        "ResultSelector": {"counts.$": "$.Body"},
        "End": True,
    }
    machine = create_machine(aws, "read-record", {"Read": read})

    execution = run(aws, machine, {"key": "records/jr_1.json"})
    denied = run(aws, machine, {"key": "scripts/secret.txt"})

    # the object's text, which the lake's state machines keep as the audit item's counts
    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    assert json.loads(execution["output"]) == {"counts": '{"read": {"events": 3}}'}
    assert denied["status"] == "FAILED"
    assert denied["error"] == "S3.AccessDeniedException"
    assert f"may not s3:GetObject on arn:aws:s3:::{CODE}/scripts/secret.txt" in denied["cause"]


def test_a_retried_sync_task_starts_a_new_run_and_reports_that_run(aws: Aws, tmp_path_factory: Any) -> None:
    """What the lake's state machines rely on for a job's max_retries (etl_jobs.orchestration.FAILED_RUN): a retry
    of the `.sync` task is a new StartJobRun, and the task's result is the run that succeeded; a retrier with no
    attempts listed first keeps a run that never started from being retried."""
    marker = tmp_path_factory.mktemp("retried") / "first-attempt-ran"
    create_job(
        aws,
        "sfn-flaky",
        f"import pathlib\nmarker = pathlib.Path({str(marker)!r})\nif not marker.exists():\n"
        "    marker.write_text('ran')\n    raise RuntimeError('executor lost')\n",
    )
    create_job(aws, "sfn-flaky-denied", "print('never run')\n")
    retry = [
        {"ErrorEquals": ["Glue.AccessDeniedException"], "MaxAttempts": 0},
        {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 1, "MaxAttempts": 2},
    ]
    states = {
        "Run": glue_task("sfn-flaky", ResultPath="$.run", Retry=retry, Next="Select"),
        "Select": {"Type": "Pass", "Parameters": {"job_run_id.$": "$.run.Id"}, "End": True},
    }
    machine = create_machine(aws, "glue-flaky", states)
    states["Run"]["Parameters"]["JobName"] = "sfn-flaky-denied"
    denied_machine = create_machine(aws, "glue-flaky-denied", states, role=NO_GLUE_ROLE)

    execution = run(aws, machine)
    denied = run(aws, denied_machine)

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    runs = sorted(aws("glue").get_job_runs(JobName="sfn-flaky")["JobRuns"], key=lambda r: r["StartedOn"])
    assert [r["JobRunState"] for r in runs] == ["FAILED", "SUCCEEDED"]
    assert json.loads(execution["output"])["job_run_id"] == runs[1]["Id"]
    assert denied["status"] == "FAILED" and denied["error"] == "Glue.AccessDeniedException"
    history = aws("stepfunctions").get_execution_history(executionArn=denied["executionArn"])["events"]
    assert len([e for e in history if e["type"] == "TaskFailed"]) == 1  # not retried


def test_a_retried_glue_run_gets_a_new_id_and_names_the_run_it_retries(aws: Aws) -> None:
    create_job(aws, "sfn-retried", "print('run')\n")
    glue = aws("glue")
    first = glue.start_job_run(JobName="sfn-retried")["JobRunId"]
    while glue.get_job_run(JobName="sfn-retried", RunId=first)["JobRun"]["JobRunState"] == "RUNNING":
        time.sleep(0.2)

    retry = glue.start_job_run(JobName="sfn-retried", JobRunId=first)["JobRunId"]

    assert retry != first
    assert glue.get_job_run(JobName="sfn-retried", RunId=retry)["JobRun"]["PreviousRunId"] == first
    assert {r["Id"] for r in glue.get_job_runs(JobName="sfn-retried")["JobRuns"]} == {first, retry}


# --- nested executions ----------------------------------------------------------------------------------------------


def test_start_execution_tasks_run_the_child_and_return_its_output(aws: Aws) -> None:
    child = create_machine(
        aws,
        "child",
        {"Greet": {"Type": "Pass", "Parameters": {"greeting.$": "$.name", "from.$": "$.parent"}, "End": True}},
    )
    failing = create_machine(aws, "failing-child", {"Fail": {"Type": "Fail", "Error": "ChildFailed", "Cause": "no"}})

    def start(machine: str, suffix: str, **state: Any) -> dict[str, Any]:
        return {
            "Type": "Task",
            "Resource": f"arn:aws:states:::states:startExecution{suffix}",
            "Parameters": {
                "StateMachineArn": machine,
                "Input": {"name.$": "$.who", "parent.$": "$$.Execution.Id"},
            },
            **state,
        }

    parent = create_machine(
        aws,
        "parent",
        {
            "Sync2": start(child, ".sync:2", ResultPath="$.sync2", Next="Sync"),
            "Sync": start(child, ".sync", ResultPath="$.sync", Next="Fire"),
            "Fire": start(child, "", ResultPath="$.fired", Next="Failing"),
            "Failing": start(
                failing,
                ".sync:2",
                Next="Done",
                Catch=[{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.child_error", "Next": "Done"}],
            ),
            "Done": {"Type": "Succeed"},
        },
    )

    execution = run(aws, parent, {"who": "ada"})

    assert execution["status"] == "SUCCEEDED", execution.get("cause")
    output = json.loads(execution["output"])
    expected = {"greeting": "ada", "from": execution["executionArn"]}
    assert output["sync2"]["Status"] == "SUCCEEDED"
    assert output["sync2"]["Output"] == expected  # .sync:2: JSON
    assert output["sync2"]["StateMachineArn"] == child
    assert json.loads(output["sync"]["Output"]) == expected  # .sync: the text DescribeExecution gives
    assert output["fired"]["ExecutionArn"].startswith(arn("execution", "child:"))
    assert wait_for_end(aws, output["fired"]["ExecutionArn"])["status"] == "SUCCEEDED"
    child_error = output["child_error"]
    assert child_error["Error"] == "States.TaskFailed"
    assert json.loads(child_error["Cause"])["Status"] == "FAILED"
    assert json.loads(child_error["Cause"])["Error"] == "ChildFailed"
    assert len(aws("stepfunctions").list_executions(stateMachineArn=child)["executions"]) == 3


# --- status change events ------------------------------------------------------------------------------------------


def release_rule(aws: Aws, name: str, watched: str, releaser: str, statuses: list[str]) -> None:
    """The ETL repository's StoppedExecutions rule: the watched machine's stopped executions start the releaser
    with `{"release_lock_of": <execution ARN>}` (the InputTransformer CDK writes for it)."""
    events = aws("events")
    events.put_rule(
        Name=name,
        EventPattern=json.dumps(
            {
                "source": ["aws.states"],
                "detail-type": ["Step Functions Execution Status Change"],
                "detail": {"stateMachineArn": [watched], "status": statuses},
            }
        ),
    )
    events.put_targets(
        Rule=name,
        Targets=[
            {
                "Id": "Release",
                "Arn": releaser,
                "RoleArn": role_arn(TRIGGER_ROLE),
                "InputTransformer": {
                    "InputPathsMap": {"detail-executionArn": "$.detail.executionArn"},
                    "InputTemplate": '{"release_lock_of":<detail-executionArn>}',
                },
            }
        ],
    )


def test_a_failed_execution_sends_the_status_change_a_rule_matches(aws: Aws) -> None:
    releaser = create_machine(aws, "releaser", {"Release": {"Type": "Pass", "End": True}})
    watched = create_machine(
        aws,
        "sometimes-fails",
        {
            "Choose": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "Fail"}],
                "Default": "Done",
            },
            "Fail": {"Type": "Fail", "Error": "Broken", "Cause": "asked to"},
            "Done": {"Type": "Succeed"},
        },
    )
    release_rule(aws, "release-failed", watched, releaser, ["FAILED", "TIMED_OUT", "ABORTED"])

    succeeded = run(aws, watched, {"fail": False})
    failed = run(aws, watched, {"fail": True})

    assert (succeeded["status"], failed["status"]) == ("SUCCEEDED", "FAILED")
    (release,) = executions(aws, releaser)
    assert release["input"] == {"release_lock_of": failed["executionArn"]}
    assert release["status"] == "SUCCEEDED"


def test_stopping_an_execution_stops_its_glue_run_and_sends_aborted(aws: Aws) -> None:
    create_job(aws, "sfn-long", "import time\ntime.sleep(60)\n")
    releaser = create_machine(aws, "abort-releaser", {"Release": {"Type": "Pass", "End": True}})
    watched = create_machine(aws, "glue-long", {"Run": glue_task("sfn-long", End=True)})
    release_rule(aws, "release-aborted", watched, releaser, ["ABORTED"])
    sfn, glue = aws("stepfunctions"), aws("glue")
    execution = sfn.start_execution(stateMachineArn=watched)["executionArn"]
    deadline = time.monotonic() + 30
    while not glue.get_job_runs(JobName="sfn-long")["JobRuns"]:
        assert time.monotonic() < deadline, "the task did not start the run"
        time.sleep(0.2)

    sfn.stop_execution(executionArn=execution)

    assert wait_for_end(aws, execution)["status"] == "ABORTED"
    (glue_run,) = glue.get_job_runs(JobName="sfn-long")["JobRuns"]
    while glue_run["JobRunState"] == "RUNNING":
        assert time.monotonic() < deadline, "the run was not stopped"
        time.sleep(0.2)
        glue_run = glue.get_job_run(JobName="sfn-long", RunId=glue_run["Id"])["JobRun"]
    assert glue_run["JobRunState"] == "STOPPED"
    (release,) = executions(aws, releaser)
    assert release["input"] == {"release_lock_of": execution}
