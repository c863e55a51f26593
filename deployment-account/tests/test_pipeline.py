"""Template tests of the branch pipeline for every environment of the example config (synthesized once)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ssm as ssm
from aws_cdk.assertions import Match, Template

from datalake_config import LakeConfig, from_mapping, lake_names, names_for
from lake_pipelines import buildspec
from lake_pipelines.checks import MIN_REASON_LENGTH, acknowledgements, cfn_lint, enable_nag, lake_app, synth
from lake_pipelines.pipeline import (
    CDK_CLI_VERSION,
    CODEARTIFACT_LOGIN_REASON,
    NOTIFIED_EVENTS,
    BranchPipelineStack,
    stage_reads_from_outside,
)
from lake_pipelines.trust import verify_step_principal

DEPLOYMENT_DIR = Path(__file__).resolve().parents[1]
VERIFY_MODULE = "datalake_infra.smoke_check"
CONNECTION_ARN = "arn:aws:codeconnections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000"


# The feature flags the apps synthesize with (`cdk init` defaults); among them `minimizePolicies` and
# `enablePartitionLiterals` change the generated policies the pipeline acknowledges.
APP_CONTEXT = json.loads((DEPLOYMENT_DIR / "cdk.json").read_text())["context"]


def _build(
    config: LakeConfig,
    repository: str,
    outdir: Path,
    stage_factory: Any,
    context: dict[str, Any] | None = None,
    reads: Any = None,
) -> dict[str, BranchPipelineStack]:
    app = lake_app(outdir=str(outdir), context=context)
    stacks = {
        env: BranchPipelineStack(
            app,
            names_for(config, env).pipeline_stack_name(repository),
            config=config,
            repository=repository,
            environment=env,
            stage_factory=stage_factory(config, with_asset=True, reads=reads),
            verify_module=VERIFY_MODULE,
        )
        for env in config.environment_names
    }
    enable_nag(app)
    synth(app)  # raises NagFindings on any unacknowledged cdk-nag finding
    return stacks


@pytest.fixture(scope="module")
def assembly(example_config: LakeConfig, stage_factory: Any, module_dir: Path) -> Path:
    outdir = module_dir / "pipelines"
    _build(example_config, "infra", outdir, stage_factory, APP_CONTEXT)
    return outdir


@pytest.fixture(scope="module")
def templates(example_config: LakeConfig, assembly: Path) -> dict[str, dict[str, Any]]:
    result = {}
    for env in example_config.environment_names:
        name = names_for(example_config, env).pipeline_stack_name("infra")
        result[env] = json.loads((assembly / f"{name}.template.json").read_text())
    return result


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == kind}


def _pipeline(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = _of_type(template, "AWS::CodePipeline::Pipeline").values()
    return pipeline["Properties"]


def _actions(template: dict[str, Any], stage_name: str) -> dict[str, dict[str, Any]]:
    for stage in _pipeline(template)["Stages"]:
        if stage["Name"] == stage_name:
            return {a["Name"]: a for a in stage["Actions"]}
    raise AssertionError(f"no stage {stage_name}")


def _project(template: dict[str, Any], name_part: str) -> tuple[str, dict[str, Any]]:
    matches = [(k, v) for k, v in _of_type(template, "AWS::CodeBuild::Project").items() if name_part in k]
    assert len(matches) == 1, f"expected one project named like {name_part}, got {[k for k, _ in matches]}"
    return matches[0]


def _buildspec_text(project: dict[str, Any]) -> str:
    spec = project["Properties"]["Source"]["BuildSpec"]
    return spec if isinstance(spec, str) else json.dumps(spec)


def _role_statements(template: dict[str, Any], project_logical_id: str) -> list[dict[str, Any]]:
    role_ref = template["Resources"][project_logical_id]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in _of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role_ref} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# --- pipeline shape -----------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_pipeline_is_v2_named_and_in_the_deployment_account(
    env: str, example_config: LakeConfig, templates: dict[str, Any], assembly: Path
) -> None:
    pipeline = _pipeline(templates[env])
    assert pipeline["PipelineType"] == "V2"
    assert pipeline["Name"] == names_for(example_config, env).pipeline_name("infra")
    manifest = json.loads((assembly / "manifest.json").read_text())
    stack = manifest["artifacts"][names_for(example_config, env).pipeline_stack_name("infra")]
    assert stack["environment"] == f"aws://{example_config.deployment.account}/{example_config.deployment.region}"


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_source_is_the_environment_branch_as_a_zip(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    (source,) = _actions(templates[env], "Source").values()
    config = source["Configuration"]
    assert config["BranchName"] == example_config.branch_for("infra", env)
    assert config["RepositoryName"] == example_config.repositories.infra.source.repository_name
    # no step needs git: the guard asks CodePipeline, so no build role may pull from the repository
    assert config.get("OutputArtifactFormat", "CODE_ZIP") == "CODE_ZIP"
    assert "codecommit:GitPull" not in json.dumps(
        [r for r in templates[env]["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
    )


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_manual_approval_only_where_the_config_asks(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    actions = _actions(templates[env], env.capitalize())
    manual = [a for a in actions.values() if a["ActionTypeId"]["Category"] == "Approval"]
    assert len(manual) == (1 if example_config.env(env).require_approval else 0)


def test_the_example_config_asks_for_approval_on_prod_only(example_config: LakeConfig) -> None:
    # guards the parametrized test above against a config in which it would assert nothing interesting
    assert [e for e in example_config.environment_names if example_config.env(e).require_approval] == ["prod"]


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_promotion_guard_first_in_synth_exactly_for_environments_with_a_predecessor(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    template = templates[env]
    logical_id, project = _project(template, "Synth")
    spec = json.loads(_buildspec_text(project))
    install = spec["phases"]["install"]["commands"]
    previous = example_config.previous_environment(env)
    assert not [a for a in _actions(template, env.capitalize()) if "Guard" in a]  # no separate, later step
    statements = _role_statements(template, logical_id)
    reads = [s for s in statements if "codepipeline:ListPipelineExecutions" in _as_list(s["Action"])]
    if previous is None:
        assert not any("REFUSED" in c for c in install) and not reads
        return
    # the very first command of the pipeline's first build: before install, checks, synth and self-mutation
    assert (
        install[0]
        == buildspec.promotion_guard_commands(
            names_for(example_config, previous).pipeline_name("infra"), previous, env, "eu-west-1"
        )[0]
    )
    previous_pipeline = names_for(example_config, previous).pipeline_name("infra")
    assert f"--pipeline-name {previous_pipeline}" in install[0] and "exit 1" in install[0]
    # the commit comes from the source action's own variable, not from git
    (build,) = _actions(template, "Build").values()
    variables = json.loads(build["Configuration"]["EnvironmentVariables"])
    (commit,) = [v for v in variables if v["name"] == buildspec.SOURCE_COMMIT_VARIABLE]
    assert commit["value"].endswith(".CommitId}") and commit["type"] == "PLAINTEXT"
    # it may read the previous pipeline's executions and nothing else of CodePipeline
    assert [_flat(r) for s in reads for r in _as_list(s["Resource"])] == [
        f"arn:aws:codepipeline:eu-west-1:111111111111:{previous_pipeline}"
    ]
    assert all(_as_list(s["Action"]) == ["codepipeline:ListPipelineExecutions"] for s in reads)


def test_self_mutation_runs_only_after_the_guard(templates: dict[str, Any]) -> None:
    stages = [s["Name"] for s in _pipeline(templates["prod"])["Stages"]]
    assert stages.index("Build") < stages.index("UpdatePipeline") < stages.index("Prod")


# Actions every CodeBuild step of a CDK pipeline gets for its own logs, reports and artifacts.
_ARTIFACT_AND_BUILD_ACTIONS = {
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:PutLogEvents",
    "codebuild:CreateReportGroup",
    "codebuild:CreateReport",
    "codebuild:UpdateReport",
    "codebuild:BatchPutTestCases",
    "codebuild:BatchPutCodeCoverages",
    "s3:GetObject*",
    "s3:GetBucket*",
    "s3:List*",
    "s3:DeleteObject*",
    "s3:PutObject",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:Abort*",
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
}


def _flat(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Join" in value:
        return "".join(_flat(v) for v in value["Fn::Join"][1])
    if value == {"Ref": "AWS::Partition"}:
        return "aws"  # without the partition-literals flag
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"<{'.'.join(value['Fn::GetAtt'])}>"
    return json.dumps(value)


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_termination_protection_is_applied_after_deploying_where_data_is_retained(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    """CDK Pipelines' change-set actions never apply a stack's termination protection: a step does."""
    actions = _actions(templates[env], env.capitalize())
    target = example_config.env(env)
    if not target.retain_data:
        assert "TerminationProtection" not in actions
        return
    protect = actions["TerminationProtection"]
    deploys = [a for a in actions.values() if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert all(a["RunOrder"] < protect["RunOrder"] for a in deploys)
    assert protect["RunOrder"] < actions["Verify"]["RunOrder"]
    logical_id, project = _project(templates[env], "TerminationProtection")
    commands = json.loads(_buildspec_text(project))["phases"]["build"]["commands"]
    deploy_role = f"arn:aws:iam::{target.account}:role/cdk-hnb659fds-deploy-role-{target.account}-{target.region}"
    assert commands == buildspec.termination_protection_commands(
        deploy_role, target.region, [f"acme-lake-{env}-test-marker"]
    )
    assumed = [s for s in _role_statements(templates[env], logical_id) if "sts:AssumeRole" in _as_list(s["Action"])]
    assert [_flat(r) for s in assumed for r in _as_list(s["Resource"])] == [deploy_role]
    granted = {a for s in _role_statements(templates[env], logical_id) for a in _as_list(s["Action"])}
    assert granted - {"sts:AssumeRole"} <= _ARTIFACT_AND_BUILD_ACTIONS


def test_a_verified_infra_deployment_starts_the_etl_pipeline_of_its_environment(
    example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    for env, template in templates.items():  # these are the infra pipelines
        actions = _actions(template, env.capitalize())
        start = actions["StartDownstream"]
        assert start["RunOrder"] > actions["Verify"]["RunOrder"]
        logical_id, project = _project(template, "StartDownstream")
        etl = names_for(example_config, env).pipeline_name("etl")
        commands = json.loads(_buildspec_text(project))["phases"]["build"]["commands"]
        assert commands == buildspec.start_pipeline_commands(etl, "eu-west-1")
        statements = _role_statements(template, logical_id)
        starts = [s for s in statements if "codepipeline:StartPipelineExecution" in _as_list(s["Action"])]
        assert [_flat(r) for s in starts for r in _as_list(s["Resource"])] == [
            f"arn:aws:codepipeline:eu-west-1:111111111111:{etl}"
        ]


def test_a_stage_that_reads_only_what_it_writes_gets_no_contract_check(templates: dict[str, Any]) -> None:
    for env, template in templates.items():  # the infra-like tiny stage reads nothing from outside
        assert "ContractCheck" not in _actions(template, env.capitalize())


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_etl_deployments_start_with_the_contract_check(
    env: str, example_config: LakeConfig, connection_templates: dict[str, Any]
) -> None:
    """Before approval and deployment: the parameters the stage reads exist, through the lookup role."""
    template = connection_templates[env]
    actions = _actions(template, env.capitalize())
    check = actions["ContractCheck"]
    others = [a for name, a in actions.items() if name != "ContractCheck"]
    assert all(check["RunOrder"] < a["RunOrder"] for a in others)
    target = example_config.env(env)
    lookup = f"arn:aws:iam::{target.account}:role/cdk-hnb659fds-lookup-role-{target.account}-{target.region}"
    logical_id, project = _project(template, "ContractCheck")
    commands = json.loads(_buildspec_text(project))["phases"]["build"]["commands"]
    assert commands == buildspec.contract_check_commands(
        lookup,
        target.region,
        [f"/acme-lake/{env}/contract/notifications/alarm-topic-arn"],
        f"the infra pipeline of {env} writes them and starts this one when it succeeds",
    )
    assumed = [s for s in _role_statements(template, logical_id) if "sts:AssumeRole" in _as_list(s["Action"])]
    assert [_flat(r) for s in assumed for r in _as_list(s["Resource"])] == [lookup]


def test_the_contract_check_leaves_out_what_the_stage_writes_and_the_bootstrap_version() -> None:
    app = lake_app()
    stage = cdk.Stage(app, "Stage", env=cdk.Environment(account="222222222222", region="eu-west-1"))
    writer, reader = cdk.Stack(stage, "Writer"), cdk.Stack(stage, "Reader")
    ssm.StringParameter(writer, "Own", parameter_name="/lake/own", string_value="x")
    for name in ("/lake/own", "/lake/outside", "/cdk-bootstrap/hnb659fds/version"):
        cdk.CfnOutput(reader, name.replace("/", ""), value=ssm.StringParameter.value_for_string_parameter(reader, name))
    assert stage_reads_from_outside(stage) == ["/lake/outside"]


def test_the_etl_pipelines_start_nothing(connection_templates: dict[str, Any]) -> None:
    for env, template in connection_templates.items():  # the etl pipelines
        assert "StartDownstream" not in _actions(template, env.capitalize())


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_steps_have_explicit_timeouts_and_verify_reads_only_where_data_is_retained(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    _, synth = _project(templates[env], "Synth")
    _, verify = _project(templates[env], "Verify")
    assert synth["Properties"]["TimeoutInMinutes"] == 60
    assert verify["Properties"]["TimeoutInMinutes"] == (20 if example_config.env(env).retain_data else 180)


def test_the_example_config_retains_data_in_prod_only(example_config: LakeConfig) -> None:
    # guards the parametrized test above against a config in which it would assert nothing interesting
    assert [e for e in example_config.environment_names if example_config.env(e).retain_data] == ["prod"]


def test_prod_asks_for_approval_before_any_deployment(templates: dict[str, Any]) -> None:
    actions = _actions(templates["prod"], "Prod")
    deploys = [a for a in actions.values() if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert deploys and all(a["RunOrder"] > actions["Approve"]["RunOrder"] for a in deploys)


# --- synth step and its role ----------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_synth_pulls_config_checks_then_synthesizes(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    _, project = _project(templates[env], "Synth")
    spec = json.loads(_buildspec_text(project))
    commands = spec["phases"]["build"]["commands"]
    secret = lake_names(example_config).global_config_secret
    assert commands == [
        f"lake-config pull --secret {secret} --region eu-west-1 --out .lake/config.json",
        "ruff check .",
        "ruff format --check .",
        "mypy",
        "python -m pytest -q",
        "npx cdk synth -c config=.lake/config.json",
    ]
    install = spec["phases"]["install"]["commands"]
    guard = [install[0]] if example_config.previous_environment(env) else []  # the promotion guard, first
    assert install == [*guard, "npm ci --no-audit --no-fund", INDEX_LOGIN, PIP_INSTALL]


def test_synth_role_reads_only_the_global_config_secret(example_config: LakeConfig, templates: dict[str, Any]) -> None:
    template = templates["prod"]
    logical_id, _ = _project(template, "Synth")
    statements = _role_statements(template, logical_id)
    secret_statements = [s for s in statements if any(a.startswith("secretsmanager:") for a in _as_list(s["Action"]))]
    assert len(secret_statements) == 1
    (resource,) = _as_list(secret_statements[0]["Resource"])
    secret = lake_names(example_config).global_config_secret
    assert _flat(resource) == f"arn:aws:secretsmanager:eu-west-1:111111111111:secret:{secret}-??????"
    assert set(_as_list(secret_statements[0]["Action"])) == {
        "secretsmanager:GetSecretValue",
        "secretsmanager:DescribeSecret",
    }
    # decrypt with any key other than the global-config key, through anything but Secrets Manager, is not granted
    decrypt = [s for s in statements if s.get("Sid") == "DecryptGlobalConfigSecretOnly"]
    (statement,) = decrypt
    assert statement["Action"] == "kms:Decrypt"
    conditions = statement["Condition"]
    assert conditions["StringEquals"] == {"kms:ViaService": "secretsmanager.eu-west-1.amazonaws.com"}
    assert conditions["ForAnyValue:StringEquals"] == {
        "kms:ResourceAliases": lake_names(example_config).global_config_key_alias
    }
    assert _flat(conditions["StringLike"]["kms:EncryptionContext:SecretARN"]) == _flat(resource)


def test_no_other_role_can_read_secrets(templates: dict[str, Any]) -> None:
    for env, template in templates.items():
        synth_id, _ = _project(template, "Synth")
        synth_role = template["Resources"][synth_id]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
        for logical_id, policy in _of_type(template, "AWS::IAM::Policy").items():
            if {"Ref": synth_role} in policy["Properties"]["Roles"]:
                continue
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
                assert not any(a.startswith("secretsmanager:") for a in _as_list(statement["Action"])), (
                    env,
                    logical_id,
                )


# --- verify step --------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_verify_step_runs_the_repo_check_through_exactly_its_verify_role(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    template = templates[env]
    actions = _actions(template, env.capitalize())
    deploys = [a for a in actions.values() if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert actions["Verify"]["RunOrder"] > max(a["RunOrder"] for a in deploys)
    logical_id, project = _project(template, "Verify")
    account = example_config.env(env).account
    role_arn = f"arn:aws:iam::{account}:role/{names_for(example_config, env).verify_role_name('infra')}"
    # the ARN is shell-quoted only when it holds a partition token (without the partition-literals flag)
    spec = _flat(project["Properties"]["Source"]["BuildSpec"]).replace("'", "")
    assert (
        f"python -m {VERIFY_MODULE} --config .lake/config.json --env {env} --role-arn {role_arn} --region eu-west-1"
        in spec
    )
    assumes = [s for s in _role_statements(template, logical_id) if "sts:AssumeRole" in _as_list(s["Action"])]
    assert [_flat(r) for s in assumes for r in _as_list(s["Resource"])] == [role_arn]
    # the step runs as the named role the verify role trusts (lake_pipelines.trust), and nothing else does
    step_role = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    assert template["Resources"][step_role]["Properties"]["RoleName"] == names_for(
        example_config, env
    ).verify_step_role_name("infra")
    target_stack = cdk.Stack(
        lake_app(context=APP_CONTEXT), "Target", env=cdk.Environment(account=account, region="eu-west-1")
    )
    principal = verify_step_principal(target_stack, example_config, env, "infra")
    assert principal.policy_fragment.conditions == {
        "ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::111111111111:role/acme-lake-{env}-infra-verify-step"}
    }


# --- the team's package index ----------------------------------------------------------------------------
INDEX_LOGIN = (
    "aws codeartifact login --tool pip --domain acme-lake-packages --domain-owner 111111111111 "
    "--repository acme-lake-python --region eu-west-1"
)
PIP_INSTALL = "python -m pip install --disable-pip-version-check --no-input -r requirements.txt"
# Exactly what `aws codeartifact login` + `pip install` need (IAM service authorization reference):
# the token on the domain, the endpoint and reads on the team repository (never its upstream), and the STS
# bearer token, which has no resource type, for CodeArtifact only.
INDEX_STATEMENTS = [
    {
        "Action": "codeartifact:GetAuthorizationToken",
        "Effect": "Allow",
        "Resource": "arn:aws:codeartifact:eu-west-1:111111111111:domain/acme-lake-packages",
        "Sid": "PackageIndexToken",
    },
    {
        "Action": ["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
        "Effect": "Allow",
        "Resource": "arn:aws:codeartifact:eu-west-1:111111111111:repository/acme-lake-packages/acme-lake-python",
        "Sid": "PackageIndexRead",
    },
    {
        "Action": "sts:GetServiceBearerToken",
        "Condition": {"StringEquals": {"sts:AWSServiceName": "codeartifact.amazonaws.com"}},
        "Effect": "Allow",
        "Resource": "*",
        "Sid": "PackageIndexBearerToken",
    },
]


def _index_statements(statements: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        s
        for s in statements
        if any(a.startswith("codeartifact:") or a == "sts:GetServiceBearerToken" for a in _as_list(s["Action"]))
    ]


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
@pytest.mark.parametrize("step", ["Synth", "Verify"])
def test_steps_that_install_requirements_log_in_to_the_package_index_first(
    env: str, step: str, templates: dict[str, Any]
) -> None:
    _, project = _project(templates[env], step)
    install = json.loads(_buildspec_text(project))["phases"]["install"]["commands"]
    assert install.count(INDEX_LOGIN) == 1
    pip = [i for i, command in enumerate(install) if "pip install" in command]
    assert pip == [install.index(PIP_INSTALL)]
    assert install.index(INDEX_LOGIN) == pip[0] - 1  # right before it: nothing in between can reset pip's index


def test_only_the_synth_and_verify_steps_install_python_requirements(templates: dict[str, Any]) -> None:
    for env, template in templates.items():
        installing = sorted(
            k for k, p in _of_type(template, "AWS::CodeBuild::Project").items() if "pip install" in _buildspec_text(p)
        )
        assert [k for k in installing if "Synth" in k or "Verify" in k] == installing, env
        assert len(installing) == 2, env


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
@pytest.mark.parametrize("step", ["Synth", "Verify"])
def test_installing_roles_hold_exactly_the_package_index_statements(
    env: str, step: str, templates: dict[str, Any]
) -> None:
    template = templates[env]
    logical_id, _ = _project(template, step)
    statements = _role_statements(template, logical_id)
    assert _index_statements(statements) == INDEX_STATEMENTS
    # CodeArtifact decrypts the domain's assets through its own grant: readers get no key permission for it,
    # only the artifact key and (synth) the global-config decrypt they had before
    kms = [s for s in statements if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert kms and all(
        s.get("Sid") == "DecryptGlobalConfigSecretOnly"
        or _flat(s["Resource"]).startswith("<PipelineArtifactsBucketEncryptionKey")
        for s in kms
    )


def test_no_other_role_may_use_the_package_index(templates: dict[str, Any]) -> None:
    for env, template in templates.items():
        installing = {
            template["Resources"][_project(template, step)[0]]["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
            for step in ("Synth", "Verify")
        }
        for logical_id, policy in _of_type(template, "AWS::IAM::Policy").items():
            if {r["Ref"] for r in policy["Properties"]["Roles"]} <= installing:
                continue
            assert _index_statements(policy["Properties"]["PolicyDocument"]["Statement"]) == [], (env, logical_id)


def test_the_bearer_token_wildcard_is_acknowledged_only_on_the_installing_roles(assembly: Path) -> None:
    found = [a for a in acknowledgements(assembly) if a.rule == "AwsSolutions-IAM5[Resource::*]"]
    bearer = [a for a in found if a.reason == CODEARTIFACT_LOGIN_REASON]
    # one Synth and one Verify role policy per pipeline stack, and no other policy
    assert sorted((a.template, "Synth" in a.logical_id, "Verify" in a.logical_id) for a in bearer) == sorted(
        (f"acme-lake-infra-{env}-pipeline.template.json", step == "Synth", step == "Verify")
        for env in ("dev", "test", "prod")
        for step in ("Synth", "Verify")
    )
    # and the `*` of those two policies is acknowledged for that reason only
    assert [a for a in found if ("Synth" in a.logical_id or "Verify" in a.logical_id) and a not in bearer] == []


# --- notifications --------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_notification_rule_sends_pipeline_events_to_the_deployment_topic(
    env: str, example_config: LakeConfig, templates: dict[str, Any]
) -> None:
    template = templates[env]
    (rule,) = _of_type(template, "AWS::CodeStarNotifications::NotificationRule").values()
    props = rule["Properties"]
    assert sorted(props["EventTypeIds"]) == sorted(NOTIFIED_EVENTS)
    (pipeline_id,) = _of_type(template, "AWS::CodePipeline::Pipeline")
    assert _flat(props["Resource"]).endswith(f":codepipeline:eu-west-1:111111111111:<{pipeline_id}>")
    (target,) = props["Targets"]
    assert target["TargetType"] == "SNS"
    topic = lake_names(example_config).pipeline_topic
    assert _flat(target["TargetAddress"]) == f"arn:aws:sns:eu-west-1:111111111111:{topic}"


# --- security and pinning --------------------------------------------------------------------------------
def test_no_wildcard_actions_anywhere(assembly: Path) -> None:
    from lake_pipelines.checks import templates as all_templates

    offenders = []
    for path in all_templates(assembly):
        resources = json.loads(path.read_text()).get("Resources", {})
        for logical_id, resource in resources.items():
            if resource["Type"] not in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy", "AWS::IAM::Role"):
                continue
            documents = [resource["Properties"].get("PolicyDocument")] + [
                p["PolicyDocument"] for p in resource["Properties"].get("Policies", [])
            ]
            for document in filter(None, documents):
                for statement in document["Statement"]:
                    for action in _as_list(statement.get("Action", [])):
                        if action == "*" or action.endswith(":*"):
                            offenders.append(f"{path.name}:{logical_id}:{action}")
    assert offenders == []


@pytest.mark.parametrize("env", ["dev", "test", "prod"])
def test_the_artifact_bucket_is_versioned_and_keeps_superseded_versions_for_a_bounded_time(
    env: str, templates: dict[str, Any]
) -> None:
    (bucket,) = _of_type(templates[env], "AWS::S3::Bucket").values()
    assert bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}
    (rule,) = bucket["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["NoncurrentVersionExpiration"] == {"NoncurrentDays": 30} and rule["Status"] == "Enabled"


def test_artifacts_are_encrypted_with_a_rotated_key(templates: dict[str, Any]) -> None:
    template = Template.from_json(templates["prod"])
    template.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})
    template.has_resource_properties(
        "AWS::S3::Bucket",
        {
            "BucketEncryption": {
                "ServerSideEncryptionConfiguration": [
                    {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": Match.any_value()}}
                ]
            }
        },
    )


def test_cli_version_matches_package_json_and_self_mutation_installs_it(templates: dict[str, Any]) -> None:
    package = json.loads((DEPLOYMENT_DIR / "package.json").read_text())
    assert package["devDependencies"]["aws-cdk"] == CDK_CLI_VERSION
    _, project = _project(templates["dev"], "SelfMutation")
    assert f"npm install -g aws-cdk@{CDK_CLI_VERSION}" in _buildspec_text(project)


def test_cdk_nag_clean_and_every_acknowledgement_has_a_reason(assembly: Path) -> None:
    found = acknowledgements(assembly)
    assert found, "the pipeline acknowledges the generated wildcard grants"
    short = [a for a in found if len(a.reason.strip()) < MIN_REASON_LENGTH]
    assert short == []


def test_cfn_lint_reports_no_errors(assembly: Path) -> None:
    assert cfn_lint(assembly) == []


# --- other sources and orders -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def connection_templates(example_config: LakeConfig, stage_factory: Any, module_dir: Path) -> dict[str, dict[str, Any]]:
    raw = example_config.model_dump(mode="json")
    raw["repositories"]["etl"]["source"] = {
        "provider": "codeconnections",
        "connection_arn": CONNECTION_ARN,
        "owner": "acme",
        "repository_name": "lake-etl",
    }
    raw["repositories"]["etl"]["branches"] = {"test": "release/test"}
    config = from_mapping(raw)
    outdir = module_dir / "connection"
    # the ETL-like tiny stage reads one parameter of its environment's infra contract
    stacks = _build(
        config, "etl", outdir, stage_factory, APP_CONTEXT, reads=lambda env: [names_for(config, env).alarm_topic_arn]
    )
    return {
        env: json.loads((outdir / f"{stack.stack_name}.template.json").read_text()) for env, stack in stacks.items()
    }


def test_connection_source_is_read_by_the_source_action_only(connection_templates: dict[str, Any]) -> None:
    (source,) = _actions(connection_templates["test"], "Source").values()
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["FullRepositoryId"] == "acme/lake-etl"
    assert source["Configuration"]["BranchName"] == "release/test"
    assert source["Configuration"]["ConnectionArn"] == CONNECTION_ARN
    _, project = _project(connection_templates["prod"], "Synth")
    guard = json.loads(_buildspec_text(project))["phases"]["install"]["commands"][0]
    # prod's predecessor is test: the guard asks test's pipeline, whatever branch test builds
    assert "--pipeline-name acme-lake-etl-test" in guard and "REFUSED" in guard
    assert "codecommit credential-helper" not in guard and "git " not in guard


def test_every_role_using_the_connection_may_use_it_under_its_own_prefix(connection_templates: dict[str, Any]) -> None:
    """A codeconnections ARN is matched by `codeconnections:UseConnection` only: CDK's own grants use the
    codestar-connections prefix, so each grant must carry the connection's own prefix too."""
    for env, template in connection_templates.items():
        policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::IAM::Policy"]
        using = [p for p in policies if "UseConnection" in json.dumps(p)]
        assert len(using) == 1, env  # the source action's role: no build step clones the repository
        for policy in using:
            own = [
                s
                for s in policy["Properties"]["PolicyDocument"]["Statement"]
                if "codeconnections:UseConnection" in _as_list(s["Action"])
            ]
            assert own and {r for s in own for r in _as_list(s["Resource"])} == {CONNECTION_ARN}, env


