"""The rehearsal emulator: moto server over TLS with the patches that keep our templates honest."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lake_pipelines import buildspec
from lakeops.emulator.process import Emulator

DEPLOYMENT, TARGET, REGION = "111111111111", "222222222222", "eu-west-1"
SOURCE_ACTION_TYPE = {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("emulator"), default_account=DEPLOYMENT, region=REGION) as emu:
        yield emu


def client(emu: Emulator, service: str, session: Any = None) -> Any:
    env = emu.client_env()
    session = session or boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]
    )
    return session.client(service, region_name=REGION, endpoint_url=emu.endpoint_url, verify=str(emu.cert))


def tls_only_policy(bucket: str, extra: list[dict[str, Any]] | None = None, minimum_tls: float = 1.2) -> str:
    """What CDK writes for `enforce_ssl=True, minimum_tls_version=1.2`."""
    resources = [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    deny_plain_http = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": resources,
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    deny_old_tls = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:*",
        "Resource": resources,
        "Condition": {"NumericLessThan": {"s3:TlsVersion": minimum_tls}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [deny_plain_http, deny_old_tls, *(extra or [])]})


def test_operator_credentials_act_in_the_deployment_account(emulator: Emulator) -> None:
    assert client(emulator, "sts").get_caller_identity()["Account"] == DEPLOYMENT


def test_assumed_role_acts_in_the_target_account_only(emulator: Emulator) -> None:
    creds = client(emulator, "sts").assume_role(
        RoleArn=f"arn:aws:iam::{TARGET}:role/OrganizationAccountAccessRole", RoleSessionName="test"
    )["Credentials"]
    target = boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )
    assert client(emulator, "sts", target).get_caller_identity()["Account"] == TARGET
    client(emulator, "ssm", target).put_parameter(Name="/only/in/target", Value="x", Type="String")
    with pytest.raises(ClientError):
        client(emulator, "ssm").get_parameter(Name="/only/in/target")


def test_tls_only_bucket_accepts_uploads_over_tls(emulator: Emulator) -> None:
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="tls-only-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket="tls-only-bucket", Policy=tls_only_policy("tls-only-bucket"))
    s3.put_object(Bucket="tls-only-bucket", Key="k", Body=b"x")
    assert s3.get_object(Bucket="tls-only-bucket", Key="k")["Body"].read() == b"x"


def test_a_policy_demanding_more_than_the_emulator_offers_denies(emulator: Emulator) -> None:
    s3 = client(emulator, "s3")
    s3.create_bucket(Bucket="tls13-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket="tls13-bucket", Policy=tls_only_policy("tls13-bucket", minimum_tls=1.3))
    with pytest.raises(ClientError):
        s3.put_object(Bucket="tls13-bucket", Key="k", Body=b"x")


def test_unconditional_deny_still_denies(emulator: Emulator) -> None:
    s3 = client(emulator, "s3")
    deny_all_puts = {
        "Effect": "Deny",
        "Principal": {"AWS": "*"},
        "Action": "s3:PutObject",
        "Resource": "arn:aws:s3:::deny-bucket/*",
    }
    s3.create_bucket(Bucket="deny-bucket", CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_policy(Bucket="deny-bucket", Policy=tls_only_policy("deny-bucket", [deny_all_puts]))
    with pytest.raises(ClientError):
        s3.put_object(Bucket="deny-bucket", Key="k", Body=b"x")


def test_cloudformation_creates_the_types_moto_lacks(emulator: Emulator) -> None:
    template = {
        "Resources": {
            "Bucket": {"Type": "AWS::S3::Bucket"},
            "Policy": {
                "Type": "AWS::S3::BucketPolicy",
                "Properties": {
                    "Bucket": {"Ref": "Bucket"},
                    "PolicyDocument": {
                        "Version": "2012-10-17",
                        "Statement": [
                            {
                                "Effect": "Deny",
                                "Principal": {"AWS": "*"},
                                "Action": "s3:*",
                                "Resource": "*",
                                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                            }
                        ],
                    },
                },
            },
            "Db": {
                "Type": "AWS::Glue::Database",
                "Properties": {"CatalogId": DEPLOYMENT, "DatabaseInput": {"Name": "emulated_db"}},
            },
            "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "lake/global-config"}},
            "DbName": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": "/emulated/db-name", "Type": "String", "Value": {"Ref": "Db"}},
            },
            "Alarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "failed-executions",
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                    "EvaluationPeriods": 1,
                    "Threshold": 1,
                    "Namespace": "AWS/States",
                    "MetricName": "ExecutionsFailed",
                    "Statistic": "Sum",
                    "Period": 300,
                    "Dimensions": [{"Name": "StateMachineArn", "Value": "arn:aws:states:eu-west-1:1:stateMachine:x"}],
                },
            },
            "Handler": {
                "Type": "Custom::NoHandlerHere",
                "Properties": {"ServiceToken": f"arn:aws:lambda:{REGION}:{DEPLOYMENT}:function:absent"},
            },
        }
    }
    cfn = client(emulator, "cloudformation")
    cfn.create_stack(StackName="gaps", TemplateBody=json.dumps(template))
    status = _wait(cfn, "gaps")
    assert status == "CREATE_COMPLETE"
    assert client(emulator, "glue").get_database(Name="emulated_db")["Database"]["Name"] == "emulated_db"
    # a Ref to an emulated type resolves to the real name, not moto's "None"
    assert client(emulator, "ssm").get_parameter(Name="/emulated/db-name")["Parameter"]["Value"] == "emulated_db"
    assert client(emulator, "secretsmanager").describe_secret(SecretId="lake/global-config")["Name"]
    alarms = client(emulator, "cloudwatch").describe_alarms(AlarmNames=["failed-executions"])["MetricAlarms"]
    assert alarms[0]["Dimensions"][0]["Name"] == "StateMachineArn"
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName="gaps")["StackResources"]}
    bucket = resources["Bucket"]["PhysicalResourceId"]
    assert "SecureTransport" in client(emulator, "s3").get_bucket_policy(Bucket=bucket)["Policy"]


def test_process_is_gone_after_the_context_exits(tmp_path: Path) -> None:
    with Emulator(tmp_path, default_account=DEPLOYMENT, region=REGION) as emu:
        pid = emu.pid
        assert pid is not None and os.path.exists(f"/proc/{pid}")
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in Path(f"/proc/{pid}/status").read_text().lower()


def _wait(cfn: Any, stack: str) -> str:
    for _ in range(50):
        status: str = cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            return status
        time.sleep(0.2)
    return status


def test_termination_protection_can_be_switched_on(emulator: Emulator) -> None:
    cfn = client(emulator, "cloudformation")
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    cfn.create_stack(StackName="protected", TemplateBody=json.dumps(template))
    cfn.update_termination_protection(StackName="protected", EnableTerminationProtection=True)
    assert cfn.describe_stacks(StackName="protected")["Stacks"][0]["EnableTerminationProtection"] is True


def test_keys_from_cloudformation_answer_describe_key(emulator: Emulator) -> None:
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{DEPLOYMENT}:root"},
                "Action": "kms:DescribeKey",
                "Resource": "*",
            }
        ],
    }
    tags = [{"Key": "lake:environment", "Value": "dev"}]
    template = {
        "Resources": {
            "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": policy, "Tags": tags}},
            # CloudFormation takes SSM parameter tags as a map
            "KeyArn": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {
                    "Name": "/keys/arn",
                    "Type": "String",
                    "Value": {"Fn::GetAtt": ["Key", "Arn"]},
                    "Tags": {"lake:environment": "dev"},
                },
            },
        }
    }
    cfn = client(emulator, "cloudformation")
    cfn.create_stack(StackName="keys", TemplateBody=json.dumps(template))
    assert _wait(cfn, "keys") == "CREATE_COMPLETE"
    key_arn = client(emulator, "ssm").get_parameter(Name="/keys/arn")["Parameter"]["Value"]
    kms = client(emulator, "kms")
    assert kms.describe_key(KeyId=key_arn)["KeyMetadata"]["Enabled"] is True
    assert kms.list_resource_tags(KeyId=key_arn)["Tags"] == [{"TagKey": "lake:environment", "TagValue": "dev"}]


def test_standalone_security_group_egress_is_really_authorized(emulator: Emulator) -> None:
    template = {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.99.0.0/16"}},
            "Group": {
                "Type": "AWS::EC2::SecurityGroup",
                "Properties": {"GroupDescription": "glue", "VpcId": {"Ref": "Vpc"}},
            },
            "SelfEgress": {
                "Type": "AWS::EC2::SecurityGroupEgress",
                "Properties": {
                    "GroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
                    "DestinationSecurityGroupId": {"Fn::GetAtt": ["Group", "GroupId"]},
                    "IpProtocol": "tcp",
                    "FromPort": 0,
                    "ToPort": 65535,
                },
            },
        }
    }
    cfn = client(emulator, "cloudformation")
    cfn.create_stack(StackName="egress", TemplateBody=json.dumps(template))
    assert _wait(cfn, "egress") == "CREATE_COMPLETE"
    resources = {r["LogicalResourceId"]: r for r in cfn.describe_stack_resources(StackName="egress")["StackResources"]}
    group_id = resources["Group"]["PhysicalResourceId"]
    group = client(emulator, "ec2").describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
    pairs = [pair["GroupId"] for rule in group["IpPermissionsEgress"] for pair in rule.get("UserIdGroupPairs", [])]
    assert group_id in pairs


def test_the_promotion_guard_finds_only_commits_a_pipeline_ran(emulator: Emulator) -> None:
    """The guard's own shell line, run against the emulator: a commit the previous pipeline ran to success
    passes, any other is refused (patch 7 keeps the execution's source revisions)."""
    pipelines = client(emulator, "codepipeline")
    name = "acme-lake-infra-dev-pipeline"
    stage = {"name": "S", "actions": [{"name": "Src", "actionTypeId": SOURCE_ACTION_TYPE, "configuration": {}}]}
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    role = client(emulator, "iam").create_role(
        RoleName="guard-test-pipeline", AssumeRolePolicyDocument=json.dumps(trust)
    )
    role = role["Role"]["Arn"]
    artifacts = {"type": "S3", "location": "artifacts"}
    pipelines.create_pipeline(
        pipeline={"name": name, "roleArn": role, "artifactStore": artifacts, "stages": [stage, {**stage, "name": "T"}]}
    )
    revision = {"actionName": "Src", "revisionType": "COMMIT_ID", "revisionValue": "a" * 40}
    pipelines.start_pipeline_execution(name=name, sourceRevisions=[revision])
    (summary,) = pipelines.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
    assert summary["sourceRevisions"] == [{"actionName": "Src", "revisionId": "a" * 40}]

    (guard,) = buildspec.promotion_guard_commands(name, "dev", "test", REGION)
    env = {**os.environ, **emulator.client_env(), "AWS_ENDPOINT_URL": emulator.endpoint_url}
    env["AWS_CA_BUNDLE"] = str(emulator.cert)
    passed = _run_shell(guard, {**env, "LAKE_SOURCE_COMMIT": "a" * 40})
    assert passed.returncode == 0, passed.stdout + passed.stderr
    refused = _run_shell(guard, {**env, "LAKE_SOURCE_COMMIT": "b" * 40})
    assert refused.returncode == 1 and "REFUSED" in refused.stdout and "lakeops promote dev test" in refused.stdout


def _run_shell(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # a buildspec command is a shell line: CodeBuild runs it in a shell, so the test does too
    return subprocess.run(line, shell=True, env=env, capture_output=True, text=True, check=False)  # noqa: S602


def test_the_contract_check_names_each_missing_parameter(emulator: Emulator) -> None:
    """The ContractCheck step's shell line, run against the emulator as the target's lookup role: it reads in
    batches of ten (the GetParameters limit), refuses naming every missing parameter, passes when all exist."""
    lookup = f"arn:aws:iam::{TARGET}:role/cdk-hnb659fds-lookup-role-{TARGET}-{REGION}"
    credentials = client(emulator, "sts").assume_role(RoleArn=lookup, RoleSessionName="setup")["Credentials"]
    target = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    present = [f"/acme-lake/dev/contract/present/{n}" for n in range(11)]
    for name in present:
        client(emulator, "ssm", target).put_parameter(Name=name, Value="x", Type="String")
    env = {**os.environ, **emulator.client_env(), "AWS_ENDPOINT_URL": emulator.endpoint_url}
    env["AWS_CA_BUNDLE"] = str(emulator.cert)
    missing = ["/acme-lake/dev/contract/missing/a", "/acme-lake/dev/contract/missing/b"]

    (check,) = buildspec.contract_check_commands(lookup, REGION, [*present, *missing], "the infra pipeline writes them")
    refused = _run_shell(check, env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "REFUSED" in refused.stdout and all(name in refused.stdout for name in missing)
    assert not any(name in refused.stdout for name in present)

    (check,) = buildspec.contract_check_commands(lookup, REGION, present, "the infra pipeline writes them")
    passed = _run_shell(check, env)
    assert passed.returncode == 0 and "all 11 SSM parameter(s)" in passed.stdout, passed.stdout + passed.stderr
