"""The coverage check the apps run on their own stages (`lake_pipelines.policy_coverage`), proven on small
templates here so that the deployment-account repository never synthesizes another repository's app."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from datalake_config import LakeConfig
from lake_pipelines.policy_coverage import (
    ACTIONS_BY_RESOURCE_TYPE,
    StackTemplate,
    allowing,
    allows_on,
    coverage_problems,
    policy_statements,
)

ENV = "dev"


@pytest.fixture(scope="module")
def policy(example_config: LakeConfig) -> list[dict[str, Any]]:
    return policy_statements(example_config, ENV)


def _stack(*resources: dict[str, Any], tags: dict[str, str] | None = None) -> StackTemplate:
    template = {"Resources": {f"R{i}": r for i, r in enumerate(resources)}}
    return StackTemplate("acme-lake-dev-test", template, {"lake:prefix": "acme-lake"} if tags is None else tags)


def _glue_job(name: str) -> dict[str, Any]:
    return {"Type": "AWS::Glue::Job", "Properties": {"Name": name, "Role": "r", "Command": {}}}


def test_every_listed_action_is_allowed(policy: list[dict[str, Any]]) -> None:
    missing = sorted(
        f"{t}: {a}" for t, actions in ACTIONS_BY_RESOURCE_TYPE.items() for a in actions if not allowing(policy, a)
    )
    assert not missing


def test_an_unknown_resource_type_is_a_problem_naming_it(example_config: LakeConfig) -> None:
    problems = coverage_problems([_stack({"Type": "AWS::Redshift::Cluster", "Properties": {}})], example_config, ENV)
    assert len(problems) == 1
    assert "AWS::Redshift::Cluster" in problems[0]


def test_a_glue_job_of_the_lake_is_covered_and_one_of_another_prefix_is_not(example_config: LakeConfig) -> None:
    assert coverage_problems([_stack(_glue_job("acme-lake-dev-orders-load"))], example_config, ENV) == []
    problems = coverage_problems([_stack(_glue_job("other-lake-dev-job"))], example_config, ENV)
    assert problems and all("other-lake-dev-job" in p for p in problems)


def test_a_role_trusting_an_unexpected_service_is_a_problem(example_config: LakeConfig) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "ec2.amazonaws.com"}}]},
        },
    }
    problems = coverage_problems([_stack(role)], example_config, ENV)
    assert problems == ["iam:PassRole cannot pass a role to ec2.amazonaws.com, which a stage's role trusts"]


def test_a_managed_policy_outside_the_attach_condition_is_a_problem(example_config: LakeConfig) -> None:
    role = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Statement": [{"Principal": {"Service": "lambda.amazonaws.com"}}]},
            "ManagedPolicyArns": [
                {"Fn::Join": ["", ["arn:", {"Ref": "AWS::Partition"}, ":iam::aws:policy/AdministratorAccess"]]}
            ],
        },
    }
    problems = coverage_problems([_stack(role)], example_config, ENV)
    assert problems == [
        "add arn:aws:iam::aws:policy/AdministratorAccess to the iam:PolicyARN condition of the attach statement"
    ]


def test_network_resources_without_the_lake_tag_are_a_problem(example_config: LakeConfig) -> None:
    vpc = {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.0.0.0/16"}}
    assert coverage_problems([_stack(vpc)], example_config, ENV) == []
    problems = coverage_problems([_stack(vpc, tags={})], example_config, ENV)
    assert len(problems) == 1 and "lake:prefix=acme-lake" in problems[0]


def test_network_creates_require_the_lake_tag_in_the_request(policy: list[dict[str, Any]]) -> None:
    for action in ("ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateSecurityGroup", "ec2:CreateVpcEndpoint"):
        statements = allowing(policy, action)
        assert any("aws:RequestTag/lake:prefix" in str(s.get("Condition")) for s in statements), action


def test_a_policy_that_loses_an_ec2_tag_condition_is_refused(
    example_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lake_pipelines.policy_coverage as coverage

    weakened = copy.deepcopy(coverage.policy_statements(example_config, ENV))
    for statement in weakened:
        if "ec2:CreateVpc" in statement["Action"]:
            statement.pop("Condition", None)
    monkeypatch.setattr(coverage, "policy_statements", lambda config, env: weakened)
    problems = coverage_problems([], example_config, ENV)
    assert any("lake:prefix tag" in p for p in problems)


def test_lake_objects_are_out_of_reach(policy: list[dict[str, Any]]) -> None:
    for action in ("s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion"):
        for statement in allowing(policy, action):
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert all("cdk-" in r and "-assets-" in r for r in resources), statement["Sid"]


def test_glue_tables_of_another_lake_are_out_of_reach(policy: list[dict[str, Any]], example_config: LakeConfig) -> None:
    target = example_config.env(ENV)
    arn = f"arn:aws:glue:{target.region}:{target.account}"
    assert allows_on(policy, "glue:CreateTable", f"{arn}:table/acme_lake_dev_raw/t")
    assert not allows_on(policy, "glue:CreateTable", f"{arn}:table/other_lake_dev_raw/t")
