"""`lakeops bootstrap`: the golden plan for the example config, the shipped policy, and apply against moto."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import pytest
from moto import mock_aws

from datalake_config import LakeConfig, from_mapping, lake_names
from datalake_config.publish import publisher_policy, publisher_role, publisher_trust_policy
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from lake_pipelines.execution_policy import MANAGED_POLICY_MAX_CHARS, execution_policy_parts
from lakeops import cli
from lakeops.bootstrap import (
    BOOTSTRAP_STACK,
    PROJECT_ROOT,
    REQUIRED_BOOTSTRAP_VERSION,
    BootstrapError,
    BootstrapOptions,
    Bootstrapper,
    Command,
    RunResult,
    StepKind,
    build_plan,
    parse_profiles,
    profile_session,
    render_plan,
)

ROOT = PROJECT_ROOT
DEP, DEV, TEST, PROD = "111111111111", "222222222222", "333333333333", "444444444444"
POLICIES = ",".join(f"arn:aws:iam::{{a}}:policy/acme-lake-cfn-execution{suffix}" for suffix in ("", "-2", "-3"))
# The plan shows the config path relative to each command's folder: in the workspace the example config is
# shared-config/config.yaml (the package data links to it), in a lone checkout a file of the installed package.
_CONFIG = EXAMPLE_CONFIG_PATH.resolve()


def _shown(cwd: Path) -> str:
    return os.path.relpath(_CONFIG, cwd) if _CONFIG.is_relative_to(ROOT.resolve()) else str(_CONFIG)


CFG = f"-c config={_shown(ROOT / 'deployment-account')}"
ROOT_CFG = _shown(ROOT)

PIPELINES_POLICIES = ",".join(
    f"arn:aws:iam::{DEP}:policy/acme-lake-pipelines-cfn-execution{suffix}" for suffix in ("", "-2")
)

GOLDEN_COMMANDS = [
    None,
    f"npx cdk bootstrap aws://{DEP}/eu-west-1 --profile acme-lake-deployment "
    f"--cloudformation-execution-policies {PIPELINES_POLICIES}",
    None,
    f"npx cdk bootstrap aws://{DEV}/eu-west-1 --profile acme-lake-dev --trust {DEP} "
    f"--cloudformation-execution-policies {POLICIES.format(a=DEV)}",
    None,
    None,
    f"npx cdk bootstrap aws://{TEST}/eu-west-1 --profile acme-lake-test --trust {DEP} "
    f"--cloudformation-execution-policies {POLICIES.format(a=TEST)}",
    None,
    None,
    f"npx cdk bootstrap aws://{PROD}/eu-west-1 --profile acme-lake-prod --trust {DEP} "
    f"--cloudformation-execution-policies {POLICIES.format(a=PROD)}",
    None,
    "cd deployment-account && npx cdk deploy acme-lake-deployment --require-approval never "
    f"--profile acme-lake-deployment {CFG}",
    f"lakeops config publish --yes --config {ROOT_CFG} --profile acme-lake-deployment",
    f"lakeops release publish --build --skip-existing --yes --config {ROOT_CFG} "
    "--profile acme-lake-deployment --source shared-config --source deployment-account/library",
    *[
        f"cd {folder} && npx cdk deploy acme-lake-{repo}-dev-pipeline acme-lake-{repo}-test-pipeline "
        f"acme-lake-{repo}-prod-pipeline --require-approval never --profile acme-lake-deployment {CFG}"
        for repo, folder in (("infra", "infra-repo"), ("etl", "etl-jobs-repo"))
    ],
]
GOLDEN_STEPS = [
    (
        "create or update the pipeline-role boundary and the CloudFormation execution policy of the deployment account",
        DEP,
        "acme-lake-deployment",
    ),
    ("bootstrap the deployment account", DEP, "acme-lake-deployment"),
    ("create or update the stage-role boundary and the CloudFormation execution policy in dev", DEV, "acme-lake-dev"),
    ("bootstrap dev, trusting the deployment account", DEV, "acme-lake-dev"),
    ("create or update the config publisher role in dev", DEV, "acme-lake-dev"),
    (
        "create or update the stage-role boundary and the CloudFormation execution policy in test",
        TEST,
        "acme-lake-test",
    ),
    ("bootstrap test, trusting the deployment account", TEST, "acme-lake-test"),
    ("create or update the config publisher role in test", TEST, "acme-lake-test"),
    (
        "create or update the stage-role boundary and the CloudFormation execution policy in prod",
        PROD,
        "acme-lake-prod",
    ),
    ("bootstrap prod, trusting the deployment account", PROD, "acme-lake-prod"),
    ("create or update the config publisher role in prod", PROD, "acme-lake-prod"),
    ("deploy the deployment-account stack", DEP, "acme-lake-deployment"),
    ("publish the shared config (global-config secret, environment facts)", DEP, "acme-lake-deployment"),
    ("release the shared packages to the package index", DEP, "acme-lake-deployment"),
    *[
        (f"deploy the {repo} pipelines (dev, test, prod branches)", DEP, "acme-lake-deployment")
        for repo in ("infra", "etl")
    ],
]

# What the deployment-account step tells about the package index the pipelines install from.
GOLDEN_NOTES = {
    "deploy the deployment-account stack": (
        "creates the package index: CodeArtifact domain acme-lake-packages, repository acme-lake-python "
        "(upstream acme-lake-public-pypi, connected to public:pypi)",
        "creates acme-lake-environment-branch-protection: attach it to the developers' roles or groups "
        "(direct pushes to environment branches after the first are denied; lakeops promote moves them)",
        "creates acme-lake-approval-restriction: attach it to everyone who uses the pipelines "
        "(only arn:aws:iam::111111111111:role/acme-lake-operator may approve prod)",
    ),
    "release the shared packages to the package index": (
        "builds the wheels from the folders above and publishes the versions the index does not hold yet",
    ),
}


def _options(**kwargs: Any) -> BootstrapOptions:
    return BootstrapOptions(config_path=EXAMPLE_CONFIG_PATH, project_root=ROOT, **kwargs)


# --- plan ---------------------------------------------------------------------------------------------
def test_plan_is_the_golden_ordered_list(example_config: LakeConfig) -> None:
    steps = build_plan(example_config, _options())
    assert [(s.name, s.account, s.profile) for s in steps] == GOLDEN_STEPS
    assert [s.command.display(ROOT) if s.command else None for s in steps] == GOLDEN_COMMANDS
    assert {s.name: s.notes for s in steps if s.notes} == GOLDEN_NOTES
    assert {s.region for s in steps} == {"eu-west-1"}


def test_a_target_in_another_region_bootstraps_the_deployment_account_there_too(example_config: LakeConfig) -> None:
    raw = example_config.model_dump(mode="json")
    raw["environments"]["prod"]["region"] = "eu-central-1"
    steps = build_plan(from_mapping(raw), _options())
    bootstraps = [(s.account, s.region) for s in steps if s.kind is StepKind.CDK_BOOTSTRAP]
    assert bootstraps == [
        (DEP, "eu-west-1"),
        (DEP, "eu-central-1"),  # the prod pipelines' cross-region support stack lives there
        (DEV, "eu-west-1"),
        (TEST, "eu-west-1"),
        (PROD, "eu-central-1"),
    ]
    extra = next(s for s in steps if s.account == DEP and s.region == "eu-central-1")
    assert extra.command is not None and extra.command.argv[2] == f"aws://{DEP}/eu-central-1"
    # the example config keeps every account in one region: no extra step there
    plain = build_plan(example_config, _options())
    assert [s.region for s in plain if s.account == DEP and s.kind is StepKind.CDK_BOOTSTRAP] == ["eu-west-1"]


def test_plan_command_prints_every_step_with_account_region_and_profile(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["bootstrap", "plan"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("lakeops bootstrap: 16 steps for acme-lake (deployment account 111111111111, eu-west-1)")
    for number, (name, account, profile) in enumerate(GOLDEN_STEPS, start=1):
        heading = rf"^\s*{number}\. {re.escape(name)}\n\s+account {account}  region eu-west-1  profile {profile}$"
        assert re.search(heading, out, re.M), name
    for command in filter(None, GOLDEN_COMMANDS):
        assert f"$ {command}\n" in out
    for notes in GOLDEN_NOTES.values():
        assert all(f"   {note}\n" in out for note in notes)
    for env in ("dev", "test", "prod"):
        assert (
            f"   boto3: create or update IAM role acme-lake-{env}-config-publisher, assumable only by "
            "arn:aws:iam::111111111111:role/acme-lake-operator\n"
        ) in out
        assert (
            "   inline policy publish-environment-facts: ssm:DeleteParameter, ssm:GetParametersByPath, "
            f"ssm:PutParameter on /acme-lake/{env}/facts (nothing else)\n"
        ) in out
    assert out.rstrip().endswith(
        "then: push the branches (dev, prod, test) to the new CodeCommit repositories (acme-lake-infra, "
        "acme-lake-etl); CodeCommit creates a branch on its first push, and each pipeline starts from its branch"
    )


def test_admin_replaces_the_shipped_policy_with_administrator_access(example_config: LakeConfig) -> None:
    steps = build_plan(example_config, _options(admin=True))
    assert StepKind.EXECUTION_POLICY not in {s.kind for s in steps}
    # publishing never depends on the execution policy: the publisher roles are there either way
    assert [s.account for s in steps if s.kind is StepKind.PUBLISHER_ROLE] == [DEV, TEST, PROD]
    bootstraps = [s for s in steps if s.kind is StepKind.CDK_BOOTSTRAP and s.trusted_account]
    assert [s.command.argv[-1] for s in bootstraps if s.command] == ["arn:aws:iam::aws:policy/AdministratorAccess"] * 3


def test_endpoint_url_reaches_the_cdk_cli_and_publish(example_config: LakeConfig) -> None:
    steps = build_plan(example_config, _options(endpoint_url="https://localhost:4566"))
    commands = [s.command for s in steps if s.command]
    assert all(c.env == {"AWS_ENDPOINT_URL": "https://localhost:4566"} for c in commands if c.argv[0] == "cdk")
    publish, release = [c for c in commands if c.argv[0] == "lakeops"]
    assert publish.argv[-2:] == ("--endpoint-url", "https://localhost:4566")
    # CodeArtifact is never the emulator's: a stand-in is named by AWS_ENDPOINT_URL_CODEARTIFACT instead
    assert release.argv[:3] == ("lakeops", "release", "publish") and "--endpoint-url" not in release.argv


def test_profiles_and_app_directories_can_be_overridden(example_config: LakeConfig, tmp_path: Path) -> None:
    profiles = parse_profiles(example_config, ["deployment=ops", "prod=lake-prod-admin"])
    steps = build_plan(example_config, _options(profiles=profiles, app_dirs={"infra": tmp_path}))
    assert steps[0].profile == "ops"
    assert {s.profile for s in steps if s.account == PROD} == {"lake-prod-admin"}
    infra = [s for s in steps if any("-infra-" in name for name in s.stack_names)]
    assert {s.command.cwd for s in infra if s.command} == {tmp_path.resolve()}


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("qa=lake-qa", "unknown role 'qa'; known: deployment, dev, test, prod"),
        ("deployment", "expected ROLE=PROFILE"),
        ("dev=", "expected ROLE=PROFILE"),
    ],
)
def test_bad_profile_options_are_refused_by_name(example_config: LakeConfig, pair: str, message: str) -> None:
    with pytest.raises(BootstrapError, match=re.escape(message)):
        parse_profiles(example_config, [pair])


def test_bad_profile_option_exits_1_before_any_aws_call(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bootstrap", "apply", "--yes", "--profile", "staging=x"]) == 1
    assert "unknown role 'staging'" in capsys.readouterr().err


# --- the shipped policy ---------------------------------------------------------------------------------
def test_execution_policy_is_filled_enumerated_and_fits(example_config: LakeConfig) -> None:
    parts = execution_policy_parts(example_config, DEV, "eu-west-1")
    assert [p.name for p in parts] == [f"acme-lake-cfn-execution{s}" for s in ("", "-2", "-3")]
    for part in parts:
        text = json.dumps(part.document, separators=(",", ":"))
        assert len(text) <= MANAGED_POLICY_MAX_CHARS
        assert not re.search(r"\{[a-z]+\}", text)
        for statement in part.document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not [a for a in actions if "*" in a], statement["Sid"]  # not even `ec2:Describe*`
    resources = [
        r
        for p in parts
        for s in p.document["Statement"]
        for r in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
    ]
    assert all(DEV in r or r == "*" or r.startswith("arn:aws:s3:::") for r in resources)
    scoped_to_lake = [r for r in resources if "acme-lake" in r]
    assert len(scoped_to_lake) >= 10


def test_policy_iam_statements_name_only_the_lake_roles(example_config: LakeConfig) -> None:
    parts = execution_policy_parts(example_config, DEV, "eu-west-1")
    iam = [s for p in parts for s in p.document["Statement"] if any(a.startswith("iam:") for a in _actions(s))]
    # iam:ListRoles (the role handler's list) supports no resource type: it alone may stand on `*`
    on_any = [s for s in iam if s["Resource"] == "*"]
    assert {a for s in on_any for a in _actions(s) if a.startswith("iam:")} == {"iam:ListRoles"}
    assert {s["Resource"] for s in iam if s not in on_any} == {
        f"arn:aws:iam::{DEV}:role/acme-lake-*",
        f"arn:aws:iam::{DEV}:role/aws-service-role/*",
    }
    # the actions that would make the policy admin-equivalent are allowed only under a condition
    for action in ("iam:PassRole", "iam:AttachRolePolicy", "iam:DetachRolePolicy", "iam:CreateServiceLinkedRole"):
        granting = [s for s in iam if action in _actions(s)]
        assert granting, action
        assert all(s.get("Condition") for s in granting), action


def test_policy_comments_never_reach_iam(example_config: LakeConfig) -> None:
    for part in execution_policy_parts(example_config, DEV, "eu-west-1"):
        assert "Comment" not in part.document
        assert all(set(s) <= {"Sid", "Effect", "Action", "Resource", "Condition"} for s in part.document["Statement"])


def _actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def test_required_bootstrap_version_matches_the_pinned_cli() -> None:
    # the CLI on PATH: this repository's node_modules, or the workspace's in the monorepo
    cli = shutil.which("cdk")
    assert cli is not None, "the pinned CDK CLI is not on PATH (npm ci)"
    package = Path(cli).resolve().parents[1]
    template = (package / "lib/api/bootstrap/bootstrap-template.yaml").read_text()
    outputs = template[template.index("\nOutputs:") :]
    match = re.search(r"BootstrapVersion:.*?Value: '(\d+)'", outputs, re.S)
    assert match is not None
    assert int(match.group(1)) == REQUIRED_BOOTSTRAP_VERSION


# --- apply against moto --------------------------------------------------------------------------------
BOOTSTRAP_TEMPLATE = {
    "Parameters": {
        key: {"Type": "CommaDelimitedList", "Default": ""}
        for key in ("TrustedAccounts", "TrustedAccountsForLookup", "CloudFormationExecutionPolicies")
    },
    "Resources": {"Marker": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {"BootstrapVersion": {"Value": str(REQUIRED_BOOTSTRAP_VERSION)}},
}
EMPTY_TEMPLATE = {"Resources": {"Marker": {"Type": "AWS::SNS::Topic"}}}


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[dict[str, str]]:
    """moto, with one AWS profile per role whose credentials act in that role's account."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    credentials = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    with mock_aws():
        profiles = {
            "acme-lake-deployment": DEP,
            "acme-lake-dev": DEV,
            "acme-lake-test": TEST,
            "acme-lake-prod": PROD,
            "wrong-account": "999999999999",
        }
        write_profiles(credentials, profiles)
        yield profiles


