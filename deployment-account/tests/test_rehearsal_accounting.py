"""The rehearsal summary accounts for every template resource, and what it counts as created really exists."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from lakeops.emulator.gaps import LISTED_GAPS, ListedGap, listed_gap
from lakeops.rehearsal import report
from lakeops.rehearsal.existence import CHECKS, Probe, Prober
from lakeops.rehearsal.report import Accounted, Category, EnvironmentSummary, StackReport

REGION = "eu-west-1"

TEMPLATE = {
    "Resources": {
        "Metadata": {"Type": "AWS::CDK::Metadata"},
        "Bucket": {"Type": "AWS::S3::Bucket"},
        "Marker": {"Type": "AWS::SNS::TopicPolicy"},  # supported, but no existence check for its type
        "AutoDelete": {"Type": "Custom::S3AutoDeleteObjects"},
        "Generic": {"Type": "AWS::CloudFormation::CustomResource"},
        "Rule": {"Type": "AWS::CodeStarNotifications::NotificationRule"},
        "Ingress": {"Type": "AWS::EC2::SecurityGroupIngress"},  # no physical id, and not listed
        "Vanished": {"Type": "AWS::SSM::Parameter"},  # a physical id the service does not know
        "Skipped": {"Type": "AWS::IAM::Role"},  # not among the stack's resources at all
        "QueueA": {"Type": "AWS::Fake::Queue"},  # no physical id, listed
    }
}
SUPPORTED = frozenset(
    {"AWS::S3::Bucket", "AWS::SNS::TopicPolicy", "AWS::EC2::SecurityGroupIngress", "AWS::SSM::Parameter"}
    | {"AWS::IAM::Role", "AWS::Fake::Queue"}
)
DEPLOYED = [
    {"LogicalResourceId": "Bucket", "PhysicalResourceId": "lake-raw", "ResourceType": "AWS::S3::Bucket"},
    {"LogicalResourceId": "Marker", "PhysicalResourceId": "Marker", "ResourceType": "AWS::SNS::TopicPolicy"},
    {"LogicalResourceId": "AutoDelete", "PhysicalResourceId": "x", "ResourceType": "Custom::S3AutoDeleteObjects"},
    {"LogicalResourceId": "Ingress", "PhysicalResourceId": "None", "ResourceType": "AWS::EC2::SecurityGroupIngress"},
    {"LogicalResourceId": "Vanished", "PhysicalResourceId": "/gone", "ResourceType": "AWS::SSM::Parameter"},
    {"LogicalResourceId": "QueueA", "ResourceType": "AWS::Fake::Queue"},
    {},  # what moto answers for a type it skipped: no logical id, no type
]
QUEUE_GAP = ListedGap(
    "AWS::Fake::Queue",
    what="the A queue",
    why="the fake service has no ids",
    covered_by="tests/test_fake.py::test_queue",
    logical_id_pattern="Queue[A-C]",
)


def fake_probe(resource_type: str, physical_id: str) -> Probe | None:
    known = {("AWS::S3::Bucket", "lake-raw")}
    if resource_type not in ("AWS::S3::Bucket", "AWS::SSM::Parameter"):
        return None
    return Probe((resource_type, physical_id) in known, f"api for {resource_type}")


def account(template: dict[str, Any] = TEMPLATE, gaps: tuple[ListedGap, ...] = (QUEUE_GAP,)) -> list[Accounted]:
    return report.account_for(template, DEPLOYED, supported=SUPPORTED, probe=fake_probe, gaps=gaps)


def test_every_template_resource_lands_in_exactly_one_category() -> None:
    entries = {e.logical_id: e for e in account()}
    assert "Metadata" not in entries  # left out of every count
    assert set(entries) == set(TEMPLATE["Resources"]) - {"Metadata"}
    assert {k: e.category for k, e in entries.items()} == {
        "Bucket": Category.CREATED,
        "Marker": Category.CREATED,
        "AutoDelete": Category.HANDLER_NOT_RUN,
        "Generic": Category.HANDLER_NOT_RUN,
        "Rule": Category.NOT_EMULATED,
        "Ingress": Category.UNACCOUNTED,
        "Vanished": Category.UNACCOUNTED,
        "Skipped": Category.UNACCOUNTED,
        "QueueA": Category.LISTED,
    }
    assert entries["Bucket"].checked_by == "api for AWS::S3::Bucket"
    assert entries["Marker"].checked_by == ""  # created, without a check to confirm it
    assert entries["Ingress"].reason == "created without a physical id"
    assert entries["Vanished"].reason == "/gone not found by api for AWS::SSM::Parameter"
    assert entries["Skipped"].reason == "not among the stack's resources"
    assert "the A queue: the fake service has no ids (covered by tests/test_fake.py::test_queue)" in (
        entries["QueueA"].reason
    )


def test_stack_totals_add_up() -> None:
    stack = StackReport("s", "1", account(), metadata=1)
    parts = [len(stack.of(c)) for c in Category]
    assert stack.in_template == 9 == sum(parts)
    assert (stack.created, stack.checked) == (2, 1)
    assert stack.not_emulated == {"AWS::CodeStarNotifications::NotificationRule": 1}


def test_a_gap_pattern_covers_only_the_logical_ids_it_names() -> None:
    template = {"Resources": {"QueueA": {"Type": "AWS::Fake::Queue"}, "QueueZ": {"Type": "AWS::Fake::Queue"}}}
    deployed = [{"LogicalResourceId": "QueueA"}, {"LogicalResourceId": "QueueZ", "PhysicalResourceId": ""}]
    entries = report.account_for(template, deployed, supported=SUPPORTED, probe=fake_probe, gaps=(QUEUE_GAP,))
    assert [(e.logical_id, e.category) for e in entries] == [
        ("QueueA", Category.LISTED),
        ("QueueZ", Category.UNACCOUNTED),
    ]


def test_an_unlisted_unaccounted_resource_fails_the_rehearsal_by_name() -> None:
    summary = EnvironmentSummary("dev", "infra", [StackReport("lake-dev-network", "1", account())])
    failure = report.unaccounted_failure(summary)
    assert failure is not None
    assert failure.startswith("3 resource(s) in dev (infra)")
    assert "lake-dev-network: Ingress (AWS::EC2::SecurityGroupIngress): created without a physical id" in failure
    assert "Vanished (AWS::SSM::Parameter)" in failure
    assert "QueueA" not in failure  # listed, with its reason


def test_listed_resources_alone_do_not_fail() -> None:
    template = {"Resources": {"QueueA": {"Type": "AWS::Fake::Queue"}, "Bucket": {"Type": "AWS::S3::Bucket"}}}
    entries = report.account_for(template, DEPLOYED, supported=SUPPORTED, probe=fake_probe, gaps=(QUEUE_GAP,))
    assert report.unaccounted_failure(EnvironmentSummary("dev", "etl", [StackReport("s", "1", entries)])) is None
    # without the gap the same resource fails
    entries = report.account_for(template, DEPLOYED, supported=SUPPORTED, probe=fake_probe, gaps=())
    assert report.unaccounted_failure(EnvironmentSummary("dev", "etl", [StackReport("s", "1", entries)]))


def test_the_summary_shows_in_template_beside_created_and_names_the_unaccounted() -> None:
    summary = EnvironmentSummary("dev", "infra", [StackReport("lake-dev-network", "1", account())], check="passed")
    text = report.render([summary], [], failed=True)
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("env"))
    assert header.index("in template") < header.index("created")
    row = next(line for line in lines if line.startswith("dev"))
    # in template, created, checked, handler not run, not emulated, listed, unaccounted
    assert row.split()[2:10] == ["1", "9", "2", "1", "2", "1", "1", "3"]
    assert "AWS::CDK::Metadata (CDK's version report) is not counted" in text
    assert "  lake-dev-network: Ingress (AWS::EC2::SecurityGroupIngress): created without a physical id" in lines
    assert any(line.startswith("  lake-dev-network: QueueA (AWS::Fake::Queue): created without") for line in lines)
    assert "  lake-dev-network: Generic (AWS::CloudFormation::CustomResource)" in lines


def test_listed_gaps_are_reasoned_and_the_fixed_ingress_is_not_among_them() -> None:
    # the emulator gives the ingress rule its id (patches.py): listing it would hide a regression of that fix
    assert listed_gap("AWS::EC2::SecurityGroupIngress", "GlueConnectionsSecurityGroupfromALLPORTS54D83F1A") is None
    for gap in LISTED_GAPS:
        assert gap.what and gap.why and gap.covered_by
        test_file = Path(__file__).parent.parent / gap.covered_by.split("::")[0]
        assert test_file.is_file(), f"{gap.resource_type}: {gap.covered_by} names no test file"


# --- existence through the service's own API (moto in this process) ----------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Any]]:
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield lambda service: boto3.client(service, region_name=REGION)


Clients = Callable[[str], Any]


def trust(service: str) -> str:
    statement = {"Effect": "Allow", "Principal": {"Service": f"{service}.amazonaws.com"}, "Action": "sts:AssumeRole"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "arn:aws:s3:::lake-raw/*"}],
    }
)
KEY_POLICY = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ],
    }
)


def _bucket(c: Clients) -> str:
    c("s3").create_bucket(Bucket="lake-raw", CreateBucketConfiguration={"LocationConstraint": REGION})
    return "lake-raw"


def _bucket_policy(c: Clients) -> str:
    c("s3").put_bucket_policy(Bucket=_bucket(c), Policy=POLICY)
    return "lake-raw"


def _key(c: Clients) -> str:
    return str(c("kms").create_key()["KeyMetadata"]["KeyId"])


def _alias(c: Clients) -> str:
    c("kms").create_alias(AliasName="alias/lake-data", TargetKeyId=_key(c))
    return "alias/lake-data"


def _parameter(c: Clients) -> str:
    c("ssm").put_parameter(Name="/lake/dev/raw-bucket", Value="lake-raw", Type="String")
    return "/lake/dev/raw-bucket"


def _role(c: Clients) -> str:
    c("iam").create_role(RoleName="lake-job", AssumeRolePolicyDocument=trust("glue"))
    return "lake-job"


def _function(c: Clients) -> str:
    arn = c("iam").create_role(RoleName="handler", AssumeRolePolicyDocument=trust("lambda"))["Role"]["Arn"]
    c("lambda").create_function(
        FunctionName="auto-delete", Runtime="python3.12", Role=arn, Handler="h.main", Code={"ZipFile": b"zip"}
    )
    return "auto-delete"


def _log_group(c: Clients) -> str:
    c("logs").create_log_group(logGroupName="/lake/flow-logs")
    return "/lake/flow-logs"


def _topic(c: Clients) -> str:
    return str(c("sns").create_topic(Name="alerts")["TopicArn"])


def _subscription(c: Clients) -> str:
    return str(c("sns").subscribe(TopicArn=_topic(c), Protocol="sqs", Endpoint=_queue_arn(c))["SubscriptionArn"])


def _queue_arn(c: Clients) -> str:
    url = c("sqs").create_queue(QueueName="alerts")["QueueUrl"]
    return str(c("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def _vpc(c: Clients) -> str:
    return str(c("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"])


def _subnet(c: Clients) -> str:
    return str(c("ec2").create_subnet(VpcId=_vpc(c), CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"])


def _security_group(c: Clients) -> str:
    return str(c("ec2").create_security_group(GroupName="glue", Description="glue", VpcId=_vpc(c))["GroupId"])


def _route_table(c: Clients) -> str:
    return str(c("ec2").create_route_table(VpcId=_vpc(c))["RouteTable"]["RouteTableId"])


def _endpoint(c: Clients) -> str:
    endpoint = c("ec2").create_vpc_endpoint(VpcId=_vpc(c), ServiceName=f"com.amazonaws.{REGION}.s3")
    return str(endpoint["VpcEndpoint"]["VpcEndpointId"])


def _flow_log(c: Clients) -> str:
    flow_logs = c("ec2").create_flow_logs(
        ResourceIds=[_vpc(c)],
        ResourceType="VPC",
        TrafficType="ALL",
        LogDestinationType="cloud-watch-logs",
        LogGroupName=_log_group(c),
        DeliverLogsPermissionArn="arn:aws:iam::123456789012:role/flow-logs",
    )
    return str(flow_logs["FlowLogIds"][0])


def _rule_permissions(cidr: str) -> list[dict[str, Any]]:
    return [{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": cidr}]}]


def _ingress(c: Clients) -> str:
    rules = c("ec2").authorize_security_group_ingress(
        GroupId=_security_group(c), IpPermissions=_rule_permissions("10.0.0.0/16")
    )
    return str(rules["SecurityGroupRules"][0]["SecurityGroupRuleId"])


def _egress(c: Clients) -> str:
    rules = c("ec2").authorize_security_group_egress(
        GroupId=_security_group(c), IpPermissions=_rule_permissions("10.9.0.0/16")
    )
    return str(rules["SecurityGroupRules"][0]["SecurityGroupRuleId"])


def _database(c: Clients) -> str:
    c("glue").create_database(DatabaseInput={"Name": "lake_raw"})
    return "lake_raw"


def _job(c: Clients) -> str:
    c("glue").create_job(Name="ingest", Role="lake-job", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"})
    return "ingest"


def _security_configuration(c: Clients) -> str:
    c("glue").create_security_configuration(
        Name="lake-kms", EncryptionConfiguration={"S3Encryption": [{"S3EncryptionMode": "SSE-KMS", "KmsKeyArn": "k"}]}
    )
    return "lake-kms"


def _secret(c: Clients) -> str:
    return str(c("secretsmanager").create_secret(Name="lake/global-config")["ARN"])


def _alarm(c: Clients) -> str:
    c("cloudwatch").put_metric_alarm(
        AlarmName="failed-executions",
        ComparisonOperator="GreaterThanOrEqualToThreshold",
        EvaluationPeriods=1,
        Threshold=1,
        Namespace="AWS/States",
        MetricName="ExecutionsFailed",
        Statistic="Sum",
        Period=300,
    )
    return "failed-executions"


def _events_rule(c: Clients) -> str:
    c("events").put_rule(Name="on-commit", EventPattern=json.dumps({"source": ["aws.codecommit"]}))
    return "on-commit"


def _table(c: Clients) -> str:
    c("dynamodb").create_table(
        TableName="job-bookmarks",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return "job-bookmarks"


def _state_machine(c: Clients) -> str:
    definition = json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}})
    arn = "arn:aws:iam::123456789012:role/states"
    return str(
        c("stepfunctions").create_state_machine(name="nightly", definition=definition, roleArn=arn)["stateMachineArn"]
    )


def _project(c: Clients) -> str:
    c("codebuild").create_project(
        name="synth",
        source={"type": "S3", "location": "artifacts/synth.zip"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER",
            "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL",
        },
        serviceRole="arn:aws:iam::123456789012:role/codebuild",
    )
    return "synth"


def _pipeline(c: Clients) -> str:
    role = c("iam").create_role(RoleName="pipeline", AssumeRolePolicyDocument=trust("codepipeline"))["Role"]["Arn"]
    action = {
        "name": "a",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"},
        "outputArtifacts": [{"name": "out"}],
    }
    build = {
        "name": "b",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": "synth"},
        "inputArtifacts": [{"name": "out"}],
    }
    c("codepipeline").create_pipeline(
        pipeline={
            "name": "lake-dev",
            "roleArn": role,
            "artifactStore": {"type": "S3", "location": "artifacts"},
            "stages": [{"name": "Source", "actions": [action]}, {"name": "Build", "actions": [build]}],
        }
    )
    return "lake-dev"


# type → (create it, returning the physical id CloudFormation gives it; an id of that type nothing answers to)
EXISTING: dict[str, tuple[Callable[[Clients], str], str]] = {
    "AWS::S3::Bucket": (_bucket, "lake-absent"),
    "AWS::S3::BucketPolicy": (_bucket_policy, "lake-absent"),
    "AWS::KMS::Key": (_key, "0b3c4a5e-1111-2222-3333-444455556666"),
    "AWS::KMS::Alias": (_alias, "alias/absent"),
    "AWS::SSM::Parameter": (_parameter, "/lake/dev/absent"),
    "AWS::IAM::Role": (_role, "absent-role"),
    "AWS::Lambda::Function": (_function, "absent-function"),
    "AWS::Logs::LogGroup": (_log_group, "/lake"),  # a prefix of a group that exists is not that group
    "AWS::SNS::Topic": (_topic, f"arn:aws:sns:{REGION}:123456789012:absent"),
    "AWS::SNS::Subscription": (_subscription, f"arn:aws:sns:{REGION}:123456789012:alerts:0b3c4a5e-1111-2222-3333"),
    "AWS::EC2::VPC": (_vpc, "vpc-0123456789abcdef0"),
    "AWS::EC2::Subnet": (_subnet, "subnet-0123456789abcdef0"),
    "AWS::EC2::SecurityGroup": (_security_group, "sg-0123456789abcdef0"),
    "AWS::EC2::RouteTable": (_route_table, "rtb-0123456789abcdef0"),
    "AWS::EC2::VPCEndpoint": (_endpoint, "vpce-0123456789abcdef0"),
    "AWS::EC2::FlowLog": (_flow_log, "fl-0123456789abcdef0"),
    "AWS::EC2::SecurityGroupIngress": (_ingress, "sgr-0123456789abcdef0"),
    "AWS::EC2::SecurityGroupEgress": (_egress, "sgr-0fedcba9876543210"),
    "AWS::Glue::Database": (_database, "absent_db"),
    "AWS::Glue::Job": (_job, "absent-job"),
    "AWS::Glue::SecurityConfiguration": (_security_configuration, "absent-config"),
    "AWS::SecretsManager::Secret": (_secret, f"arn:aws:secretsmanager:{REGION}:123456789012:secret:absent-AbCdEf"),
    "AWS::CloudWatch::Alarm": (_alarm, "absent-alarm"),
    "AWS::Events::Rule": (_events_rule, "absent-rule"),
    "AWS::DynamoDB::Table": (_table, "absent-table"),
    "AWS::StepFunctions::StateMachine": (_state_machine, f"arn:aws:states:{REGION}:123456789012:stateMachine:absent"),
    "AWS::CodeBuild::Project": (_project, "absent-project"),
    "AWS::CodePipeline::Pipeline": (_pipeline, "absent-pipeline"),
}


def test_every_existence_check_is_tested_here() -> None:
    assert set(EXISTING) == set(CHECKS)


@pytest.mark.parametrize("resource_type", sorted(EXISTING))
def test_the_check_finds_what_exists_and_not_what_does_not(resource_type: str, aws: Clients) -> None:
    create, absent = EXISTING[resource_type]
    physical_id = create(aws)
    prober = Prober(aws)
    assert prober.probe(resource_type, physical_id) == Probe(True, CHECKS[resource_type].api)
    assert prober.probe(resource_type, absent) == Probe(False, CHECKS[resource_type].api)


def test_a_type_without_a_check_is_not_probed(aws: Clients) -> None:
    assert Prober(aws).probe("AWS::IAM::Policy", "lake-Poli-ABC") is None


def test_a_refusal_other_than_not_found_is_an_error() -> None:
    class Refusing:
        def head_bucket(self, **_: Any) -> None:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "HeadBucket")

    # access denied says nothing about whether the bucket exists: the rehearsal must stop, not guess
    with pytest.raises(ClientError, match="AccessDenied"):
        Prober(lambda service: Refusing()).probe("AWS::S3::Bucket", "lake-raw")


# the types moto's CloudFormation skips are the point here; its warning about each says nothing new
@pytest.mark.filterwarnings("ignore:Tried to parse:UserWarning")
def test_stack_report_checks_what_cloudformation_created(aws: Clients, tmp_path: Path) -> None:
    """In-process moto's CloudFormation (without the emulator's patches): a bucket removed after the
    deployment is reported, by name, as not found; the others are created and found."""
    template = {
        "Resources": {
            "Metadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:x"}},
            "Raw": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "lake-raw"}},
            "Removed": {"Type": "AWS::S3::Bucket", "Properties": {"BucketName": "lake-removed"}},
            # the policy as JSON text: in-process moto lacks the emulator's patch that stores an object as text
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": KEY_POLICY}},
            "RawName": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/lake/dev/raw", "Type": "String", "Value": {"Ref": "Raw"}},
            },
            "JobRole": {
                "Type": "AWS::IAM::Role",
                "Properties": {"RoleName": "lake-job", "AssumeRolePolicyDocument": json.loads(trust("glue"))},
            },
            "Notifications": {
                "Type": "AWS::CodeStarNotifications::NotificationRule",
                "Properties": {"Name": "n", "DetailType": "FULL", "EventTypeIds": [], "Resource": "r", "Targets": []},
            },
        }
    }
    template_file = tmp_path / "lake-dev-storage.template.json"
    template_file.write_text(json.dumps(template))
    cloudformation = aws("cloudformation")
    cloudformation.create_stack(StackName="lake-dev-storage", TemplateBody=json.dumps(template))
    aws("s3").delete_bucket(Bucket="lake-removed")

    stack = report.stack_report(template_file, "lake-dev-storage", "123456789012", cloudformation, aws)

    entries = {e.logical_id: e for e in stack.resources}
    assert stack.metadata == 1 and "Metadata" not in entries
    assert {k for k, e in entries.items() if e.category is Category.CREATED} == {"Raw", "Key", "RawName", "JobRole"}
    assert all(entries[k].checked_by for k in ("Raw", "Key", "RawName", "JobRole"))
    assert entries["Notifications"].category is Category.NOT_EMULATED
    assert entries["Removed"].category is Category.UNACCOUNTED
    assert entries["Removed"].reason == "lake-removed not found by s3 head_bucket"
