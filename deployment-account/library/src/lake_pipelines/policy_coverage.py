"""Does the shipped execution policy allow what a stage's templates need, and no more than the lake's own?

Each app's tests call `coverage_problems` on its own synthesized stage: every resource type must be known
here, every action CloudFormation needs for it allowed by the rendered policy, roles passed and managed
policies attached only as the policy's conditions permit, network resources tagged as the create
conditions require, and Glue resources named inside the policy's resources.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk

from datalake_config import LakeConfig
from lake_pipelines.execution_policy import execution_policy_parts, partition_of

# What CloudFormation calls to create, update and delete each resource type. A new type in a stage must be
# added here AND to lake_pipelines/policies/cfn-execution.json.
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


def stage_templates(stage: cdk.Stage) -> list[StackTemplate]:
    """Every stack of a synthesized stage, with the tags CloudFormation will propagate."""
    return [StackTemplate(a.stack_name, a.template, dict(a.tags)) for a in stage.synth().stacks]


def policy_statements(config: LakeConfig, env_name: str) -> list[dict[str, Any]]:
    target = config.env(env_name)
    parts = execution_policy_parts(config, target.account, target.region)
    return [s for part in parts for s in part.document["Statement"]]


def coverage_problems(stacks: list[StackTemplate], config: LakeConfig, env_name: str) -> list[str]:
    """Every way the stage's templates and the execution policy disagree; [] when the policy covers them."""
    policy = policy_statements(config, env_name)
    target = config.env(env_name)
    context = _Target(config.prefix, target.account, target.region, partition_of(target.region))
    return [
        *_unlisted_types(stacks),
        *_missing_actions(stacks, policy),
        *_unattachable_policies(stacks, policy, context),
        *_passed_role_mismatch(stacks, policy),
        *_untagged_network(stacks, policy, context),
        *_glue_names_outside(stacks, policy, context),
    ]