def write_profiles(path: Path, profiles: dict[str, str]) -> None:
    sts = boto3.client("sts", region_name="eu-west-1")
    parser = configparser.ConfigParser()
    for profile, account in profiles.items():
        creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/operator", RoleSessionName="bootstrap-test")
        parser[profile] = {
            "aws_access_key_id": creds["Credentials"]["AccessKeyId"],
            "aws_secret_access_key": creds["Credentials"]["SecretAccessKey"],
            "aws_session_token": creds["Credentials"]["SessionToken"],
        }
    with path.open("w") as handle:
        parser.write(handle)


class FakeCli:
    """Stands in for the CDK CLI and `lakeops config publish`: records each command line, and leaves
    behind in the emulator what the real command would, so a second apply finds the steps done."""

    def __init__(self, config: LakeConfig, fail_on: str | None = None) -> None:
        self.config = config
        self.fail_on = fail_on
        self.commands: list[Command] = []

    def __call__(self, command: Command) -> RunResult:
        self.commands.append(command)
        argv = command.argv
        if self.fail_on and self.fail_on in " ".join(argv):
            return RunResult(1, ("Deploying...", "AccessDenied: not authorized to perform: iam:CreateRole"))
        session = _profile_session(argv[argv.index("--profile") + 1])
        if argv[:2] == ("cdk", "bootstrap"):
            parameters = {}
            if "--trust" in argv:
                parameters["TrustedAccounts"] = argv[argv.index("--trust") + 1]
            if "--cloudformation-execution-policies" in argv:
                policies = argv[argv.index("--cloudformation-execution-policies") + 1]
                parameters["CloudFormationExecutionPolicies"] = policies
            cloudformation = session.client("cloudformation")
            exists = bool(cloudformation.describe_stacks()["Stacks"])  # only CDKToolkit precedes it here
            (cloudformation.update_stack if exists else cloudformation.create_stack)(
                StackName=BOOTSTRAP_STACK,
                TemplateBody=json.dumps(BOOTSTRAP_TEMPLATE),
                Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
            )
        elif argv[:2] == ("cdk", "deploy"):
            stacks = argv[2 : argv.index("--require-approval")]
            for stack in stacks:
                session.client("cloudformation").create_stack(StackName=stack, TemplateBody=json.dumps(EMPTY_TEMPLATE))
            if lake_names(self.config).deployment_stack_name in stacks:
                # what the real template creates: the secret, without a value
                session.client("secretsmanager").create_secret(Name=lake_names(self.config).global_config_secret)
        elif argv[:3] == ("lakeops", "config", "publish"):
            assert cli.main(list(argv[1:])) == 0
        # `lakeops release publish` against the CodeArtifact stand-in is tested in test_release.py
        return RunResult(0, ("ok",))


