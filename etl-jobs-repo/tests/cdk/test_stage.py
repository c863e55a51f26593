"""Template assertions on the ETL stage built from the fixture job groups (dev and prod, synthesized once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk import assertions

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.stage import EtlStage
from lake_pipelines.checks import acknowledgements, cfn_lint, enable_nag, lake_app, synth, templates
from lake_pipelines.generated_grants import flatten
from lake_pipelines.policy_coverage import coverage_problems, stage_templates
from lake_pipelines.role_boundary import boundary_problems

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = load(EXAMPLE_CONFIG_PATH)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    app = lake_app(outdir=str(tmp_path_factory.mktemp("etl-assembly")))
    stages = {
        env: EtlStage(
            app, env, config=CONFIG, env_name=env, jobs_dir=FIXTURES / "jobs", library_dir=FIXTURES / "lakejobs"
        )
        for env in ("dev", "prod")
    }
    for stage in stages.values():
        enable_nag(stage)
    enable_nag(app)
    assembly = synth(app)  # raises NagFindings listing any unacknowledged cdk-nag finding
    return {"app": app, "stages": stages, "assembly": assembly}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_role_fits_the_stage_role_boundary_vpc_jobs_included(built: dict[str, Any], env: str) -> None:
    # the fixtures' crm group runs in the VPC: its job role creates network interfaces
    stacks = stage_templates(built["stages"][env])
    assert any("ec2:CreateNetworkInterface" in json.dumps(s.template) for s in stacks)
    assert boundary_problems(stacks, CONFIG, env) == []
    assert coverage_problems(stacks, CONFIG, env) == []


def template(built: dict[str, Any], env: str, component: str) -> assertions.Template:
    stage: EtlStage = built["stages"][env]
    stacks = {s.stack_name: s for s in [stage.shared, *stage.group_stacks]}
    return assertions.Template.from_stack(stacks[names_for(CONFIG, env).stack_name("etl", component)])


def resources(tpl: assertions.Template, type_: str) -> dict[str, Any]:
    return dict(tpl.find_resources(type_))


def glue_job(tpl: assertions.Template, name: str) -> dict[str, Any]:
    for resource in resources(tpl, "AWS::Glue::Job").values():
        if resource["Properties"]["Name"] == name:
            props: dict[str, Any] = resource["Properties"]
            return props
    raise AssertionError(f"no Glue job {name}")


def role_statements(tpl: assertions.Template, job_logical_prefix: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = []
    for logical_id, policy in resources(tpl, "AWS::IAM::Policy").items():
        if logical_id.startswith(job_logical_prefix):
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    assert statements, f"no policy for {job_logical_prefix}"
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_one_stack_per_group_plus_shared(built: dict[str, Any]) -> None:
    names = names_for(CONFIG, "dev")
    stage: EtlStage = built["stages"]["dev"]
    assert [s.stack_name for s in stage.group_stacks] == [
        names.stack_name("etl", "group-crm"),
        names.stack_name("etl", "group-orders"),
    ]
    assert stage.shared.stack_name == names.stack_name("etl", "shared")
    assert stage.shared.account == CONFIG.env("dev").account
    assert {d.stack_name for d in stage.group_stacks[0].dependencies} == {stage.shared.stack_name}


def test_glue_5_jobs_with_per_environment_workers(built: dict[str, Any]) -> None:
    dev = glue_job(template(built, "dev", "group-orders"), "acme-lake-dev-orders-conform-orders")
    prod = glue_job(template(built, "prod", "group-orders"), "acme-lake-prod-orders-conform-orders")
    assert dev["GlueVersion"] == prod["GlueVersion"] == "5.0"
    assert (dev["WorkerType"], dev["NumberOfWorkers"]) == ("G.1X", 2)
    assert (prod["WorkerType"], prod["NumberOfWorkers"]) == ("G.2X", 10)  # overrides.yaml
    totals = glue_job(template(built, "prod", "group-orders"), "acme-lake-prod-orders-daily-totals")
    assert (totals["WorkerType"], totals["NumberOfWorkers"]) == ("G.2X", 2)


def test_job_arguments_security_configuration_and_bookmarks(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    conform = glue_job(tpl, "acme-lake-dev-orders-conform-orders")
    totals = glue_job(tpl, "acme-lake-dev-orders-daily-totals")
    args = conform["DefaultArguments"]
    assert conform["SecurityConfiguration"] == names_for(CONFIG, "dev").glue_security_configuration_name
    assert args["--job-bookmark-option"] == "job-bookmark-enable"
    assert totals["DefaultArguments"]["--job-bookmark-option"] == "job-bookmark-disable"
    assert totals["DefaultArguments"]["--currency"] == "EUR"
    assert args["--extra-py-files"].endswith(".zip")
    assert args["--extra-py-files"] == totals["DefaultArguments"]["--extra-py-files"]  # one shared library
    raw_name = {"Ref": _parameter_id(tpl, "/acme-lake/dev/contract/buckets/raw/name")}
    assert args["--input_incoming"] == {"Fn::Join": ["", ["s3://", raw_name, "/orders/incoming/"]]}
    assert args["--quarantine_path"]["Fn::Join"][1][2] == "/quarantine/orders/conform_orders/"
    assert (
        "--quarantine_path"
        not in glue_job(template(built, "dev", "group-crm"), "acme-lake-dev-crm-load-customers")["DefaultArguments"]
    )


def test_vpc_job_uses_the_private_connections(built: dict[str, Any]) -> None:
    names = names_for(CONFIG, "prod")
    job = glue_job(template(built, "prod", "group-crm"), "acme-lake-prod-crm-load-customers")
    expected = [names.glue_connection_name(n) for n in range(1, CONFIG.env("prod").max_azs + 1)]
    assert job["Connections"] == {"Connections": expected}
    shared = template(built, "prod", "shared")
    connections = resources(shared, "AWS::Glue::Connection")
    assert sorted(c["Properties"]["ConnectionInput"]["Name"] for c in connections.values()) == expected
    assert "Connections" not in glue_job(template(built, "prod", "group-orders"), "acme-lake-prod-orders-daily-totals")


def test_job_roles_are_scoped_to_their_prefixes(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    statements = role_statements(tpl, "JobconformordersRole")
    for statement in statements:
        for action in as_list(statement["Action"]):
            assert "*" not in action, statement
        if "*" in as_list(statement["Resource"]):
            assert all(a in ("cloudwatch:PutMetricData",) for a in as_list(statement["Action"])), statement
            assert statement["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Glue"}}
    text = json.dumps(statements)
    raw_arn = _parameter_id(tpl, "/acme-lake/dev/contract/buckets/raw/arn")
    conformed_arn = _parameter_id(tpl, "/acme-lake/dev/contract/buckets/conformed/arn")
    curated_arn = _parameter_id(tpl, "/acme-lake/dev/contract/buckets/curated/arn")
    assert curated_arn not in text  # conform_orders never touches the curated zone
    read_only = [r for s in statements if as_list(s["Action"]) == ["s3:GetObject"] for r in as_list(s["Resource"])]
    data_reads = [r for r in read_only if "cdk-hnb659fds-assets" not in json.dumps(r)]
    # the dataset's objects, and the two keys EMRFS uses beside them: the "directory" key it HEADs (a 403 there
    # fails the run where a 404 is expected) and the `_$folder$` marker it writes when it creates the directory
    assert sorted(r["Fn::Join"][1][1] for r in data_reads) == [
        "/orders/incoming",
        "/orders/incoming/*",
        "/orders/incoming_$folder$",
    ]
    assert all(r["Fn::Join"][1][0] == {"Ref": raw_arn} for r in data_reads)
    writes = next(s for s in statements if "s3:PutObject" in as_list(s["Action"]))
    assert sorted(r["Fn::Join"][1][1] for r in writes["Resource"]) == [
        f"/{directory}{suffix}"
        for directory in ("orders/current", "quarantine/orders/conform_orders", "staging/orders/conform_orders")
        for suffix in ("", "/*", "_$folder$")
    ]
    assert all(r["Fn::Join"][1][0] == {"Ref": conformed_arn} for r in writes["Resource"])
    raw_list = next(
        s for s in statements if as_list(s["Action"]) == ["s3:ListBucket"] and raw_arn in json.dumps(s["Resource"])
    )
    assert raw_list["Condition"] == {
        "StringLike": {
            "s3:prefix": ["orders/incoming", "orders/incoming/", "orders/incoming/*", "orders/incoming_$folder$"]
        }
    }
    key = next(s for s in statements if "kms:GenerateDataKey" in as_list(s["Action"]) and "Condition" in s)
    assert key["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    # the script and the library are readable object by object, with no s3:List*/GetBucket* families
    asset_objects = [r for r in read_only if "cdk-hnb659fds-assets" in json.dumps(r)]
    assert len(asset_objects) == 2
    assert all(as_list(s["Action"]) == ["s3:GetObject"] for s in statements if "cdk-hnb659fds-assets" in json.dumps(s))


def test_each_job_logs_to_its_own_encrypted_log_groups_with_retention(built: dict[str, Any]) -> None:
    """Glue 5.0 writes `<--custom-logGroup-prefix>/<security configuration>-role/<role name>/output|error` (a
    security configuration encrypts the logs): the stack creates exactly those groups, with the environment's
    retention and the ETL key, and the role may write only there."""
    names = names_for(CONFIG, "dev")
    tpl = template(built, "dev", "group-orders")
    etl_key = _parameter_id(tpl, "/acme-lake/dev/etl/kms-key-arn")
    groups = resources(tpl, "AWS::Logs::LogGroup")
    for group in groups.values():
        assert group["Properties"]["KmsKeyId"] == {"Ref": etl_key}
        assert group["Properties"]["RetentionInDays"] == CONFIG.env("dev").lifecycle.log_retention_days
    for job, role_prefix in (("conform_orders", "JobconformordersRole"), ("daily_totals", "JobdailytotalsRole")):
        glue_name = names.glue_job_name("orders", job)
        props = glue_job(tpl, glue_name)
        args = props["DefaultArguments"]
        prefix = f"/aws-glue/jobs/{glue_name}"
        assert args["--custom-logGroup-prefix"] == prefix
        # the <=4.0 continuous-logging arguments are gone
        assert not any(a.startswith(("--continuous-log", "--enable-continuous")) for a in args), args
        role = props["Role"]["Fn::GetAtt"][0]
        assert role.startswith(role_prefix)
        own = {
            logical_id: group["Properties"]["LogGroupName"]
            for logical_id, group in groups.items()
            if role in json.dumps(group["Properties"].get("LogGroupName"))
        }
        assert sorted(flatten(name) for name in own.values()) == [
            f"{prefix}/{names.glue_security_configuration_name}-role/<{role}>/{stream}"
            for stream in ("error", "output")
        ]
        # the job exists only once its groups do (Glue would otherwise create them, without retention)
        job_id = next(k for k, r in resources(tpl, "AWS::Glue::Job").items() if r["Properties"]["Name"] == glue_name)
        assert set(own) <= set(tpl.to_json()["Resources"][job_id]["DependsOn"])
        statements = role_statements(tpl, role_prefix)
        logs = [s for s in statements if any(a.startswith("logs:") for a in as_list(s["Action"]))]
        by_actions = {tuple(sorted(as_list(s["Action"]))): as_list(s["Resource"]) for s in logs}
        assert set(by_actions) == {
            ("logs:AssociateKmsKey", "logs:CreateLogGroup"),
            ("logs:CreateLogStream", "logs:PutLogEvents"),
        }
        # log-group actions on `...:log-group:<name>`, log-stream actions on the group's `...:<name>:*`
        group_arns = sorted(flatten(r) for r in by_actions[("logs:AssociateKmsKey", "logs:CreateLogGroup")])
        assert group_arns == sorted(
            f"arn:<AWS::Partition>:logs:eu-west-1:222222222222:log-group:<{logical_id}>" for logical_id in own
        )
        stream_arns = by_actions[("logs:CreateLogStream", "logs:PutLogEvents")]
        assert sorted(r["Fn::GetAtt"][0] for r in stream_arns) == sorted(own)
        assert all(r["Fn::GetAtt"][1] == "Arn" for r in stream_arns)


def test_no_exports_or_imports_and_only_contract_parameters(built: dict[str, Any]) -> None:
    names = names_for(CONFIG, "dev")
    allowed = {p.path for p in names.contract()} | {names.etl_key_arn, names.audit_table_name, names.audit_table_arn}
    dev_templates = [t for t in templates(built["assembly"].directory) if "assembly-dev" in str(t)]
    assert len(dev_templates) == 3
    for path in dev_templates:
        text = path.read_text()
        assert "Fn::ImportValue" not in text and '"Export"' not in text, path.name
        body = json.loads(text)
        ssm_defaults = {
            p["Default"] for p in body.get("Parameters", {}).values() if p["Type"].startswith("AWS::SSM::Parameter")
        }
        assert ssm_defaults - {"/cdk-bootstrap/hnb659fds/version"} <= allowed, path.name


def test_shared_stack_writes_the_etl_parameters(built: dict[str, Any]) -> None:
    names = names_for(CONFIG, "dev")
    shared = template(built, "dev", "shared")
    written = {p["Properties"]["Name"] for p in resources(shared, "AWS::SSM::Parameter").values()}
    assert written == {names.etl_key_arn, names.audit_table_name, names.audit_table_arn}


def test_security_configuration_encrypts_everything(built: dict[str, Any]) -> None:
    shared = template(built, "dev", "shared")
    (config,) = resources(shared, "AWS::Glue::SecurityConfiguration").values()
    props = config["Properties"]
    assert props["Name"] == names_for(CONFIG, "dev").glue_security_configuration_name
    encryption = props["EncryptionConfiguration"]
    assert encryption["S3Encryptions"][0]["S3EncryptionMode"] == "SSE-KMS"
    data_key = _parameter_id(shared, "/acme-lake/dev/contract/kms/data-key-arn")
    assert encryption["S3Encryptions"][0]["KmsKeyArn"] == {"Ref": data_key}
    assert encryption["CloudWatchEncryption"]["CloudWatchEncryptionMode"] == "SSE-KMS"
    assert encryption["JobBookmarksEncryption"]["JobBookmarksEncryptionMode"] == "CSE-KMS"
    shared.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


def test_audit_table_kms_pitr_and_retention_by_config(built: dict[str, Any]) -> None:
    for env, policy in (("dev", "Delete"), ("prod", "Retain")):
        shared = template(built, env, "shared")
        tables = resources(shared, "AWS::DynamoDB::Table")
        assert len(tables) == 1
        (table,) = tables.values()
        props = table["Properties"]
        assert props["SSESpecification"]["SSEEnabled"] is True
        assert props["SSESpecification"]["SSEType"] == "KMS"
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert table["DeletionPolicy"] == policy
        assert props.get("DeletionProtectionEnabled", False) is (env == "prod")
    stage: EtlStage = built["stages"]["prod"]
    assert stage.shared.termination_protection is True
    assert built["stages"]["dev"].shared.termination_protection is False


def test_stateful_logical_ids_are_pinned(built: dict[str, Any]) -> None:
    shared = template(built, "prod", "shared")
    assert list(resources(shared, "AWS::DynamoDB::Table")) == ["AuditTableB07F8EEB"]
    assert list(resources(shared, "AWS::KMS::Key")) == ["EtlKey1D57497B"]


def state_machine_definition(tpl: assertions.Template) -> dict[str, Any]:
    (machine,) = resources(tpl, "AWS::StepFunctions::StateMachine").values()
    definition: dict[str, Any] = json.loads(_join_literal(machine["Properties"]["DefinitionString"]))
    return definition


def test_state_machine_runs_jobs_in_order_with_retries_catch_and_logging(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    (machine,) = resources(tpl, "AWS::StepFunctions::StateMachine").values()
    props = machine["Properties"]
    assert props["StateMachineName"] == names_for(CONFIG, "dev").state_machine_name("orders")
    assert props["LoggingConfiguration"]["Level"] == "ALL"
    assert props["TracingConfiguration"] == {"Enabled": True}
    definition = state_machine_definition(tpl)
    states = definition["States"]
    order = _walk(definition)
    runs = [s for s in order if s.startswith("Run ")]
    assert runs == ["Run conform_orders", "Run daily_totals"]
    for name in runs:
        state = states[name]
        assert state["Resource"].endswith(":states:::glue:startJobRun.sync")
        assert state["Parameters"]["JobName"] == f"acme-lake-dev-orders-{name[4:].replace('_', '-')}"
        retry = state["Retry"][0]
        # with the group's lock, only a run started outside the state machine can hold the job: retried
        assert "Glue.ConcurrentRunsExceededException" in retry["ErrorEquals"] and retry["BackoffRate"] == 2
        assert state["Catch"][0]["ErrorEquals"] == ["States.ALL"]
        assert state["Catch"][0]["Next"] == "Record failure"
    assert _walk(definition, "Record failure") == [
        "Record failure",
        "Release the lock after a failure",
        "Take the rerun request after a failure",
        "Start a follow-up after a failure",
        "Notify failure",
        "Failed",
    ]
    assert states["Notify failure"]["Resource"].endswith(":states:::sns:publish")
    assert states["Failed"]["Type"] == "Fail"
    puts = [s for s in states.values() if s.get("Resource", "").endswith(":states:::dynamodb:putItem")]
    audit = [p["Parameters"]["Item"] for p in puts if "status" in p["Parameters"]["Item"]]
    assert {item["status"]["S"] for item in audit} == {"RUNNING", "SUCCEEDED", "FAILED", "SKIPPED"}
    group = resources(tpl, "AWS::Logs::LogGroup")
    destination = props["LoggingConfiguration"]["Destinations"][0]["CloudWatchLogsLogGroup"]["LogGroupArn"]
    assert destination["Fn::GetAtt"][0] in group


def test_a_jobs_max_retries_retry_its_task_not_glue_and_never_a_run_that_could_not_start(
    built: dict[str, Any],
) -> None:
    """The fixture's prod overrides give conform_orders `max_retries: 2`. Glue's own retry would start a run the
    `.sync` task may not follow (outside the lock, its record under an id the task never sees): the state machine
    retries the task instead, and Glue's MaxRetries stays 0."""
    prod = state_machine_definition(template(built, "prod", "group-orders"))["States"]["Run conform_orders"]
    transient, permanent, failed_run = prod["Retry"]
    assert "Glue.ThrottlingException" in transient["ErrorEquals"]
    # first matching retrier applies: a run that never started (a refused call, a missing job) is not retried
    assert "Glue.AccessDeniedException" in permanent["ErrorEquals"] and permanent["MaxAttempts"] == 0
    assert failed_run["ErrorEquals"] == ["States.TaskFailed"] and failed_run["MaxAttempts"] == 2
    assert failed_run["BackoffRate"] == 2 and failed_run["JitterStrategy"] == "FULL"
    for env in ("dev", "prod"):
        states = state_machine_definition(template(built, env, "group-orders"))["States"]
        if env == "dev":  # max_retries 0 there: no retrier but the transient errors'
            assert [r["ErrorEquals"] for r in states["Run conform_orders"]["Retry"]] == [transient["ErrorEquals"]]
        for job in ("conform-orders", "daily-totals"):
            definition = glue_job(template(built, env, "group-orders"), f"acme-lake-{env}-orders-{job}")
            assert definition.get("MaxRetries", 0) == 0