@dataclass(frozen=True)
class _Target:
    prefix: str
    account: str
    region: str
    partition: str

    def resolve(self, value: Any) -> str:
        """The few intrinsic functions the stages use in ARNs and names, resolved for the target."""
        pseudo = {"AWS::Partition": self.partition, "AWS::AccountId": self.account, "AWS::Region": self.region}
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and isinstance(value.get("Fn::Sub"), str):
            return re.sub(r"\$\{([^}]+)\}", lambda m: pseudo[m.group(1)], value["Fn::Sub"])
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self.resolve(p) for p in parts)
        if isinstance(value, dict) and value.get("Ref") in pseudo:
            return pseudo[value["Ref"]]
        raise ValueError(f"cannot resolve {value!r}: extend policy_coverage._Target.resolve")


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def matches(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM wildcard matching: `*` any run of characters, `?` any one character."""
    regex = re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".")
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def allowing(policy: list[dict[str, Any]], action: str) -> list[dict[str, Any]]:
    """The statements whose Action matches `action` (action names are case-insensitive in IAM)."""
    return [s for s in policy if any(matches(a, action, ignore_case=True) for a in _listed(s["Action"]))]


def allows_on(policy: list[dict[str, Any]], action: str, resource: str) -> bool:
    return any(any(matches(p, resource) for p in _listed(s["Resource"])) for s in allowing(policy, action))


def _types(stacks: list[StackTemplate]) -> set[str]:
    return {r["Type"] for s in stacks for r in s.resources()}


def _unlisted_types(stacks: list[StackTemplate]) -> list[str]:
    return [
        f"resource type {t} is new to the stages: add the actions CloudFormation needs for it to "
        "lake_pipelines.policy_coverage.ACTIONS_BY_RESOURCE_TYPE and to policies/cfn-execution.json"
        for t in sorted(_types(stacks))
        if t not in ACTIONS_BY_RESOURCE_TYPE and not t.startswith("Custom::")
    ]


def _missing_actions(stacks: list[StackTemplate], policy: list[dict[str, Any]]) -> list[str]:
    return sorted(
        {
            f"the execution policy does not allow {action} (needed for {t})"
            for t in _types(stacks)
            for action in (CUSTOM_RESOURCE_ACTIONS if t.startswith("Custom::") else ACTIONS_BY_RESOURCE_TYPE.get(t, ()))
            if not allowing(policy, action)
        }
    )


def _unattachable_policies(stacks: list[StackTemplate], policy: list[dict[str, Any]], target: _Target) -> list[str]:
    attached = {
        target.resolve(arn)
        for s in stacks
        for role in s.resources("AWS::IAM::Role")
        for arn in role["Properties"].get("ManagedPolicyArns", [])
    }
    if not attached:
        return []
    statements = allowing(policy, "iam:AttachRolePolicy")
    if len(statements) != 1 or allowing(policy, "iam:DetachRolePolicy") != statements:
        return ["one statement must allow both iam:AttachRolePolicy and iam:DetachRolePolicy"]
    allowed = set(_listed(statements[0]["Condition"]["ArnEquals"]["iam:PolicyARN"]))
    problems = [
        f"add {arn} to the iam:PolicyARN condition of the attach statement" for arn in sorted(attached - allowed)
    ]
    problems += [
        f"the attach statement names {arn}, which is not an AWS managed policy"
        for arn in sorted(allowed)
        if not arn.startswith(f"arn:{target.partition}:iam::aws:policy/")
    ]
    return problems


def _passed_role_mismatch(stacks: list[StackTemplate], policy: list[dict[str, Any]]) -> list[str]:
    services = {
        service
        for s in stacks
        for role in s.resources("AWS::IAM::Role")
        for statement in role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for service in _listed(statement["Principal"].get("Service", []))
    }
    statements = allowing(policy, "iam:PassRole")
    if len(statements) != 1:
        return ["exactly one statement must allow iam:PassRole"]
    passed_to = set(_listed(statements[0]["Condition"]["StringEquals"]["iam:PassedToService"]))
    return [
        f"iam:PassRole cannot pass a role to {service}, which a stage's role trusts"
        for service in sorted(services - passed_to)
    ]


def _untagged_network(stacks: list[StackTemplate], policy: list[dict[str, Any]], target: _Target) -> list[str]:
    problems = []
    for stack in stacks:
        for resource in stack.resources(*TAGGED_ON_CREATE):
            own = {t["Key"]: t["Value"] for t in resource["Properties"].get("Tags", [])}
            if {**stack.stack_tags, **own}.get("lake:prefix") != target.prefix:
                problems.append(
                    f"{stack.name}: a {resource['Type']} lacks the tag lake:prefix={target.prefix} "
                    "that the policy requires on create"
                )
    for statement in (s for s in policy if any(a.startswith("ec2:") for a in _listed(s["Action"]))):
        conditions = statement.get("Condition", {}).get("StringEquals", {})
        sid = statement.get("Sid", "?")
        if statement["Resource"] == "*":
            if not all(a.startswith("ec2:Describe") for a in _listed(statement["Action"])):
                problems.append(f"{sid}: only ec2:Describe* actions may apply to every resource")
        elif not sid.startswith("RulesOf") and (
            not {"aws:RequestTag/lake:prefix", "aws:ResourceTag/lake:prefix"} & set(conditions)
            or target.prefix not in conditions.values()
        ):
            problems.append(f"{sid}: EC2 changes must be conditioned on the lake:prefix tag")
    return problems


def _glue_names_outside(stacks: list[StackTemplate], policy: list[dict[str, Any]], target: _Target) -> list[str]:
    arn = f"arn:{target.partition}:glue:{target.region}:{target.account}"
    needed: dict[str, list[str]] = {}
    for s in stacks:
        for r in s.resources():
            props = r.get("Properties", {})
            if r["Type"] == "AWS::Glue::Database":
                needed[f"{arn}:database/{props['DatabaseInput']['Name']}"] = [
                    "glue:CreateDatabase",
                    "glue:DeleteDatabase",
                ]
            elif r["Type"] == "AWS::Glue::Table":
                database, table = props["DatabaseName"], props["TableInput"]["Name"]
                needed[f"{arn}:table/{database}/{table}"] = ["glue:CreateTable", "glue:DeleteTable"]
                needed[f"{arn}:database/{database}"] = ["glue:CreateTable"]
            elif r["Type"] == "AWS::Glue::Job":
                needed[f"{arn}:job/{props['Name']}"] = ["glue:CreateJob", "glue:DeleteJob"]
            elif r["Type"] == "AWS::Glue::Connection":
                needed[f"{arn}:connection/{props['ConnectionInput']['Name']}"] = ["glue:CreateConnection"]
    if needed:
        needed[f"{arn}:catalog"] = ["glue:CreateDatabase", "glue:CreateTable", "glue:PutDataCatalogEncryptionSettings"]
    return [
        f"the execution policy does not allow {action} on {resource}"
        for resource, actions in needed.items()
        for action in actions
        if not allows_on(policy, action, resource)
    ]