def _bootstrapper(config: LakeConfig, runner: FakeCli, **options: Any) -> Bootstrapper:
    return Bootstrapper(config, _options(**options), runner, echo=lambda line: None)


def test_apply_runs_every_step_then_skips_them_all(example_config: LakeConfig, aws: dict[str, str]) -> None:
    runner = FakeCli(example_config)
    steps = build_plan(example_config, _options())
    assert _bootstrapper(example_config, runner).apply(steps) == ["done"] * len(steps)
    assert [c.display(ROOT) for c in runner.commands] == [c for c in GOLDEN_COMMANDS if c]

    # the deployment account deploys under its own shipped policy and pipeline-role boundary
    iam = _session_in(aws, DEP).client("iam")
    names = sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"])
    assert names == ["acme-lake-pipeline-role-boundary", *(f"acme-lake-pipelines-cfn-execution{s}" for s in ("", "-2"))]
    for account in (DEV, TEST, PROD):
        iam = _session_in(aws, account).client("iam")
        names = sorted(p["PolicyName"] for p in iam.list_policies(Scope="Local")["Policies"])
        assert names == [*(f"acme-lake-cfn-execution{s}" for s in ("", "-2", "-3")), "acme-lake-stage-role-boundary"]
        boundary = iam.get_policy(PolicyArn=f"arn:aws:iam::{account}:policy/acme-lake-stage-role-boundary")["Policy"]
        assert boundary["Description"].startswith("Permissions boundary of every role")
    for env, account in (("dev", DEV), ("test", TEST), ("prod", PROD)):
        # created in the target with the target's own credentials, trusting the deployment account's operator
        iam = _session_in(aws, account).client("iam")
        role = iam.get_role(RoleName=f"acme-lake-{env}-config-publisher")["Role"]
        assert role["Arn"] == f"arn:aws:iam::{account}:role/acme-lake-{env}-config-publisher"
        assert _decoded(role["AssumeRolePolicyDocument"]) == publisher_trust_policy(example_config)
        name = f"acme-lake-{env}-config-publisher"
        assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["publish-environment-facts"]
        document = iam.get_role_policy(RoleName=name, PolicyName="publish-environment-facts")["PolicyDocument"]
        assert _decoded(document) == publisher_policy(example_config, env)
        assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
        tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName=name)["Tags"]}
        assert tags["lake:environment"] == env
    # only the target accounts hold publisher roles
    assert [r for r in _session_in(aws, DEP).client("iam").list_roles()["Roles"] if "publisher" in r["RoleName"]] == []
    secret = _session_in(aws, DEP).client("secretsmanager").get_secret_value(SecretId="acme-lake/config/global")
    assert json.loads(secret["SecretString"])["prefix"] == "acme-lake"

    again = FakeCli(example_config)
    outcomes = _bootstrapper(example_config, again).apply(steps)
    # only the release runs again: it skips by itself what the index already holds (--skip-existing)
    assert [c.argv[:3] for c in again.commands] == [("lakeops", "release", "publish")]
    assert [o for o in outcomes if not o.startswith("skipped: ")] == ["done"]
    assert outcomes[0] == "skipped: the role boundary and the execution policy are up to date"
    assert outcomes[2] == "skipped: the role boundary and the execution policy are up to date"
    assert outcomes[4] == "skipped: the config publisher role acme-lake-dev-config-publisher is up to date"
    assert outcomes[12] == "skipped: the published config is current"