def test_executions_are_single_flight_a_second_one_ends_skipped_without_failing(built: dict[str, Any]) -> None:
    """The group's lock (a conditional PutItem in the audit table): taken before the first job, let go at every
    end, and an execution that finds it held asks for a rerun and succeeds as `Skipped`, with no failure
    record, message or alarm."""
    tpl = template(built, "dev", "group-orders")
    names = names_for(CONFIG, "dev")
    definition = state_machine_definition(tpl)
    states = definition["States"]
    lock = f"lock#{names.state_machine_name('orders')}"
    assert _walk(definition)[:4] == ["Release requested?", "Start the group", "Take the lock", "Start conform_orders"]
    take = states["Take the lock"]
    assert take["Resource"].endswith(":states:::dynamodb:putItem")
    params = take["Parameters"]
    assert params["Item"]["job_name"] == {"S": lock} and params["Item"]["run_id"] == {"S": "lock"}
    assert params["Item"]["holder"] == {"S.$": "$$.Execution.Id"}
    assert params["ConditionExpression"] == "attribute_not_exists(#holder) OR #holder = :free"
    assert params["ExpressionAttributeNames"] == {"#holder": "holder"}
    assert params["ExpressionAttributeValues"] == {":free": {"S": "none"}}
    assert states["Take the lock again"]["Parameters"] == params
    assert [(c["ErrorEquals"], c["Next"]) for c in take["Catch"]] == [
        (["DynamoDB.ConditionalCheckFailedException"], "Request a rerun"),
        (["States.ALL"], "Record failure"),
    ]
    rerun = states["Request a rerun"]["Parameters"]["Item"]
    assert (rerun["job_name"], rerun["run_id"], rerun["requested"]) == ({"S": lock}, {"S": "rerun"}, {"BOOL": True})
    assert states["Request a rerun"]["Next"] == "Take the lock again"
    assert states["Take the lock again"]["Catch"][0] == {
        "ErrorEquals": ["DynamoDB.ConditionalCheckFailedException"],
        "ResultPath": "$.lock_error",
        "Next": "Record skipped",
    }
    # the skipped end: an audit item saying SKIPPED, then a Succeed state; no SNS, no Fail on the way
    assert _walk(definition, "Record skipped") == ["Record skipped", "Skipped"]
    assert states["Skipped"]["Type"] == "Succeed"
    assert states["Record skipped"]["Parameters"]["Item"]["status"] == {"S": "SKIPPED"}
    assert states["Record skipped"]["Parameters"]["Item"]["job_name"] == {"S.$": "$.current.job"}
    # every end lets the lock go, as the holder only, then starts one follow-up if a rerun was asked for
    assert _walk(definition, "Release the lock after success") == [
        "Release the lock after success",
        "Take the rerun request after success",
        "Start a follow-up after success",
        "Done",
    ]
    release = states["Release the lock after success"]["Parameters"]
    assert release["Item"]["holder"] == {"S": "none"}
    assert release["ConditionExpression"] == "#holder = :holder"
    assert release["ExpressionAttributeValues"] == {":holder": {"S.$": "$$.Execution.Id"}}
    take_request = states["Take the rerun request after success"]["Parameters"]
    assert take_request["Item"]["requested"] == {"BOOL": False}
    assert take_request["ConditionExpression"] == "#requested = :requested"
    assert take_request["ExpressionAttributeValues"] == {":requested": {"BOOL": True}}
    follow_up = states["Start a follow-up after success"]
    assert follow_up["Resource"].endswith(":states:::states:startExecution")  # not .sync: it runs on its own
    assert follow_up["Parameters"]["StateMachineArn"].endswith(
        f":states:eu-west-1:222222222222:stateMachine:{names.state_machine_name('orders')}"
    )
    # a lock released for a stopped execution, by the status-change rule's input
    choice = states["Release requested?"]
    assert choice["Choices"] == [
        {"Variable": "$.release_lock_of", "IsPresent": True, "Next": "Release the lock of a stopped execution"}
    ]
    stopped = states["Release the lock of a stopped execution"]["Parameters"]
    assert stopped["ExpressionAttributeValues"] == {":holder": {"S.$": "$.release_lock_of"}}
    ends = {s: states[s]["Type"] for s in ("Lock released", "Lock not held", "Lock release failed")}
    assert set(ends.values()) == {"Succeed"}  # a release never fails: its own end starts no other release
    # the lock is items of the audit table, written by PutItem only
    statements = role_statements(tpl, "OrchestrationStateMachineRole")
    dynamodb = {a for s in statements for a in as_list(s["Action"]) if a.startswith("dynamodb:")}
    assert dynamodb == {"dynamodb:PutItem"}
    (start,) = [s for s in statements if "states:StartExecution" in as_list(s["Action"])]
    assert flatten(start["Resource"]).endswith(f":stateMachine:{names.state_machine_name('orders')}")
    # the only alarm counts failed executions; a skipped one succeeded
    (alarm,) = resources(tpl, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["MetricName"] == "ExecutionsFailed"


def test_an_execution_that_stops_holding_the_lock_has_it_released(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    (machine_id,) = resources(tpl, "AWS::StepFunctions::StateMachine")
    rules = [r for r in resources(tpl, "AWS::Events::Rule").values() if "aws.states" in json.dumps(r)]
    (rule,) = rules
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.states"],
        "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [{"Ref": machine_id}], "status": ["FAILED", "TIMED_OUT", "ABORTED"]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Ref": machine_id}
    assert target["InputTransformer"] == {
        "InputPathsMap": {"detail-executionArn": "$.detail.executionArn"},
        "InputTemplate": '{"release_lock_of":<detail-executionArn>}',
    }


def test_each_run_audit_item_carries_its_counts(built: dict[str, Any]) -> None:
    """Glue's run result has no output of the job: the job leaves its counts in a record named after its run id
    (lakejobs.io.run_record_path, under --TempDir), which the state machine reads into the SUCCEEDED item."""
    tpl = template(built, "dev", "group-orders")
    states = state_machine_definition(tpl)["States"]
    read = states["Read counts conform_orders"]
    assert read["Resource"].endswith(":states:::aws-sdk:s3:getObject")
    assert read["Parameters"]["Key.$"] == (
        "States.Format('staging/orders/conform_orders/_runs/{}.json', $.run.job_run_id)"
    )
    assert read["ResultSelector"] == {"counts.$": "$.Body", "error": ""}  # the text as it is: nothing to parse
    assert read["Next"] == "Record success conform_orders"
    # a record that cannot be read leaves the run succeeded, its audit saying why the counts are missing
    assert read["Catch"] == [
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.record_error", "Next": "Counts unavailable conform_orders"}
    ]
    unavailable = states["Counts unavailable conform_orders"]
    assert unavailable["Next"] == "Record success conform_orders"
    assert unavailable["Parameters"] == {
        "counts": "",
        "error.$": "States.Format('{}: {}', $.record_error.Error, $.record_error.Cause)",
    }
    item = states["Record success conform_orders"]["Parameters"]["Item"]
    assert item["counts"] == {"S.$": "$.record.counts"}
    assert item["counts_error"] == {"S.$": "$.record.error"}
    # where the job's --TempDir points, in the same bucket and folder
    temp_dir = glue_job(tpl, "acme-lake-dev-orders-conform-orders")["DefaultArguments"]["--TempDir"]
    conformed = {"Ref": _parameter_id(tpl, "/acme-lake/dev/contract/buckets/conformed/name")}
    assert temp_dir["Fn::Join"][1][1:] == [conformed, "/staging/orders/conform_orders/"]
    (machine,) = resources(tpl, "AWS::StepFunctions::StateMachine").values()
    assert conformed in machine["Properties"]["DefinitionString"]["Fn::Join"][1]  # the Bucket, by the same parameter
    statements = role_statements(tpl, "OrchestrationStateMachineRole")
    (get,) = [s for s in statements if as_list(s["Action"]) == ["s3:GetObject"]]
    # the run-record folders of the group's jobs, one pattern per bucket (`*`: the job's folder), GetObject only
    assert sorted(flatten(r) for r in as_list(get["Resource"])) == [
        "<ContractBucketsConformedArn>/staging/orders/*/_runs/*",
        "<ContractBucketsCuratedArn>/staging/orders/*/_runs/*",
    ]
    data_key = {"Ref": _parameter_id(tpl, "/acme-lake/dev/contract/kms/data-key-arn")}
    (decrypt,) = [s for s in statements if s["Resource"] == data_key]
    assert as_list(decrypt["Action"]) == ["kms:Decrypt"]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_state_machine_may_publish_to_the_encrypted_alarm_topic(built: dict[str, Any], env: str) -> None:
    tpl = template(built, env, "group-orders")
    names = names_for(CONFIG, env)
    topic = {"Ref": _parameter_id(tpl, names.alarm_topic_arn)}
    topic_key = {"Ref": _parameter_id(tpl, names.alarm_topic_key_arn)}
    statements = role_statements(tpl, "OrchestrationStateMachineRole")
    publish = [s for s in statements if "sns:Publish" in as_list(s["Action"])]
    assert [s["Resource"] for s in publish] == [topic]
    # SNS encrypts with the topic's key on the publisher's behalf: only through SNS, only that key
    key_grants = [s for s in statements if s["Resource"] == topic_key]
    assert len(key_grants) == 1
    assert sorted(as_list(key_grants[0]["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey"]
    region = CONFIG.env(env).region
    assert key_grants[0]["Condition"] == {"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}}


def test_triggers_object_created_and_schedule(built: dict[str, Any]) -> None:
    orders = template(built, "dev", "group-orders")
    raw_name = _parameter_id(orders, "/acme-lake/dev/contract/buckets/raw/name")
    orders.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {
                    "bucket": {"name": [{"Ref": raw_name}]},
                    "object": {"key": [{"prefix": "orders/incoming/"}]},
                },
            },
            "Targets": assertions.Match.array_with(
                [assertions.Match.object_like({"Arn": {"Ref": assertions.Match.string_like_regexp("Orchestration")}})]
            ),
        },
    )
    crm = template(built, "dev", "group-crm")
    crm.has_resource_properties("AWS::Events::Rule", {"ScheduleExpression": "cron(0 3 * * ? *)"})
    assert not any("aws.s3" in json.dumps(r) for r in resources(crm, "AWS::Events::Rule").values())


def test_failures_alarm_to_the_contract_topic(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    topic = {"Ref": _parameter_id(tpl, "/acme-lake/dev/contract/notifications/alarm-topic-arn")}
    (alarm,) = resources(tpl, "AWS::CloudWatch::Alarm").values()
    assert alarm["Properties"]["MetricName"] == "ExecutionsFailed"
    assert alarm["Properties"]["AlarmActions"] == [topic]
    glue_rules = [r for r in resources(tpl, "AWS::Events::Rule").values() if "aws.glue" in json.dumps(r["Properties"])]
    assert len(glue_rules) == 1
    pattern = glue_rules[0]["Properties"]["EventPattern"]
    assert pattern["detail"]["state"] == ["FAILED", "TIMEOUT", "ERROR"]
    assert pattern["detail"]["jobName"] == ["acme-lake-dev-orders-conform-orders", "acme-lake-dev-orders-daily-totals"]
    assert glue_rules[0]["Properties"]["Targets"][0]["Arn"] == topic


def test_catalog_tables_for_outputs(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    tables = {
        t["Properties"]["TableInput"]["Name"]: t["Properties"] for t in resources(tpl, "AWS::Glue::Table").values()
    }
    assert set(tables) == {"orders_orders", "orders_totals"}
    orders = tables["orders_orders"]
    assert orders["DatabaseName"] == names_for(CONFIG, "dev").glue_database_name("conformed")
    assert [c["Name"] for c in orders["TableInput"]["StorageDescriptor"]["Columns"]] == [
        "order_id",
        "amount",
        "updated_at",
    ]
    assert "PartitionKeys" not in orders["TableInput"]
    totals = tables["orders_totals"]
    assert totals["DatabaseName"] == "acme_lake_dev_curated"
    # In partition_by order (outermost first), typed from partition_types; not repeated among the columns.
    assert totals["TableInput"]["PartitionKeys"] == [
        {"Name": "order_date", "Type": "date"},
        {"Name": "currency", "Type": "string"},
    ]
    assert [c["Name"] for c in totals["TableInput"]["StorageDescriptor"]["Columns"]] == ["orders", "total_amount"]


def test_jobs_get_their_outputs_partition_columns_and_register_partitions(built: dict[str, Any]) -> None:
    tpl = template(built, "dev", "group-orders")
    totals = glue_job(tpl, "acme-lake-dev-orders-daily-totals")["DefaultArguments"]
    assert totals["--partition_by_totals"] == "order_date,currency"
    assert json.loads(totals["--catalog_tables"]) == {
        "totals": {"database": "acme_lake_dev_curated", "table": "orders_totals"}
    }
    conform = glue_job(tpl, "acme-lake-dev-orders-conform-orders")["DefaultArguments"]
    assert not any(name.startswith(("--partition_by_", "--catalog_tables")) for name in conform)

    # Registering partitions: its own table only (plus the catalog and database Glue checks), and the data
    # key that encrypts the catalog only through Glue.
    statements = role_statements(tpl, "JobdailytotalsRole")
    (catalog,) = [s for s in statements if "glue:BatchCreatePartition" in as_list(s["Action"])]
    assert sorted(as_list(catalog["Action"])) == ["glue:BatchCreatePartition", "glue:GetTable"]
    assert [r["Fn::Join"][1][-1] for r in catalog["Resource"]] == [
        ":glue:eu-west-1:222222222222:catalog",
        ":glue:eu-west-1:222222222222:database/acme_lake_dev_curated",
        ":glue:eu-west-1:222222222222:table/acme_lake_dev_curated/orders_totals",
    ]
    via_glue = [
        s
        for s in statements
        if s.get("Condition", {}).get("StringEquals", {}).get("kms:ViaService", "").startswith("glue.")
    ]
    assert [sorted(as_list(s["Action"])) for s in via_glue] == [["kms:Decrypt", "kms:GenerateDataKey"]]
    assert not any("glue:BatchCreatePartition" in json.dumps(s) for s in role_statements(tpl, "JobconformordersRole"))


def test_verify_role_trusts_only_the_verify_step(built: dict[str, Any]) -> None:
    shared = template(built, "dev", "shared")
    roles = resources(shared, "AWS::IAM::Role")
    (verify,) = [r for r in roles.values() if r["Properties"].get("RoleName") == "acme-lake-dev-etl-verify"]
    (statement,) = verify["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    # the deployment account, and in it only the etl pipeline's Verify step of this environment
    assert flatten(statement["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::111111111111:root"
    condition = {k: flatten(v) for k, v in statement["Condition"]["ArnEquals"].items()}
    assert condition == {
        "aws:PrincipalArn": "arn:<AWS::Partition>:iam::111111111111:role/acme-lake-dev-etl-verify-step"
    }
    policies = [p for p in resources(shared, "AWS::IAM::Policy").values()]
    actions = {
        a for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"] for a in as_list(s["Action"])
    }
    assert actions == {
        "glue:StartJobRun",
        "glue:GetJobRun",
        "glue:GetJob",
        "ssm:GetParameter",
        "s3:ListBucket",
        "s3:GetObject",
        "kms:Decrypt",
    }


def test_where_data_is_retained_the_verify_role_cannot_start_a_job(built: dict[str, Any]) -> None:
    shared = template(built, "prod", "shared")
    policies = resources(shared, "AWS::IAM::Policy").values()
    glue = {
        a
        for p in policies
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        for a in as_list(s["Action"])
        if a.startswith("glue:")
    }
    assert glue == {"glue:GetJobRuns"}


def test_where_the_check_runs_jobs_its_role_reads_their_run_records_and_no_other_staging_object(
    built: dict[str, Any],
) -> None:
    """A bookmarked job with nothing new to read writes no output; the check learns that from the run's record
    (the job's --TempDir, through glue:GetJob), so it may read exactly the run-record folders of staging."""
    policies = resources(template(built, "dev", "shared"), "AWS::IAM::Policy").values()
    statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]]
    glue = {a for s in statements for a in as_list(s["Action"]) if a.startswith("glue:")}
    assert glue == {"glue:StartJobRun", "glue:GetJobRun", "glue:GetJob"}
    (reads,) = [s for s in statements if as_list(s["Action"]) == ["s3:GetObject"]]
    objects = sorted(flatten(r).split(">", 1)[1] for r in as_list(reads["Resource"]))
    assert all(o in ("/*/_manifest.json", "/staging/*/_runs/*") for o in objects), objects
    assert "/staging/*/_runs/*" in objects


def test_acknowledgements_carry_reasons(built: dict[str, Any]) -> None:
    found = acknowledgements(built["assembly"].directory)
    assert found
    assert all(len(a.reason) >= 20 for a in found)
    assert {a.rule.split("[")[0] for a in found} <= {"AwsSolutions-IAM5", "AwsSolutions-GL1", "AwsSolutions-GL3"}


def test_cfn_lint_clean(built: dict[str, Any]) -> None:
    assert cfn_lint(built["assembly"].directory) == []


def _parameter_id(tpl: assertions.Template, path: str) -> str:
    for logical_id, parameter in tpl.to_json().get("Parameters", {}).items():
        if parameter.get("Default") == path:
            return str(logical_id)
    raise AssertionError(f"no template parameter reads {path}")


def _join_literal(value: Any) -> str:
    """A Fn::Join definition string with every token replaced by a placeholder string."""
    if isinstance(value, str):
        return value
    parts = value["Fn::Join"][1]
    return "".join(p if isinstance(p, str) else "TOKEN" for p in parts)


def _walk(definition: dict[str, Any], start: str | None = None) -> list[str]:
    """The states from `start` (the definition's start) on the path without errors: Next, a Choice's Default."""
    order, current = [], start or definition["StartAt"]
    while current:
        order.append(current)
        state = definition["States"][current]
        current = state.get("Next") or state.get("Default")
    return order
