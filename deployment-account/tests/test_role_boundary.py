"""The stage-role boundary: applied to every role at synth, and checked against what the stage grants its roles."""

from __future__ import annotations

import copy
import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam

import lake_pipelines.role_boundary as role_boundary
from datalake_config import LakeConfig
from lake_pipelines.checks import lake_app
from lake_pipelines.execution_policy import PolicyPart, stage_role_boundary
from lake_pipelines.policy_coverage import StackTemplate, stage_templates
from lake_pipelines.role_boundary import bound_stage_roles, boundary_problems

ENV = "dev"
ACCOUNT = "222222222222"
BOUNDARY = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/acme-lake-stage-role-boundary"}
TRUST = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "glue.amazonaws.com"}}]}


def _role(*statements: dict[str, Any], boundary: Any = BOUNDARY, **extra: Any) -> dict[str, Any]:
    policies = [{"PolicyName": "p", "PolicyDocument": {"Statement": list(statements)}}] if statements else []
    props = {"AssumeRolePolicyDocument": TRUST, "Policies": policies, **extra}
    if boundary is not None:
        props["PermissionsBoundary"] = boundary
    return {"Type": "AWS::IAM::Role", "Properties": props}


def _allow(action: str | list[str], resource: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource}


def _problems(config: LakeConfig, **resources: dict[str, Any]) -> list[str]:
    return boundary_problems([StackTemplate("acme-lake-dev-s", {"Resources": resources}, {})], config, ENV)


def test_a_role_using_what_the_lake_uses_fits(example_config: LakeConfig) -> None:
    role = _role(
        _allow(["s3:GetObject", "s3:PutObject"], "arn:aws:s3:::acme-lake-dev-etl-raw-x/events/*"),
        _allow("kms:Decrypt", {"Ref": "ContractKmsDataKeyArn"}),  # a deploy-time value: one of the lake's keys
        _allow("xray:PutTraceSegments", "*"),
    )
    assert _problems(example_config, Role=role) == []


def test_a_role_without_the_boundary_or_with_another_is_a_problem(example_config: LakeConfig) -> None:
    assert any("boundary is None" in p for p in _problems(example_config, Role=_role(boundary=None)))
    other = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:policy/something-else"}
    assert any("something-else" in p for p in _problems(example_config, Role=_role(boundary=other)))


@pytest.mark.parametrize(
    ("action", "resource"),
    [
        ("iam:PassRole", "*"),  # a bounded role must never hand a role on
        ("sts:AssumeRole", "arn:aws:iam::222222222222:role/acme-lake-dev-other"),
        ("secretsmanager:GetSecretValue", "*"),  # a service the lake's roles never use
        ("s3:GetObject", "arn:aws:s3:::someone-elses-bucket/*"),  # not a bucket of the lake
        ("kms:Decrypt", "arn:aws:kms:eu-west-1:999999999999:key/abc"),  # a key of another account
        ("s3:*", "arn:aws:s3:::acme-lake-dev-x/*"),  # the wildcard stands for s3:PutObjectAcl too
    ],
)
def test_a_grant_beyond_the_boundary_is_named(example_config: LakeConfig, action: str, resource: str) -> None:
    problems = _problems(example_config, Role=_role(_allow(action, resource)))
    assert problems and all("which the role boundary does not allow" in p for p in problems), problems
    assert any(action.rstrip("*") in p for p in problems)


def test_a_separate_policy_resource_and_a_managed_policy_count_as_grants(example_config: LakeConfig) -> None:
    policy = {
        "Type": "AWS::IAM::Policy",
        "Properties": {"PolicyDocument": {"Statement": [_allow("glue:DeleteTable", "*")]}, "Roles": [{"Ref": "Role"}]},
    }
    assert any("glue:DeleteTable" in p for p in _problems(example_config, Role=_role(), Policy=policy))
    admin = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}
    basic = {"Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"}
    assert _problems(example_config, Role=_role(ManagedPolicyArns=[basic])) == []
    problems = _problems(example_config, Role=_role(ManagedPolicyArns=[admin]))
    assert any("AdministratorAccess" in p and "does not know" in p for p in problems)


def test_a_resource_policy_naming_a_role_counts_as_a_grant(example_config: LakeConfig) -> None:
    bucket_policy = {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "PolicyDocument": {
                "Statement": [
                    {
                        **_allow(
                            ["s3:ListBucket", "s3:GetObject"],
                            ["arn:aws:s3:::acme-lake-dev-b", "arn:aws:s3:::acme-lake-dev-b/*"],
                        ),
                        "Principal": {"AWS": {"Fn::GetAtt": ["Role", "Arn"]}},
                    }
                ]
            }
        },
    }
    assert _problems(example_config, Role=_role(), BucketPolicy=bucket_policy) == []
    bucket_policy["Properties"]["PolicyDocument"]["Statement"][0]["Action"] = "s3:PutBucketAcl"
    problems = _problems(example_config, Role=_role(), BucketPolicy=bucket_policy)
    assert any("BucketPolicy: grants s3:PutBucketAcl" in p for p in problems)


def test_the_boundary_itself_lists_exact_actions_and_none_on_roles(
    example_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = stage_role_boundary(example_config, ACCOUNT, "eu-west-1")
    assert shipped.name == "acme-lake-stage-role-boundary"
    assert "{prefix}" not in json.dumps(shipped.document)  # filled, and its comments dropped
    assert "Comment" not in json.dumps(shipped.document)
    for extra in ("iam:PassRole", "s3:Get*", "sts:AssumeRole", "s3:NoSuchAction"):
        document = copy.deepcopy(shipped.document)
        document["Statement"].append(_allow(extra, "*"))
        monkeypatch.setattr(role_boundary, "stage_role_boundary", _returning(PolicyPart(shipped.name, document)))
        assert any(extra in p for p in _problems(example_config)), extra


def _returning(part: PolicyPart) -> Any:
    return lambda config, account, region: part


def test_every_role_of_a_stage_gets_the_boundary_l2_and_l1(example_config: LakeConfig, tmp_path: Any) -> None:
    app = lake_app(outdir=str(tmp_path))
    stage = cdk.Stage(app, "Dev", env=cdk.Environment(account=ACCOUNT, region="eu-west-1"))
    bound_stage_roles(stage, example_config)
    stack = cdk.Stack(stage, "S", stack_name="acme-lake-dev-s")
    iam.Role(stack, "Job", assumed_by=iam.ServicePrincipal("glue.amazonaws.com"))
    # restrict_default_security_group adds a provider role that CDK writes as a plain CfnResource, not an
    # iam.Role: the one helper Lambda the infra stage keeps (issue 14)
    isolated = ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
    ec2.Vpc(stack, "Vpc", max_azs=1, subnet_configuration=[isolated], restrict_default_security_group=True)
    (template,) = stage_templates(stage)
    roles = template.resources("AWS::IAM::Role")
    assert len(roles) == 2
    assert all(r["Properties"]["PermissionsBoundary"] == BOUNDARY for r in roles)
    assert boundary_problems([template], example_config, ENV) == []