def test_apply_refuses_a_profile_of_another_account_before_acting(
    example_config: LakeConfig, aws: dict[str, str]
) -> None:
    runner = FakeCli(example_config)
    options = {"profiles": parse_profiles(example_config, ["test=wrong-account"])}
    steps = build_plan(example_config, _options(**options))
    with pytest.raises(BootstrapError) as refused:
        _bootstrapper(example_config, runner, **options).apply(steps)
    message = str(refused.value)
    assert message.startswith(
        "step 6/16 (create or update the stage-role boundary and the CloudFormation execution policy in test)"
    )
    assert "profile 'wrong-account' has credentials for account 999999999999" in message
    assert "--profile test=PROFILE" in message
    # steps 1-5 ran; nothing in or after the test account did
    assert [c.argv[2] for c in runner.commands] == [f"aws://{DEP}/eu-west-1", f"aws://{DEV}/eu-west-1"]
    assert _session_in(aws, "999999999999").client("iam").list_policies(Scope="Local")["Policies"] == []


def test_apply_stops_at_the_first_failure_with_the_step_and_its_last_lines(
    example_config: LakeConfig, aws: dict[str, str]
) -> None:
    runner = FakeCli(example_config, fail_on="acme-lake-infra-test-pipeline")
    steps = build_plan(example_config, _options())
    with pytest.raises(BootstrapError) as failed:
        _bootstrapper(example_config, runner).apply(steps)
    message = str(failed.value)
    assert message.startswith(
        "step 15/16 (deploy the infra pipelines (dev, test, prod branches)) failed with exit code 1"
    )
    assert "| AccessDenied: not authorized to perform: iam:CreateRole" in message
    assert "cd infra-repo && npx cdk deploy acme-lake-infra-dev-pipeline acme-lake-infra-test-pipeline" in message
    assert "acme-lake-infra-test-pipeline" in runner.commands[-1].argv  # nothing after it ran