def test_a_codestar_connections_arn_keeps_its_own_prefix() -> None:
    from lake_pipelines.pipeline import use_connection_action

    old = "arn:aws:codestar-connections:eu-west-1:111111111111:connection/00000000-0000-0000-0000-000000000000"
    assert use_connection_action(old) == "codestar-connections:UseConnection"
    assert use_connection_action(CONNECTION_ARN) == "codeconnections:UseConnection"


def test_unknown_repository_or_environment_is_refused(example_config: LakeConfig, stage_factory: Any) -> None:
    app = lake_app()
    with pytest.raises(KeyError, match="unknown repository 'docs'"):
        BranchPipelineStack(
            app, "A", config=example_config, repository="docs", environment="dev",
            stage_factory=stage_factory(example_config), verify_module=VERIFY_MODULE,
        )  # fmt: skip
    with pytest.raises(KeyError, match="unknown environment 'qa'"):
        BranchPipelineStack(
            app, "B", config=example_config, repository="infra", environment="qa",
            stage_factory=stage_factory(example_config), verify_module=VERIFY_MODULE,
        )  # fmt: skip


def test_a_target_in_another_region_synthesizes_with_its_support_stack(
    example_config: LakeConfig, stage_factory: Any, module_dir: Path
) -> None:
    raw = example_config.model_dump(mode="json")
    raw["environments"]["prod"]["region"] = "eu-central-1"
    outdir = module_dir / "other-region"
    stacks = _build(from_mapping(raw), "infra", outdir, stage_factory)
    manifest = json.loads((outdir / "manifest.json").read_text())
    prod_stack = stacks["prod"].stack_name
    # CDK Pipelines keeps the prod pipeline's artifacts for that region in a support stack of the deployment
    # account there: what `lakeops bootstrap` bootstraps that region of the deployment account for
    support = [
        artifact["properties"].get("stackName", name)
        for name, artifact in manifest["artifacts"].items()
        if artifact.get("environment") == "aws://111111111111/eu-central-1"
    ]
    assert support == [f"{prod_stack}-support-eu-central-1"]
    template = json.loads((outdir / f"{prod_stack}.template.json").read_text())
    deploys = [a for a in _actions(template, "Prod").values() if a["ActionTypeId"]["Provider"] == "CloudFormation"]
    assert deploys and all(a["Region"] == "eu-central-1" for a in deploys)
