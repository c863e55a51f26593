"""The shipped CloudFormation execution policy covers what the infra and ETL stages really deploy, and no more.

Both apps' stages are synthesized once for the example config's dev environment; every resource type in
their templates must be listed in ACTIONS_BY_RESOURCE_TYPE, and every action listed there must be allowed
by a statement of the rendered policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest

import etl_jobs.spec
from datalake_config import LakeConfig, names_for
from datalake_infra.stage import InfraStage
from etl_jobs.stage import EtlStage
from lakeops.bootstrap import PROJECT_ROOT, execution_policy_parts

ENV = "dev"
PARTITION = "aws"

# What CloudFormation calls to create, update and delete each resource type. A new type in a stage must be
# added here AND to lakeops/policies/cfn-execution.json.
ACTIONS_BY_RESOURCE_TYPE: dict[str, tuple[str, ...]] = {
    "AWS::CloudWatch::Alarm": ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"),
    "AWS::DynamoDB::Table": (
        "dynamodb:CreateTable",
        "dynamodb:DescribeTable",
        "dynamodb:UpdateTable",
        "dynamodb:DescribeContinuousBackups",
        "dynamodb:UpdateContinuousBackups",
        "dynamodb:TagResource",
        "dynamodb:DeleteTable",
    ),
    "AWS::EC2::FlowLog": ("ec2:CreateFlowLogs", "ec2:DescribeFlowLogs", "ec2:DeleteFlowLogs", "iam:PassRole"),
    "AWS::EC2::RouteTable": ("ec2:CreateRouteTable", "ec2:DescribeRouteTables", "ec2:DeleteRouteTable"),
    "AWS::EC2::SecurityGroup": (
        "ec2:CreateSecurityGroup",
        "ec2:DescribeSecurityGroups",
        "ec2:RevokeSecurityGroupEgress",  # CloudFormation removes the default egress rule
        "ec2:AuthorizeSecurityGroupEgress",
        "ec2:DeleteSecurityGroup",
    ),
    "AWS::EC2::SecurityGroupEgress": ("ec2:AuthorizeSecurityGroupEgress", "ec2:RevokeSecurityGroupEgress"),
    "AWS::EC2::SecurityGroupIngress": ("ec2:AuthorizeSecurityGroupIngress", "ec2:RevokeSecurityGroupIngress"),
    "AWS::EC2::Subnet": ("ec2:CreateSubnet", "ec2:DescribeSubnets", "ec2:ModifySubnetAttribute", "ec2:DeleteSubnet"),
    "AWS::EC2::SubnetRouteTableAssociation": (
        "ec2:AssociateRouteTable",
        "ec2:DescribeRouteTables",
        "ec2:DisassociateRouteTable",
    ),
    "AWS::EC2::VPC": (
        "ec2:CreateVpc",
        "ec2:DescribeVpcs",
        "ec2:DescribeVpcAttribute",
        "ec2:ModifyVpcAttribute",
        "ec2:DeleteVpc",
    ),
    "AWS::EC2::VPCEndpoint": (
        "ec2:CreateVpcEndpoint",
        "ec2:DescribeVpcEndpoints",
        "ec2:ModifyVpcEndpoint",
        "ec2:DeleteVpcEndpoints",
    ),
    "AWS::Events::Rule": (
        "events:PutRule",
        "events:DescribeRule",
        "events:PutTargets",
        "events:RemoveTargets",
        "events:DeleteRule",
        "iam:PassRole",
    ),
    "AWS::Glue::Connection": (
        "glue:CreateConnection",
        "glue:GetConnection",
        "glue:UpdateConnection",
        "glue:DeleteConnection",
    ),
    "AWS::Glue::DataCatalogEncryptionSettings": (
        "glue:PutDataCatalogEncryptionSettings",
        "glue:GetDataCatalogEncryptionSettings",
    ),
    "AWS::Glue::Database": ("glue:CreateDatabase", "glue:GetDatabase", "glue:UpdateDatabase", "glue:DeleteDatabase"),
    "AWS::Glue::Job": ("glue:CreateJob", "glue:GetJob", "glue:UpdateJob", "glue:DeleteJob", "iam:PassRole"),
    "AWS::Glue::SecurityConfiguration": (
        "glue:CreateSecurityConfiguration",
        "glue:GetSecurityConfiguration",
        "glue:DeleteSecurityConfiguration",
    ),
    "AWS::Glue::Table": ("glue:CreateTable", "glue:GetTable", "glue:UpdateTable", "glue:DeleteTable"),
    "AWS::IAM::Policy": ("iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"),
    "AWS::IAM::Role": (
        "iam:CreateRole",
        "iam:GetRole",
        "iam:UpdateRole",
        "iam:UpdateAssumeRolePolicy",
        "iam:TagRole",
        "iam:UntagRole",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
        "iam:DeleteRole",
    ),
    "AWS::KMS::Key": (
        "kms:CreateKey",
        "kms:DescribeKey",
        "kms:PutKeyPolicy",
        "kms:EnableKeyRotation",
        "kms:GetKeyRotationStatus",
        "kms:TagResource",
        "kms:ScheduleKeyDeletion",
    ),
    "AWS::Lambda::Function": (
        "lambda:CreateFunction",
        "lambda:GetFunction",
        "lambda:UpdateFunctionCode",
        "lambda:UpdateFunctionConfiguration",
        "lambda:TagResource",
        "lambda:DeleteFunction",
        "iam:PassRole",
    ),
    "AWS::Logs::LogGroup": (
        "logs:CreateLogGroup",
        "logs:DescribeLogGroups",
        "logs:PutRetentionPolicy",
        "logs:AssociateKmsKey",
        "logs:TagResource",
        "logs:DeleteLogGroup",
    ),
    "AWS::S3::Bucket": (
        "s3:CreateBucket",
        "s3:PutEncryptionConfiguration",
        "s3:PutBucketVersioning",
        "s3:PutLifecycleConfiguration",
        "s3:PutBucketPublicAccessBlock",
        "s3:PutBucketOwnershipControls",
        "s3:PutBucketLogging",
        "s3:PutBucketTagging",
        "s3:DeleteBucket",
    ),
    "AWS::S3::BucketPolicy": ("s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"),
    "AWS::SNS::Subscription": ("sns:Subscribe", "sns:GetSubscriptionAttributes", "sns:Unsubscribe"),
    "AWS::SNS::Topic": ("sns:CreateTopic", "sns:GetTopicAttributes", "sns:SetTopicAttributes", "sns:DeleteTopic"),
    "AWS::SNS::TopicPolicy": ("sns:SetTopicAttributes",),
    "AWS::SSM::Parameter": (
        "ssm:PutParameter",
        "ssm:GetParameters",
        "ssm:AddTagsToResource",
        "ssm:DeleteParameter",
    ),
    "AWS::StepFunctions::StateMachine": (
        "states:CreateStateMachine",
        "states:DescribeStateMachine",
        "states:UpdateStateMachine",
        "states:TagResource",
        "states:DeleteStateMachine",
        "iam:PassRole",
    ),
}
# CloudFormation sends a custom resource's events to its handler function.
CUSTOM_RESOURCE_ACTIONS = ("lambda:InvokeFunction",)
# The EC2 resource types the policy lets CloudFormation create only with the lake's tag in the request.
TAGGED_ON_CREATE = (
    "AWS::EC2::VPC",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::SecurityGroup",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::FlowLog",
)


@dataclass(frozen=True)
class StackTemplate:
    name: str
    template: dict[str, Any]
    stack_tags: dict[str, str]  # CloudFormation propagates these to every resource that takes tags

    def resources(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.template.get("Resources", {}).values() if not types or r["Type"] in types]


def _app_context(folder: str) -> dict[str, Any]:
    app_dir = PROJECT_ROOT / folder
    context: dict[str, Any] = json.loads((app_dir / "cdk.json").read_text())["context"]
    recorded = app_dir / "cdk.context.json"
    return {**context, **(json.loads(recorded.read_text()) if recorded.exists() else {})}


@pytest.fixture(scope="module")
def stacks(example_config: LakeConfig, tmp_path_factory: pytest.TempPathFactory) -> list[StackTemplate]:
    # one app per repository, each with its own feature flags, as `cdk synth` in its folder would run it
    infra_app = cdk.App(context=_app_context("infra-repo"), outdir=str(tmp_path_factory.mktemp("infra")))
    etl_app = cdk.App(context=_app_context("etl-jobs-repo"), outdir=str(tmp_path_factory.mktemp("etl")))
    stages: list[cdk.Stage] = [
        InfraStage(infra_app, "Infra", config=example_config, env_name=ENV),
        EtlStage(etl_app, "Etl", config=example_config, env_name=ENV, jobs_dir=etl_jobs.spec.JOBS_DIR),
    ]
    infra_app.synth()
    etl_app.synth()
    return [
        StackTemplate(artifact.stack_name, artifact.template, dict(artifact.tags))
        for stage in stages
        for artifact in stage.synth().stacks
    ]


@pytest.fixture(scope="module")
def policy(example_config: LakeConfig) -> list[dict[str, Any]]:
    account = example_config.env(ENV).account
    region = example_config.env(ENV).region
    return [s for part in execution_policy_parts(example_config, account, region) for s in part.document["Statement"]]


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` any one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def _allowing(policy: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    # action names are case-insensitive in IAM
    return [s for s in policy if any(_matches(a, action, ignore_case=True) for a in _listed(s["Action"]))]


def _resolve(value: Any, example_config: LakeConfig) -> str:
    """The few intrinsic functions the stages use in ARNs and names, resolved for the dev account."""
    pseudo = {
        "AWS::Partition": PARTITION,
        "AWS::AccountId": example_config.env(ENV).account,
        "AWS::Region": example_config.env(ENV).region,
    }
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value and isinstance(value["Fn::Sub"], str):
        return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return str(separator).join(_resolve(p, example_config) for p in parts)
    if isinstance(value, dict) and value.get("Ref") in pseudo:
        return pseudo[value["Ref"]]
    raise AssertionError(f"cannot resolve {value!r}: extend _resolve")


def test_the_stages_were_synthesized(stacks: list[StackTemplate], example_config: LakeConfig) -> None:
    names = {s.name for s in stacks}
    env_names = names_for(example_config, ENV)
    for component in ("storage", "network", "catalog", "verify"):
        assert env_names.stack_name("infra", component) in names
    assert env_names.stack_name("etl", "shared") in names
    assert any(s.resources("AWS::Glue::Job") for s in stacks)


def test_every_resource_type_is_listed_and_every_action_it_needs_is_allowed(
    stacks: list[StackTemplate], policy: list[dict[str, Any]]
) -> None:
    types = {r["Type"] for s in stacks for r in s.resources()}
    unknown = sorted(t for t in types if t not in ACTIONS_BY_RESOURCE_TYPE and not t.startswith("Custom::"))
    assert not unknown, (
        f"resource types {unknown} are new to the stages: add the actions CloudFormation needs for them to "
        "ACTIONS_BY_RESOURCE_TYPE in this test AND to lakeops/policies/cfn-execution.json"
    )
    missing = {
        f"{t}: {action}"
        for t in types
        for action in (CUSTOM_RESOURCE_ACTIONS if t.startswith("Custom::") else ACTIONS_BY_RESOURCE_TYPE[t])
        if not _allowing(policy, action)
    }
    assert not missing, f"the execution policy does not allow: {sorted(missing)}"


def test_roles_get_only_the_managed_policies_the_attach_condition_names(
    stacks: list[StackTemplate], policy: list[dict[str, Any]], example_config: LakeConfig
) -> None:
    attached = {
        _resolve(arn, example_config)
        for s in stacks
        for role in s.resources("AWS::IAM::Role")
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    }
    assert attached, "the stages attach AWSLambdaBasicExecutionRole to their custom resource handlers"
    (statement,) = _allowing(policy, "iam:AttachRolePolicy")
    assert _allowing(policy, "iam:DetachRolePolicy") == [statement]
    allowed = set(_listed(statement["Condition"]["ArnEquals"]["iam:PolicyARN"]))
    assert attached <= allowed, f"add {sorted(attached - allowed)} to the iam:PolicyARN condition"
    assert all(arn.startswith(f"arn:{PARTITION}:iam::aws:policy/") for arn in allowed)  # never an own policy


def test_roles_are_passed_only_to_the_services_that_assume_them(
    stacks: list[StackTemplate], policy: list[dict[str, Any]]
) -> None:
    services = {
        service
        for s in stacks
        for role in s.resources("AWS::IAM::Role")
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in _listed(statement["Principal"].get("Service", []))
    }
    (statement,) = _allowing(policy, "iam:PassRole")
    passed_to = set(_listed(statement["Condition"]["StringEquals"]["iam:PassedToService"]))
    assert services == passed_to, "iam:PassedToService must name exactly the services the stages' roles trust"


def test_network_resources_carry_the_tag_the_create_conditions_require(
    stacks: list[StackTemplate], policy: list[dict[str, Any]], example_config: LakeConfig
) -> None:
    network = [(s, r) for s in stacks for r in s.resources(*TAGGED_ON_CREATE)]
    assert {r["Type"] for _, r in network} == set(TAGGED_ON_CREATE)
    for stack, resource in network:
        own = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
        assert {**stack.stack_tags, **own}.get("lake:prefix") == example_config.prefix, (stack.name, resource)
    creates = {"ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateRouteTable", "ec2:CreateSecurityGroup"}
    creates |= {"ec2:CreateVpcEndpoint", "ec2:CreateFlowLogs"}
    for action in sorted(creates):
        new_resource = [s for s in _allowing(policy, action) if "aws:RequestTag/lake:prefix" in json.dumps(s)]
        assert new_resource, f"{action} is allowed without requiring the lake:prefix tag in the request"
    for statement in (s for s in policy if any(a.startswith("ec2:") for a in _listed(s["Action"]))):
        conditions = statement.get("Condition", {}).get("StringEquals", {})
        if statement["Resource"] == "*":
            assert all(a.startswith("ec2:Describe") for a in _listed(statement["Action"])), statement["Sid"]
        elif not statement["Sid"].startswith("RulesOf"):
            assert {"aws:RequestTag/lake:prefix", "aws:ResourceTag/lake:prefix"} & set(conditions), statement["Sid"]
            assert example_config.prefix in conditions.values(), statement["Sid"]
    (tagging,) = [s for s in _allowing(policy, "ec2:CreateTags") if "ec2:CreateAction" in json.dumps(s)]
    assert set(tagging["Condition"]["StringEquals"]["ec2:CreateAction"]) == {a.split(":")[1] for a in creates}


def test_glue_resources_are_named_inside_the_policy_resources(
    stacks: list[StackTemplate], policy: list[dict[str, Any]], example_config: LakeConfig
) -> None:
    region, account = example_config.env(ENV).region, example_config.env(ENV).account
    arn = f"arn:{PARTITION}:glue:{region}:{account}"
    needed: dict[str, list[str]] = {}
    for s in stacks:
        for r in s.resources():
            props = r.get("Properties", {})
            if r["Type"] == "AWS::Glue::Database":
                database = props["DatabaseInput"]["Name"]
                needed[f"{arn}:database/{database}"] = ["glue:CreateDatabase", "glue:DeleteDatabase"]
            elif r["Type"] == "AWS::Glue::Table":
                database, table = props["DatabaseName"], props["TableInput"]["Name"]
                needed[f"{arn}:table/{database}/{table}"] = ["glue:CreateTable", "glue:DeleteTable"]
                needed[f"{arn}:database/{database}"] = ["glue:CreateTable"]
            elif r["Type"] == "AWS::Glue::Job":
                needed[f"{arn}:job/{props['Name']}"] = ["glue:CreateJob", "glue:DeleteJob"]
            elif r["Type"] == "AWS::Glue::Connection":
                needed[f"{arn}:connection/{props['ConnectionInput']['Name']}"] = ["glue:CreateConnection"]
    assert any("/" in key.rsplit(":table/", 1)[-1] for key in needed), "expected Glue tables in the ETL stage"
    needed[f"{arn}:catalog"] = ["glue:CreateDatabase", "glue:CreateTable", "glue:PutDataCatalogEncryptionSettings"]
    for resource, actions in needed.items():
        for action in actions:
            assert any(
                any(_matches(pattern, resource) for pattern in _listed(s["Resource"]))
                for s in _allowing(policy, action)
            ), f"{action} on {resource}"
    # the names are the lake's, not any Glue resource of the account
    assert not _matches_any(policy, "glue:CreateTable", f"{arn}:table/other_lake_dev_raw/t")
    assert not _matches_any(policy, "glue:CreateJob", f"{arn}:job/other-lake-dev-job")


def test_lake_objects_are_out_of_reach(policy: list[dict[str, Any]]) -> None:
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        for statement in _allowing(policy, action):
            assert all("cdk-" in r and "-assets-" in r for r in _listed(statement["Resource"])), statement["Sid"]


def _matches_any(policy: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(any(_matches(p, resource) for p in _listed(s["Resource"])) for s in _allowing(policy, action))