def test_changed_policy_gets_a_new_default_version_and_stale_trust_is_bootstrapped_again(
    example_config: LakeConfig, aws: dict[str, str]
) -> None:
    steps = build_plan(example_config, _options())
    _bootstrapper(example_config, FakeCli(example_config)).apply(steps)
    dev = _session_in(aws, DEV)
    arn = f"arn:aws:iam::{DEV}:policy/acme-lake-cfn-execution"
    stale = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
    dev.client("iam").create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(stale), SetAsDefault=True)
    # dev re-bootstrapped by hand without the trust
    cloudformation = dev.client("cloudformation")
    cloudformation.delete_stack(StackName=BOOTSTRAP_STACK)
    cloudformation.create_stack(StackName=BOOTSTRAP_STACK, TemplateBody=json.dumps(BOOTSTRAP_TEMPLATE))

    runner = FakeCli(example_config)
    outcomes = _bootstrapper(example_config, runner).apply(steps)
    assert [c.argv[:3] for c in runner.commands] == [
        ("cdk", "bootstrap", f"aws://{DEV}/eu-west-1"),
        ("lakeops", "release", "publish"),  # idempotent by itself, so it always runs
    ]
    assert outcomes[2:4] == ["done", "done"]
    assert outcomes.count("done") == 3  # the two stale steps and the release, which always runs
    policy = dev.client("iam").get_policy(PolicyArn=arn)["Policy"]
    assert policy["DefaultVersionId"] == "v3"
    document = dev.client("iam").get_policy_version(PolicyArn=arn, VersionId="v3")["PolicyVersion"]["Document"]
    assert document == execution_policy_parts(example_config, DEV, "eu-west-1")[0].document


