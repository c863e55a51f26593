"""The checks the apps run on their own stages (`lake_pipelines.policy_coverage`, `lake_pipelines.policy_lint`),
proven on small templates here so that the deployment-account repository never synthesizes another
repository's app. Each issue-10 finding has a test that mutates a copy of the rendered policy and shows the
check naming it; the shipped file is never edited."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest

import lake_pipelines.policy_coverage as coverage
from datalake_config import LakeConfig
from lake_pipelines import aws_data
from lake_pipelines.iam_eval import Request, evaluate
from lake_pipelines.policy_coverage import StackTemplate, coverage_problems, coverage_report, exclusions
from lake_pipelines.policy_lint import execution_policy_lint_problems, lint_problems, lint_problems_of

ENV = "dev"
TAGS = {"lake:prefix": "acme-lake", "lake:environment": "dev"}
DEV_ACCOUNT = "222222222222"
# What lake_pipelines.role_boundary puts on every role of a stage.
BOUNDARY = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/acme-lake-stage-role-boundary"}
Policy = list[dict[str, Any]]


@pytest.fixture(scope="module")
def policy(example_config: LakeConfig) -> Policy:
    return coverage.policy_statements(example_config, ENV)


@pytest.fixture
def with_policy(monkeypatch: pytest.MonkeyPatch, policy: Policy) -> Callable[[Callable[[Policy], None]], Policy]:
    """Mutate a copy of the rendered policy and make the coverage check use it."""

    def apply(mutate: Callable[[Policy], None]) -> Policy:
        changed = copy.deepcopy(policy)
        mutate(changed)
        monkeypatch.setattr(coverage, "policy_statements", lambda config, env: changed)
        return changed

    return apply


def _stack(*resources: dict[str, Any], tags: dict[str, str] | None = None) -> StackTemplate:
    template = {"Resources": {f"R{i}": r for i, r in enumerate(resources)}}
    return StackTemplate("acme-lake-dev-test", template, TAGS if tags is None else tags)


def _statement(policy: Policy, sid: str) -> dict[str, Any]:
    return next(s for s in policy if s["Sid"] == sid)


def _without(policy: Policy, action: str) -> None:
    for statement in policy:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        statement["Action"] = [a for a in actions if a != action] or ["iam:GetRole"]


RULE = {"Type": "AWS::Events::Rule", "Properties": {"Name": "acme-lake-dev-failures", "EventPattern": {}}}
KEY = {
    "Type": "AWS::KMS::Key",
    "Properties": {"KeyPolicy": {}, "EnableKeyRotation": True, "Tags": [{"Key": "owner", "Value": "lake"}]},
}
LOG_GROUP = {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": "acme-lake-dev-flow-logs"}}
SUBNET = {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "R0"}, "CidrBlock": "10.0.0.0/24"}}
VPC = {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}}
TABLE = {
    "Type": "AWS::DynamoDB::Table",
    "Properties": {"TableName": "acme-lake-dev-audit", "KeySchema": [], "AttributeDefinitions": []},
}
TOPIC = {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "acme-lake-dev-alarms"}}
FUNCTION = {
    "Type": "AWS::Lambda::Function",
    "Properties": {
        "FunctionName": "acme-lake-dev-handler",
        "Code": {"S3Bucket": {"Fn::Sub": "cdk-hnb659fds-assets-${AWS::AccountId}-${AWS::Region}"}, "S3Key": "a.zip"},
        "Role": "arn:aws:iam::222222222222:role/acme-lake-dev-handler",
        "Handler": "index.handler",
        "Runtime": "python3.12",
    },
}


# --- the shipped policy covers what the handlers need ------------------------------------------------
@pytest.mark.parametrize(
    "resources",
    [(RULE,), (KEY,), (LOG_GROUP,), (VPC, SUBNET), (TABLE,), (TOPIC,), (FUNCTION,)],
    ids=["rule", "key", "log-group", "subnet", "table", "topic", "function"],
)
def test_the_shipped_policy_allows_every_handler_permission(
    example_config: LakeConfig, resources: tuple[dict[str, Any], ...]
) -> None:
    assert coverage_problems([_stack(*resources)], example_config, ENV) == []


def test_the_report_counts_every_handler_permission_of_the_schema(example_config: LakeConfig) -> None:
    report = coverage_report([_stack(RULE)], example_config, ENV)
    listed = {
        p
        for permissions in aws_data.handler_permissions("AWS::Events::Rule", "eu-west-1").values()
        for p in permissions
    }
    assert {p for (_, p) in report.verdicts} == listed
    assert report.counts()["missing"] == 0


# --- each issue-10 finding, caught ---------------------------------------------------------------------
def test_removing_list_targets_by_rule_is_named(example_config: LakeConfig, with_policy: Any) -> None:
    with_policy(lambda p: _without(p, "events:ListTargetsByRule"))
    problems = coverage_problems([_stack(RULE)], example_config, ENV)
    assert any("events:ListTargetsByRule" in p and "AWS::Events::Rule read handler" in p for p in problems)


@pytest.mark.parametrize(
    ("resources", "action"),
    [
        ((VPC, SUBNET), "ec2:DescribeNetworkAcls"),
        ((FUNCTION,), "lambda:GetFunctionRecursionConfig"),
        ((FUNCTION,), "lambda:GetRuntimeManagementConfig"),
        ((TABLE,), "dynamodb:DescribeContributorInsights"),
        ((TABLE,), "dynamodb:DescribeKinesisStreamingDestination"),
        ((TABLE,), "dynamodb:GetResourcePolicy"),
        ((TOPIC,), "sns:ListSubscriptionsByTopic"),
    ],
)
def test_removing_a_read_handler_action_is_named(
    example_config: LakeConfig, with_policy: Any, resources: tuple[dict[str, Any], ...], action: str
) -> None:
    with_policy(lambda p: _without(p, action))
    assert any(action in p for p in coverage_problems([_stack(*resources)], example_config, ENV))


def test_tagging_a_key_as_it_is_created_needs_no_tag_on_the_key(example_config: LakeConfig, with_policy: Any) -> None:
    # The policy before issue 10: kms:TagResource only on keys that already carry lake:prefix.
    with_policy(lambda p: p.remove(_statement(p, "TagKeysAsTheyAreCreated")))
    problems = coverage_problems([_stack(KEY)], example_config, ENV)
    assert any("kms:TagResource" in p and "AWS::KMS::Key create handler" in p for p in problems)


def test_a_key_is_tagged_on_create_only_with_the_lakes_tag_in_the_request(policy: Policy) -> None:
    key = "arn:aws:kms:eu-west-1:222222222222:key/new"
    request_tags = {"aws:RequestTag/lake:prefix": ["acme-lake"], "aws:TagKeys": ["lake:prefix"]}
    assert evaluate(policy, Request("kms:TagResource", key, request_tags)).allowed
    other = {"aws:RequestTag/lake:prefix": ["other-lake"], "aws:TagKeys": ["lake:prefix"]}
    assert not evaluate(policy, Request("kms:TagResource", key, other)).allowed


def test_describe_log_groups_scoped_to_a_log_group_is_a_resource_mismatch(policy: Policy) -> None:
    changed = copy.deepcopy(policy)
    statement = _statement(changed, "ReadsWithoutResourceLevelPermissions")
    statement["Action"].remove("logs:DescribeLogGroups")
    changed.append(
        {
            "Sid": "ScopedDescribe",
            "Effect": "Allow",
            "Action": "logs:DescribeLogGroups",
            "Resource": "arn:aws:logs:eu-west-1:222222222222:log-group:acme-lake-dev-flow-logs",
        }
    )
    problems = lint_problems_of([("mutated", {"Version": "2012-10-17", "Statement": changed})])
    assert any("RESOURCE_MISMATCH" in p and "logs:DescribeLogGroups" in p for p in problems)


def test_describe_log_groups_scoped_to_log_groups_is_not_covered(example_config: LakeConfig, with_policy: Any) -> None:
    def scope(p: Policy) -> None:
        _without(p, "logs:DescribeLogGroups")
        _statement(p, "LogGroupsOfTheStacks")["Action"].append("logs:DescribeLogGroups")

    with_policy(scope)
    problems = coverage_problems([_stack(LOG_GROUP)], example_config, ENV)
    assert any("logs:DescribeLogGroups on *" in p for p in problems)


def test_subscriptions_are_managed_on_star_because_iam_cannot_scope_them(example_config: LakeConfig) -> None:
    subscription = {
        "Type": "AWS::SNS::Subscription",
        "Properties": {"TopicArn": {"Ref": "R0"}, "Protocol": "email", "Endpoint": "ops@example.com"},
    }
    assert coverage_problems([_stack(TOPIC, subscription)], example_config, ENV) == []


# --- the oracle evaluates resources and conditions, not action names ---------------------------------
def test_a_resource_outside_the_lake_is_not_covered(example_config: LakeConfig) -> None:
    other = {"Type": "AWS::Events::Rule", "Properties": {"Name": "other-lake-dev-rule", "EventPattern": {}}}
    problems = coverage_problems([_stack(other)], example_config, ENV)
    assert problems and all("other-lake-dev-rule" in p for p in problems)


def test_network_resources_without_the_lake_tag_are_not_covered(example_config: LakeConfig) -> None:
    problems = coverage_problems([_stack(VPC, SUBNET, tags={})], example_config, ENV)
    assert any("ec2:CreateVpc" in p for p in problems)
    assert any("ec2:CreateSubnet" in p for p in problems)


def test_a_subnet_in_a_vpc_outside_the_lake_is_denied(policy: Policy) -> None:
    subnet = "arn:aws:ec2:eu-west-1:222222222222:subnet/new"
    vpc = "arn:aws:ec2:eu-west-1:222222222222:vpc/vpc-1"
    tags = {"aws:RequestTag/lake:prefix": ["acme-lake"], "aws:TagKeys": ["lake:prefix"]}
    assert evaluate(policy, Request("ec2:CreateSubnet", subnet, tags)).allowed
    assert evaluate(
        policy, Request("ec2:CreateSubnet", vpc, {**tags, "aws:ResourceTag/lake:prefix": ["acme-lake"]})
    ).allowed
    assert not evaluate(policy, Request("ec2:CreateSubnet", vpc, tags)).allowed  # untagged VPC
    other = {**tags, "aws:ResourceTag/lake:prefix": ["other"]}
    assert not evaluate(policy, Request("ec2:CreateSubnet", vpc, other)).allowed


def test_a_rule_on_a_security_group_outside_the_lake_is_denied(policy: Policy) -> None:
    group = "arn:aws:ec2:eu-west-1:222222222222:security-group/sg-1"
    assert evaluate(
        policy, Request("ec2:AuthorizeSecurityGroupIngress", group, {"aws:ResourceTag/lake:prefix": ["acme-lake"]})
    ).allowed
    assert not evaluate(policy, Request("ec2:AuthorizeSecurityGroupIngress", group, {})).allowed


def test_a_role_passed_to_an_unexpected_service_is_not_covered(example_config: LakeConfig) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "RoleName": "acme-lake-dev-notebook",
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "sagemaker.amazonaws.com"}}]},
            "PermissionsBoundary": BOUNDARY,
        },
    }
    notebook_like = {
        "Type": "AWS::Events::Rule",
        "Properties": {"Name": "acme-lake-dev-r", "RoleArn": {"Fn::GetAtt": ["R0", "Arn"]}},
    }
    assert coverage_problems([_stack(role, notebook_like)], example_config, ENV) == []
    coverage.PASSED_TO_SERVICE["AWS::Events::Rule"], saved = (
        "sagemaker.amazonaws.com",
        coverage.PASSED_TO_SERVICE["AWS::Events::Rule"],
    )
    try:
        problems = coverage_problems([_stack(role, notebook_like)], example_config, ENV)
    finally:
        coverage.PASSED_TO_SERVICE["AWS::Events::Rule"] = saved
    assert any("iam:PassRole" in p for p in problems)


def test_a_managed_policy_outside_the_attach_condition_is_not_covered(example_config: LakeConfig) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "lambda.amazonaws.com"}}]},
            "ManagedPolicyArns": [
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AdministratorAccess"]]}
            ],
            "PermissionsBoundary": BOUNDARY,
        },
    }
    problems = coverage_problems([_stack(role)], example_config, ENV)
    assert any("iam:AttachRolePolicy" in p for p in problems)


def test_a_role_without_the_stage_role_boundary_cannot_be_created(example_config: LakeConfig) -> None:
    role: dict[str, Any] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "glue.amazonaws.com"}}]},
            "Policies": [{"PolicyName": "p", "PolicyDocument": {"Statement": []}}],
            "PermissionsBoundary": BOUNDARY,
        },
    }
    assert coverage_problems([_stack(role)], example_config, ENV) == []
    for boundary in (None, {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/acme-lake-other"}):
        role["Properties"]["PermissionsBoundary"] = boundary
        problems = coverage_problems([_stack(role)], example_config, ENV)
        assert any("does not allow iam:CreateRole" in p for p in problems), problems
        assert any("does not allow iam:PutRolePolicy" in p for p in problems), problems


def test_the_execution_policy_never_lets_a_role_escape_the_boundary(example_config: LakeConfig) -> None:
    target = coverage.Target("acme-lake", DEV_ACCOUNT, "eu-west-1", "aws")
    policy = coverage.policy_statements(example_config, ENV)
    assert coverage.boundary_guard_problems(policy, target, "acme-lake-stage-role-boundary") == []
    unconditioned = [
        {k: v for k, v in s.items() if k != "Condition"} if s["Sid"].startswith("StackRoles") else s for s in policy
    ]
    problems = coverage.boundary_guard_problems(unconditioned, target, "acme-lake-stage-role-boundary")
    assert any("a role without the boundary" in p for p in problems)
    assert any("swapping the boundary" in p for p in problems)
    editing = [*policy, {"Effect": "Allow", "Action": "iam:CreatePolicyVersion", "Resource": "*"}]
    problems = coverage.boundary_guard_problems(editing, target, "acme-lake-stage-role-boundary")
    assert problems == [p for p in problems if "changing the boundary policy itself" in p] and problems


def test_a_glue_job_of_the_lake_is_covered_and_one_of_another_prefix_is_not(example_config: LakeConfig) -> None:
    def job(name: str) -> dict[str, Any]:
        return {"Type": "AWS::Glue::Job", "Properties": {"Name": name, "Role": "acme-lake-dev-jobs", "Command": {}}}

    assert coverage_problems([_stack(job("acme-lake-dev-orders-load"))], example_config, ENV) == []
    problems = coverage_problems([_stack(job("other-lake-dev-job"))], example_config, ENV)
    assert problems and all("other-lake-dev-job" in p for p in problems)


def test_a_type_without_a_resource_schema_is_a_problem_naming_it(example_config: LakeConfig) -> None:
    problems = coverage_problems([_stack({"Type": "AWS::Made::Up", "Properties": {}})], example_config, ENV)
    assert problems == [
        "AWS::Made::Up has no CloudFormation resource schema for eu-west-1 "
        "(AWS::Made::Up create handler, acme-lake-dev-test/R0)"
    ]


def test_a_policy_that_loses_an_ec2_tag_condition_is_refused(example_config: LakeConfig, with_policy: Any) -> None:
    with_policy(lambda p: _statement(p, "CreateTheVpcTaggedAsTheLake").pop("Condition"))
    assert any("lake:prefix tag" in p for p in coverage_problems([], example_config, ENV))


# --- exclusions: reasoned, and never silently stale --------------------------------------------------
def test_every_exclusion_names_a_listed_permission_and_says_why() -> None:
    for entry in exclusions():
        listed = {p for ps in aws_data.handler_permissions(entry.resource_type, "eu-west-1").values() for p in ps}
        assert entry.permission in listed, entry
        assert len(entry.reason) > 20, entry
        if entry.property:
            top = entry.property.split(".")[0]
            assert top in aws_data.resource_schema(entry.resource_type, "eu-west-1")["properties"], entry


def test_setting_an_excluded_property_makes_the_exclusion_a_problem(example_config: LakeConfig) -> None:
    table = copy.deepcopy(TABLE)
    table["Properties"]["KinesisStreamSpecification"] = {"StreamArn": "arn:aws:kinesis:eu-west-1:1:stream/s"}
    problems = coverage_problems([_stack(table)], example_config, ENV)
    assert any("sets KinesisStreamSpecification" in p and "handler-exclusions.json" in p for p in problems)


# --- lint ----------------------------------------------------------------------------------------------
def test_the_execution_policy_lints_clean(example_config: LakeConfig) -> None:
    assert execution_policy_lint_problems(example_config, ENV) == []


def test_a_template_policy_with_an_unknown_action_is_a_lint_problem() -> None:
    role_policy = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "p",
            "Roles": ["r"],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:GetObjekt", "Resource": "arn:aws:s3:::b/*"}],
            },
        },
    }
    problems = lint_problems([_stack(role_policy)])
    assert len(problems) == 1 and "UNKNOWN_ACTION" in problems[0]


def test_intrinsic_arns_are_resolved_before_linting() -> None:
    bucket = {"Type": "AWS::S3::Bucket", "Properties": {}}
    role_policy = {
        "Type": "AWS::IAM::Policy",
        "Properties": {
            "PolicyName": "p",
            "Roles": ["r"],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "s3:GetObject", "Resource": {"Fn::GetAtt": ["R0", "Arn"]}},
                    {
                        "Effect": "Allow",
                        "Action": "s3:PutObject",
                        "Resource": {"Fn::Join": ["", [{"Fn::GetAtt": ["R0", "Arn"]}, "/*"]]},
                    },
                ],
            },
        },
    }
    problems = lint_problems([_stack(bucket, role_policy)])
    # GetObject on the bucket itself (not its objects) is never allowed; PutObject on bucket/* is right.
    assert len(problems) == 1 and "RESOURCE_MISMATCH" in problems[0] and "s3:GetObject" in problems[0]


def test_lake_objects_are_out_of_reach(policy: Policy) -> None:
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        key = "arn:aws:s3:::acme-lake-dev-raw-bucket/data/x.parquet"
        assert not evaluate(policy, Request(action, key, {"aws:RequestedRegion": ["eu-west-1"]})).allowed, action
