"""The deployment account deploys under a shipped least-privilege policy, not AdministratorAccess.

One synthesis of everything the deployment account's CloudFormation role deploys (the deployment-account
stack, both repositories' pipelines for every environment, and the cross-region support stack of a target in
another region), checked by the same oracle as the target accounts: every handler permission allowed, every
pipeline role inside the pipeline-role boundary, no way to escape the boundary.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from datalake_config import LakeConfig, from_mapping, lake_names, names_for
from lake_pipelines.checks import lake_app
from lake_pipelines.execution_policy import CDK_QUALIFIER, pipelines_execution_policy_parts
from lake_pipelines.iam_eval import Request, evaluate
from lake_pipelines.pipeline import BranchPipelineStack
from lake_pipelines.policy_coverage import StackTemplate, assembly_templates, pipelines_coverage_report
from lake_pipelines.policy_lint import pipelines_policy_lint_problems
from lake_pipelines.role_boundary import PIPELINE_STS_ACTIONS, _boundary_shape_problems, pipeline_boundary_problems
from lakeops.deployment_stack import DeploymentAccountStack

DEPLOYMENT_DIR = Path(__file__).resolve().parents[1]
CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="module")
def config(example_config: LakeConfig) -> LakeConfig:
    """The example, with prod in another region (a support stack) and the ETL repository on CodeConnections."""
    raw = example_config.model_dump(mode="json")
    raw["environments"]["prod"]["region"] = "eu-central-1"
    raw["repositories"]["etl"]["source"] = {
        "provider": "codeconnections",
        "connection_arn": CONNECTION_ARN,
        "owner": "acme",
        "repository_name": "lake-etl",
    }
    return from_mapping(raw)


@pytest.fixture(scope="module")
def stacks(config: LakeConfig, stage_factory: Any, module_dir: Path) -> list[StackTemplate]:
    context = json.loads((DEPLOYMENT_DIR / "cdk.json").read_text())["context"]
    app = lake_app(outdir=str(module_dir / "deployment-account"), context=context)
    DeploymentAccountStack(app, lake_names(config).deployment_stack_name, config=config)
    for repository in ("infra", "etl"):
        for env in config.environment_names:
            BranchPipelineStack(
                app,
                names_for(config, env).pipeline_stack_name(repository),
                config=config,
                repository=repository,
                environment=env,
                stage_factory=stage_factory(
                    config, with_asset=True, reads=(lambda e: [names_for(config, e).alarm_topic_arn])
                ),
                verify_module="checks",
            )
    return assembly_templates(app.synth().stacks)


def test_every_stack_of_the_deployment_account_is_checked(stacks: list[StackTemplate]) -> None:
    assert {(s.name, s.region) for s in stacks} >= {
        ("acme-lake-deployment", "eu-west-1"),
        ("acme-lake-etl-dev-pipeline", "eu-west-1"),
        ("acme-lake-infra-prod-pipeline", "eu-west-1"),
        ("acme-lake-infra-prod-pipeline-support-eu-central-1", "eu-central-1"),
    }


def test_the_shipped_policy_covers_the_deployment_account(stacks: list[StackTemplate], config: LakeConfig) -> None:
    report = pipelines_coverage_report(stacks, config)
    assert report.problems == []
    counts = report.counts()
    # the pipelines' own resource types are really evaluated, not skipped
    assert {"AWS::CodePipeline::Pipeline", "AWS::CodeBuild::Project", "AWS::CodeArtifact::Domain"} <= (
        report.resource_types
    )
    assert counts["missing"] == 0 and counts["allowed"] > 150


def test_every_pipeline_role_fits_inside_the_pipeline_role_boundary(
    stacks: list[StackTemplate], config: LakeConfig
) -> None:
    assert pipeline_boundary_problems(stacks, config) == []


def test_a_grant_beyond_the_boundary_and_a_role_without_it_are_found(
    stacks: list[StackTemplate], config: LakeConfig
) -> None:
    (pipeline,) = [copy.deepcopy(s) for s in stacks if s.name == "acme-lake-infra-dev-pipeline"]
    resources: dict[str, Any] = pipeline.template["Resources"]
    policy = next(r for r in resources.values() if r["Type"] == "AWS::IAM::Policy")
    policy["Properties"]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "secretsmanager:PutSecretValue", "Resource": "*"}
    )
    role = next(r for r in resources.values() if r["Type"] == "AWS::IAM::Role")
    del role["Properties"]["PermissionsBoundary"]
    problems = pipeline_boundary_problems([pipeline], config)
    assert any("grants secretsmanager:PutSecretValue" in p for p in problems)
    assert any("permissions boundary is None" in p for p in problems)


def test_the_coverage_check_fails_when_the_policy_lacks_a_permission(
    stacks: list[StackTemplate], config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import lake_pipelines.policy_coverage as coverage

    parts = pipelines_execution_policy_parts(config)
    trimmed = [
        {**s, "Action": [a for a in s["Action"] if a != "codebuild:CreateProject"]}
        if isinstance(s["Action"], list)
        else s
        for part in parts
        for s in part.document["Statement"]
    ]
    monkeypatch.setattr(
        coverage,
        "pipelines_execution_policy_parts",
        lambda _config: [type(parts[0])("trimmed", {"Version": "2012-10-17", "Statement": trimmed})],
    )
    problems = coverage.pipelines_coverage_report(stacks, config).problems
    assert any("does not allow codebuild:CreateProject" in p for p in problems)


def test_the_policy_and_the_boundary_lint_clean(config: LakeConfig, example_config: LakeConfig) -> None:
    assert pipelines_policy_lint_problems(config) == []
    assert pipelines_policy_lint_problems(example_config) == []


def test_the_policy_names_only_the_configured_repositories_and_connections(
    config: LakeConfig, example_config: LakeConfig
) -> None:
    rendered = json.dumps([p.document for p in pipelines_execution_policy_parts(config)])
    assert "arn:aws:codecommit:eu-west-1:111111111111:acme-lake-infra" in rendered
    assert 'acme-lake-etl"' not in rendered  # the ETL repository is on CodeConnections here
    assert "arn:aws:codeconnections:eu-west-1:111111111111:connection/" in rendered
    # with no connection configured, the statements about connections are dropped, not left empty
    example = json.dumps([p.document for p in pipelines_execution_policy_parts(example_config)])
    assert "PassConnection" not in example and "[]" not in example


def test_the_bootstrap_qualifier_is_cdks() -> None:
    assert CDK_QUALIFIER == cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER


def test_an_alias_is_made_or_moved_only_for_a_key_carrying_the_lakes_tag(config: LakeConfig) -> None:
    """The alias side names every alias (CDK hashes the replication key's alias name); the Deny keeps the key
    side to the lake's keys, an untagged key included (StringNotEquals holds where the tag is absent)."""
    policy = [s for part in pipelines_execution_policy_parts(config) for s in part.document["Statement"]]
    key = "arn:aws:kms:eu-central-1:111111111111:key/0000"
    lake_key = Request("kms:CreateAlias", key, {"aws:ResourceTag/lake:prefix": ["acme-lake"]})
    assert evaluate(policy, lake_key).allowed
    assert not evaluate(policy, Request("kms:CreateAlias", key, {"aws:ResourceTag/lake:prefix": ["other"]})).allowed
    assert not evaluate(policy, Request("kms:UpdateAlias", key)).allowed


def test_the_pipeline_boundary_may_assume_only_named_roles() -> None:
    loose = [{"Sid": "Loose", "Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": "*"}]
    assert _boundary_shape_problems(loose, "b.json", PIPELINE_STS_ACTIONS) == [
        "b.json Loose: sts:AssumeRole on `*`; name the roles"
    ]
    # in a stage boundary no STS call is allowed at all
    assert _boundary_shape_problems(loose) == [
        "policies/stage-role-boundary.json Loose: sts:AssumeRole would let a bounded role act on roles"
    ]