def test_a_drifted_publisher_role_is_brought_back_to_exactly_the_expected_one(
    example_config: LakeConfig, aws: dict[str, str]
) -> None:
    steps = build_plan(example_config, _options())
    _bootstrapper(example_config, FakeCli(example_config)).apply(steps)
    iam = _session_in(aws, TEST).client("iam")
    name = "acme-lake-test-config-publisher"
    wider = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "ssm:*", "Resource": "*"}]}
    iam.put_role_policy(RoleName=name, PolicyName="publish-environment-facts", PolicyDocument=json.dumps(wider))
    iam.put_role_policy(RoleName=name, PolicyName="added-by-hand", PolicyDocument=json.dumps(wider))
    admin = iam.create_policy(PolicyName="hand-made-admin", PolicyDocument=json.dumps(wider))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=name, PolicyArn=admin)
    anyone = json.loads(json.dumps(publisher_trust_policy(example_config)))
    del anyone["Statement"][0]["Condition"]  # any principal of the deployment account
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(anyone))

    lines: list[str] = []
    runner = FakeCli(example_config)
    outcomes = Bootstrapper(example_config, _options(), runner, echo=lines.append).apply(steps)
    assert [n for n, o in enumerate(outcomes, start=1) if o == "done"] == [8, 14]  # the role, and the release
    assert [line.strip() for line in lines if line.startswith("   ")] == [
        f"updated the trust policy of role {name}",
        f"updated inline policy publish-environment-facts of role {name}",
        f"removed inline policy added-by-hand from role {name}",
        f"detached policy {admin} from role {name}",
    ]
    assert _decoded(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]) == publisher_trust_policy(
        example_config
    )
    assert iam.list_role_policies(RoleName=name)["PolicyNames"] == ["publish-environment-facts"]
    document = iam.get_role_policy(RoleName=name, PolicyName="publish-environment-facts")["PolicyDocument"]
    assert _decoded(document) == publisher_policy(example_config, "test")
    assert iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"] == []
    # and a third apply finds it current
    third = _bootstrapper(example_config, FakeCli(example_config)).apply(steps)
    assert third[7] == f"skipped: the config publisher role {name} is up to date"


def test_the_publisher_role_step_is_the_one_for_its_environment(example_config: LakeConfig) -> None:
    steps = build_plan(example_config, _options())
    publishing = next(n for n, s in enumerate(steps) if s.kind is StepKind.PUBLISH_CONFIG)
    roles = [(n, s) for n, s in enumerate(steps) if s.kind is StepKind.PUBLISHER_ROLE]
    assert all(n < publishing for n, _ in roles)  # the roles exist before publish assumes them
    for _, step in roles:
        assert step.publisher == publisher_role(example_config, step.role)
        assert (step.account, step.profile) == (example_config.env(step.role).account, f"acme-lake-{step.role}")


def _decoded(document: Any) -> Any:
    return json.loads(unquote(document)) if isinstance(document, str) else document


def test_render_plan_numbers_steps(example_config: LakeConfig) -> None:
    text = render_plan(example_config, build_plan(example_config, _options()), ROOT)
    assert re.findall(r"^\s*(\d+)\. ", text, re.M) == [str(n) for n in range(1, 17)]


def _session_in(profiles: dict[str, str], account: str) -> Any:
    return _profile_session(next(p for p, a in profiles.items() if a == account))


def _profile_session(profile: str) -> Any:
    return profile_session(profile, "eu-west-1")
