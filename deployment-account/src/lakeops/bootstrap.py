"""One-time bootstrap of the deployment account and every target account, as an ordered, resumable plan.

Each step names the account, region and AWS profile it needs. `apply` checks, before every step, that
the profile's credentials belong to that account (STS), skips what is already done (bootstrap stack at
the expected version and trust, stack in a COMPLETE state, nothing to publish) and stops at the first
failure. After the pipelines exist they mutate themselves; re-running bootstrap is only for new accounts.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shlex
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError

from datalake_config import LakeConfig, lake_names, names_for
from datalake_config.aws import Sessions, partition_of
from datalake_config.model import CodeCommitSource
from datalake_config.naming import PUBLIC_PYPI_CONNECTION, REPOSITORIES
from datalake_config.publish import PublisherRole, PublishError, approvers, plan_publish, publisher_role
from lake_pipelines.execution_policy import (
    PolicyPart,
    execution_policy_parts,
    pipeline_role_boundary,
    pipelines_execution_policy_parts,
    stage_role_boundary,
)
from lakeops.errors import LakeopsError
from lakeops.release import DEFAULT_SOURCES

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# The bootstrap template version the pinned CLI deploys (a test compares it with the CLI's template).
REQUIRED_BOOTSTRAP_VERSION = 33
BOOTSTRAP_STACK = "CDKToolkit"
COMPLETE_STATES = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"})
MAX_POLICY_VERSIONS = 5
TAIL_LINES = 20
APPS = {"deployment": "deployment-account", "infra": "infra-repo", "etl": "etl-jobs-repo"}


class BootstrapError(LakeopsError):
    """A bootstrap step could not run or failed; the message names the step."""


class StepKind(StrEnum):
    CDK_BOOTSTRAP = "cdk-bootstrap"
    EXECUTION_POLICY = "execution-policy"
    PUBLISHER_ROLE = "publisher-role"
    DEPLOY_STACK = "deploy-stack"
    PUBLISH_CONFIG = "publish-config"
    RELEASE_PACKAGES = "release-packages"


@dataclass(frozen=True)
class Command:
    """A command line; `argv[0]` is `cdk` (the pinned CLI) or `lakeops`, resolved by the runner."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)

    def display(self, root: Path) -> str:
        """Copy-pasteable from `root`: `cd <app> && npx cdk ...`, paths relative to the command's directory."""
        argv = ["npx", "cdk", *self.argv[1:]] if self.argv[0] == "cdk" else list(self.argv)
        shown = " ".join(shlex.quote(_relative(arg, root, self.cwd)) for arg in argv)
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        line = f"{env} {shown}" if env else shown
        if self.cwd.resolve() != root.resolve():
            line = f"cd {shlex.quote(_relative(str(self.cwd), root, root))} && {line}"
        return line


@dataclass(frozen=True)
class Step:
    """One ordered bootstrap step and what it needs."""

    kind: StepKind
    name: str
    account: str
    region: str
    profile: str
    command: Command | None = None
    stack_names: tuple[str, ...] = ()  # the step is done when every one of these stacks is complete
    trusted_account: str | None = None  # a target's bootstrap must trust the deployment account
    execution_policies: tuple[str, ...] = ()
    policy_parts: tuple[PolicyPart, ...] = ()
    publisher: PublisherRole | None = None  # the config publisher role a PUBLISHER_ROLE step ensures
    role: str = "deployment"  # the --profile role: `deployment` or an environment name
    notes: tuple[str, ...] = ()  # what the step leaves behind that later steps and the pipelines rely on

    def describe(self, root: Path) -> list[str]:
        lines = [self.name, f"   account {self.account}  region {self.region}  profile {self.profile}"]
        if self.command is not None:
            lines.append(f"   $ {self.command.display(root)}")
        for part in self.policy_parts:
            lines.append(
                f"   boto3: create or update IAM managed policy {part.name} "
                f"({len(part.document['Statement'])} statements, lake_pipelines/{part.source})"
            )
        if self.publisher is not None:
            operator = self.publisher.trust_policy["Statement"][0]["Condition"]["ArnLike"]["aws:PrincipalArn"]
            actions = sorted({a for s in self.publisher.policy["Statement"] for a in _as_list(s["Action"])})
            lines += [
                f"   boto3: create or update IAM role {self.publisher.name}, assumable only by {operator}",
                f"   inline policy {self.publisher.policy_name}: {', '.join(actions)} "
                f"on {_facts_path(self.publisher)} (nothing else)",
            ]
        lines.extend(f"   {note}" for note in self.notes)
        return lines


@dataclass(frozen=True)
class BootstrapOptions:
    config_path: Path
    profiles: Mapping[str, str] = field(default_factory=dict)
    admin: bool = False
    endpoint_url: str | None = None
    project_root: Path = PROJECT_ROOT
    app_dirs: Mapping[str, Path] = field(default_factory=dict)

    def app_dir(self, app: str) -> Path:
        return Path(self.app_dirs.get(app) or self.project_root / APPS[app]).resolve()


def default_profiles(config: LakeConfig) -> dict[str, str]:
    lake = lake_names(config)
    return {"deployment": lake.deployment_profile} | {e: lake.environment_profile(e) for e in config.environment_names}


def parse_profiles(config: LakeConfig, pairs: Sequence[str]) -> dict[str, str]:
    """`deployment=ops`, `dev=lake-dev`, ... over the defaults; unknown roles are refused by name."""
    profiles = default_profiles(config)
    for pair in pairs:
        role, sep, profile = pair.partition("=")
        if not sep or not role or not profile:
            raise BootstrapError(f"--profile {pair!r}: expected ROLE=PROFILE, e.g. deployment=my-ops-profile")
        if role not in profiles:
            raise BootstrapError(f"--profile {pair!r}: unknown role {role!r}; known: {', '.join(profiles)}")
        profiles[role] = profile
    return profiles


def build_plan(config: LakeConfig, options: BootstrapOptions) -> list[Step]:
    """Every step in order: bootstrap accounts, deploy the deployment stack, publish, deploy the pipelines."""
    profiles = {**default_profiles(config), **options.profiles}
    deployment = config.deployment
    lake = lake_names(config)
    root = options.project_root
    config_path = str(Path(options.config_path).resolve())
    env = {"AWS_ENDPOINT_URL": options.endpoint_url} if options.endpoint_url else {}
    dep_profile = profiles["deployment"]

    def cdk(*args: str, cwd: Path = root) -> Command:
        return Command(("cdk", *args), cwd, env)

    steps: list[Step] = []
    dep_partition = partition_of(deployment.region)
    if options.admin:
        dep_policies: tuple[str, ...] = (f"arn:{dep_partition}:iam::aws:policy/AdministratorAccess",)
    else:
        # The deployment account deploys its own stack and the pipeline stacks (self-mutation included) under a
        # shipped least-privilege policy too; one policy serves every region of the account (IAM is global).
        dep_parts = pipelines_execution_policy_parts(config)
        dep_policies = tuple(f"arn:{dep_partition}:iam::{deployment.account}:policy/{p.name}" for p in dep_parts)
        steps.append(
            Step(
                StepKind.EXECUTION_POLICY,
                "create or update the pipeline-role boundary and the CloudFormation execution policy of the "
                "deployment account",
                deployment.account,
                deployment.region,
                dep_profile,
                # the boundary first: the execution policy creates roles only with it attached
                policy_parts=(pipeline_role_boundary(config), *dep_parts),
            )
        )
    # A pipeline deploying to another region keeps a support stack (its artifact bucket there) in the deployment
    # account in that region, published through the deployment account's bootstrap of that region.
    other_regions = sorted({config.env(e).region for e in config.environment_names} - {deployment.region})
    for region in (deployment.region, *other_regions):
        where = "" if region == deployment.region else f" in {region} (pipelines' cross-region support)"
        steps.append(
            Step(
                StepKind.CDK_BOOTSTRAP,
                f"bootstrap the deployment account{where}",
                deployment.account,
                region,
                dep_profile,
                cdk(
                    "bootstrap",
                    f"aws://{deployment.account}/{region}",
                    "--profile",
                    dep_profile,
                    "--cloudformation-execution-policies",
                    ",".join(dep_policies),
                ),
                stack_names=(BOOTSTRAP_STACK,),
                execution_policies=dep_policies,
            )
        )
    for env_name in config.environment_names:
        target = config.env(env_name)
        profile = profiles[env_name]
        partition = partition_of(target.region)
        if options.admin:
            parts: tuple[PolicyPart, ...] = ()
            policy_arns: tuple[str, ...] = (f"arn:{partition}:iam::aws:policy/AdministratorAccess",)
        else:
            parts = execution_policy_parts(config, target.account, target.region)
            policy_arns = tuple(f"arn:{partition}:iam::{target.account}:policy/{p.name}" for p in parts)
            # The boundary first: the execution policy creates roles only with it attached.
            parts = (stage_role_boundary(config, target.account, target.region), *parts)
            steps.append(
                Step(
                    StepKind.EXECUTION_POLICY,
                    f"create or update the stage-role boundary and the CloudFormation execution policy in {env_name}",
                    target.account,
                    target.region,
                    profile,
                    policy_parts=parts,
                    role=env_name,
                )
            )
        steps.append(
            Step(
                StepKind.CDK_BOOTSTRAP,
                f"bootstrap {env_name}, trusting the deployment account",
                target.account,
                target.region,
                profile,
                cdk(
                    "bootstrap",
                    f"aws://{target.account}/{target.region}",
                    "--profile",
                    profile,
                    # no --trust-for-lookup: the apps synthesize without context lookups. The bootstrap template's
                    # lookup role trusts the --trust accounts as well; the ContractCheck step reads through it.
                    "--trust",
                    deployment.account,
                    "--cloudformation-execution-policies",
                    ",".join(policy_arns),
                ),
                stack_names=(BOOTSTRAP_STACK,),
                trusted_account=deployment.account,
                execution_policies=policy_arns,
                role=env_name,
            )
        )
        # With the target's own credentials: the deployment account cannot create roles in a target, and
        # `config publish` (a later step) assumes this role rather than any administrative one.
        steps.append(
            Step(
                StepKind.PUBLISHER_ROLE,
                f"create or update the config publisher role in {env_name}",
                target.account,
                target.region,
                profile,
                publisher=publisher_role(config, env_name),
                role=env_name,
            )
        )

    def deploy(stacks: Sequence[str], app: str, what: str, notes: Sequence[str] = ()) -> Step:
        # One `cdk deploy` per app: the app is synthesized once for all the stacks it deploys.
        command = cdk(
            "deploy",
            *stacks,
            "--require-approval",
            "never",
            "--profile",
            dep_profile,
            "-c",
            f"config={config_path}",
            cwd=options.app_dir(app),
        )
        return Step(
            StepKind.DEPLOY_STACK,
            what,
            deployment.account,
            deployment.region,
            dep_profile,
            command,
            stack_names=tuple(stacks),
            notes=tuple(notes),
        )

    # The pipelines install the team's packages from this index, so it exists before any pipeline runs.
    package_index = (
        f"creates the package index: CodeArtifact domain {lake.package_domain}, repository "
        f"{lake.package_repository} (upstream {lake.package_upstream_repository}, "
        f"connected to {PUBLIC_PYPI_CONNECTION})"
    )
    deployment_notes = [package_index]
    if any(isinstance(config.repository(k).source, CodeCommitSource) for k in REPOSITORIES):
        deployment_notes.append(
            f"creates {config.prefix}-environment-branch-protection: attach it to the developers' roles or groups "
            "(direct pushes to environment branches after the first are denied; lakeops promote moves them)"
        )
    approved = [
        f"only {', '.join(approvers(config, e))} may approve {e}"
        for e in config.environment_names
        if config.env(e).require_approval
    ]
    if approved:
        deployment_notes.append(
            f"creates {config.prefix}-approval-restriction: attach it to everyone who uses the pipelines "
            f"({'; '.join(approved)})"
        )
    steps.append(
        deploy([lake.deployment_stack_name], "deployment", "deploy the deployment-account stack", deployment_notes)
    )
    publish = ["lakeops", "config", "publish", "--yes", "--config", config_path, "--profile", dep_profile]
    if options.endpoint_url:
        publish += ["--endpoint-url", options.endpoint_url]
    steps.append(
        Step(
            StepKind.PUBLISH_CONFIG,
            "publish the shared config (global-config secret, environment facts)",
            deployment.account,
            deployment.region,
            dep_profile,
            Command(tuple(publish), root),
        )
    )
    # A pipeline starts as soon as it exists, and its first install needs the team's packages in the index.
    release = ["lakeops", "release", "publish", "--build", "--skip-existing", "--yes", "--config", config_path]
    release += ["--profile", dep_profile]
    sources = [str(root / source) for source in DEFAULT_SOURCES]
    steps.append(
        Step(
            StepKind.RELEASE_PACKAGES,
            "release the shared packages to the package index",
            deployment.account,
            deployment.region,
            dep_profile,
            # no --endpoint-url: CodeArtifact is not the emulator's (AWS_ENDPOINT_URL_CODEARTIFACT may name one)
            Command((*release, *(arg for source in sources for arg in ("--source", source))), root),
            notes=("builds the wheels from the folders above and publishes the versions the index does not hold yet",),
        )
    )
    for repository in ("infra", "etl"):
        stacks = [names_for(config, env).pipeline_stack_name(repository) for env in config.environment_names]
        branches = ", ".join(config.branch_for(repository, env) for env in config.environment_names)
        steps.append(deploy(stacks, repository, f"deploy the {repository} pipelines ({branches} branches)"))
    return steps


def render_plan(config: LakeConfig, steps: Sequence[Step], root: Path) -> str:
    lines = [
        f"lakeops bootstrap: {len(steps)} steps for {config.prefix} "
        f"(deployment account {config.deployment.account}, {config.deployment.region})"
    ]
    width = len(str(len(steps)))
    for number, step in enumerate(steps, start=1):
        first, *rest = step.describe(root)
        lines.append(f"{number:>{width}}. {first}")
        lines.extend(" " * (width - 1) + line for line in rest)
    codecommit = [k for k in ("infra", "etl") if config.repository(k).source.provider == "codecommit"]
    if codecommit:
        branches = sorted({config.branch_for(k, e) for k in codecommit for e in config.environment_names})
        lines.append(
            "then: push the branches (" + ", ".join(branches) + ") to the new CodeCommit repositories "
            "(" + ", ".join(config.repository(k).source.repository_name for k in codecommit) + "); "
            "CodeCommit creates a branch on its first push, and each pipeline starts from its branch"
        )
    return "\n".join(lines)


# --- running ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunResult:
    returncode: int
    tail: tuple[str, ...] = ()


Runner = Callable[[Command], RunResult]
SessionFactory = Callable[[str, str], Any]


class SubprocessRunner:
    """Runs a command with the pinned CDK CLI (or this lakeops), streaming its output, keeping the last lines."""

    def __init__(self, project_root: Path = PROJECT_ROOT, *, echo: Callable[[str], None] = print) -> None:
        self.project_root = project_root
        self.echo = echo

    def resolve(self, argv: Sequence[str]) -> list[str]:
        program, *args = argv
        if program == "cdk":
            cli = self.project_root / "node_modules" / ".bin" / "cdk"
            if not cli.exists():
                raise BootstrapError(f"the pinned CDK CLI is not installed at {cli}: run `make setup` (npm ci)")
            return [str(cli), *args]
        if program == "lakeops":
            return [sys.executable, "-m", "lakeops.cli", *args]
        return list(argv)

    def __call__(self, command: Command) -> RunResult:
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        env = {**os.environ, "CDK_DISABLE_CLI_TELEMETRY": "true", **command.env}
        with subprocess.Popen(
            self.resolve(command.argv),
            cwd=command.cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ) as process:
            assert process.stdout is not None
            for line in process.stdout:
                self.echo(f"      {line.rstrip()}")
                tail.append(line.rstrip())
        return RunResult(process.returncode, tuple(tail))


@functools.cache
def _shared_loader() -> Any:
    return botocore.loaders.create_loader()


def profile_session(profile: str, region: str) -> Any:
    """A session for one AWS profile; sessions share one model loader (loading models costs ~0.5 s a service)."""
    core = botocore.session.Session(profile=profile)
    core.register_component("data_loader", _shared_loader())
    return boto3.Session(botocore_session=core, region_name=region)


@dataclass
class Bootstrapper:
    """Applies a plan step by step: identity check, skip when done, run, stop at the first failure."""

    config: LakeConfig
    options: BootstrapOptions
    runner: Runner
    session_factory: SessionFactory = profile_session
    echo: Callable[[str], None] = print
    _sessions: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _clients: dict[tuple[str, str, str], Any] = field(default_factory=dict, init=False, repr=False)

    def apply(self, steps: Sequence[Step]) -> list[str]:
        """Run every step not yet done; returns one outcome line per step (`done`, `skipped: ...`)."""
        outcomes = []
        for number, step in enumerate(steps, start=1):
            label = f"step {number}/{len(steps)} ({step.name})"
            key = (step.profile, step.region)
            if key not in self._sessions:
                self._sessions[key] = self.session_factory(step.profile, step.region)
            session = self._sessions[key]
            self._require_account(session, step, label)
            reason = self._already_done(session, step)
            if reason:
                self.echo(f"{label}: skipped, {reason}")
                outcomes.append(f"skipped: {reason}")
                continue
            self.echo(f"{label}: running")
            if step.kind is StepKind.EXECUTION_POLICY:
                for change in ensure_policies(self._client(session, "iam", step), step.policy_parts):
                    self.echo(f"   {change}")
            elif step.kind is StepKind.PUBLISHER_ROLE:
                assert step.publisher is not None
                for change in ensure_publisher_role(self._client(session, "iam", step), step.publisher):
                    self.echo(f"   {change}")
            else:
                assert step.command is not None
                result = self.runner(step.command)
                if result.returncode != 0:
                    last = "\n".join(f"   | {line}" for line in result.tail) or "   | (no output)"
                    raise BootstrapError(
                        f"{label} failed with exit code {result.returncode}; stopped here, later steps not run.\n"
                        f"   $ {step.command.display(self.options.project_root)}\n{last}"
                    )
            outcomes.append("done")
        return outcomes

    def _client(self, session: Any, service: str, step: Step) -> Any:
        key = (step.profile, step.region, service)
        if key not in self._clients:  # creating a boto3 client costs a model load; reuse them across steps
            self._clients[key] = session.client(
                service, region_name=step.region, endpoint_url=self.options.endpoint_url
            )
        return self._clients[key]

    def _require_account(self, session: Any, step: Step, label: str) -> None:
        try:
            actual = self._client(session, "sts", step).get_caller_identity()["Account"]
        except Exception as exc:
            raise BootstrapError(f"{label}: cannot use profile {step.profile!r}: {exc}") from None
        if actual != step.account:
            raise BootstrapError(
                f"{label}: profile {step.profile!r} has credentials for account {actual}, but this step acts in "
                f"account {step.account}; choose the right profile with --profile {step.role}=PROFILE"
            )

    def _already_done(self, session: Any, step: Step) -> str | None:
        if step.kind is StepKind.EXECUTION_POLICY:
            iam = self._client(session, "iam", step)
            if all(_current_document(iam, step.account, step.region, p) == p.document for p in step.policy_parts):
                return "the role boundary and the execution policy are up to date"
            return None
        if step.kind is StepKind.PUBLISHER_ROLE:
            assert step.publisher is not None
            if not publisher_role_drift(self._client(session, "iam", step), step.publisher):
                return f"the config publisher role {step.publisher.name} is up to date"
            return None
        if step.kind is StepKind.RELEASE_PACKAGES:
            return None  # `--skip-existing` makes the step itself idempotent; CodeArtifact is not the emulator's
        if step.kind is StepKind.PUBLISH_CONFIG:
            sessions = Sessions(region=step.region, endpoint_url=self.options.endpoint_url)
            sessions._base = session  # the step's own profile session, already checked against the account
            try:
                return None if not plan_publish(self.config, sessions).empty else "the published config is current"
            except PublishError:
                return None
        assert step.stack_names
        cloudformation = self._client(session, "cloudformation", step)
        stacks = [_describe_stack(cloudformation, name) for name in step.stack_names]
        if any(stack is None or stack["StackStatus"] not in COMPLETE_STATES for stack in stacks):
            return None
        if step.kind is StepKind.DEPLOY_STACK:
            states = ", ".join(
                f"{name} is {stack['StackStatus']}"
                for name, stack in zip(step.stack_names, stacks, strict=True)
                if stack
            )
            return f"stack {states}" if len(stacks) == 1 else f"stacks {states}"
        assert stacks[0] is not None
        return _bootstrap_current(stacks[0], step)


def _bootstrap_current(stack: Mapping[str, Any], step: Step) -> str | None:
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    try:
        version = int(outputs.get("BootstrapVersion", "0"))
    except ValueError:
        return None
    if version < REQUIRED_BOOTSTRAP_VERSION:
        return None
    parameters = {p["ParameterKey"]: p.get("ParameterValue", "") for p in stack.get("Parameters", [])}

    def listed(key: str) -> set[str]:
        # CloudFormation returns a CommaDelimitedList as `a,b`; some emulators as `['a', 'b']`
        return set(re.findall(r"[^\s,\[\]'\"]+", parameters.get(key, "")))

    if step.trusted_account is not None and step.trusted_account not in listed("TrustedAccounts"):
        return None
    if step.execution_policies and listed("CloudFormationExecutionPolicies") != set(step.execution_policies):
        return None
    return f"{BOOTSTRAP_STACK} is at version {version} with the expected trust"


def _describe_stack(cloudformation: Any, name: str) -> dict[str, Any] | None:
    try:
        stacks = cloudformation.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in exc.response["Error"].get("Message", ""):
            return None
        raise
    return dict(stacks[0]) if stacks else None


def _policy_arn(account: str, region: str, name: str) -> str:
    return f"arn:{partition_of(region)}:iam::{account}:policy/{name}"


def _current_document(iam: Any, account: str, region: str, part: PolicyPart) -> Any:
    try:
        policy = iam.get_policy(PolicyArn=_policy_arn(account, region, part.name))["Policy"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return None
        raise
    version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
    document = version["PolicyVersion"]["Document"]
    return json.loads(unquote(document)) if isinstance(document, str) else document


def ensure_policies(iam: Any, parts: Sequence[PolicyPart]) -> list[str]:
    """Create each policy part, or add a new default version when its document changed."""
    changes = []
    for part in parts:
        text = json.dumps(part.document, separators=(",", ":"))
        arn = _find_policy_arn(iam, part.name)
        if arn is None:
            iam.create_policy(
                PolicyName=part.name,
                PolicyDocument=text,
                Description=part.description,
            )
            changes.append(f"created policy {part.name}")
            continue
        versions = iam.list_policy_versions(PolicyArn=arn)["Versions"]
        if len(versions) >= MAX_POLICY_VERSIONS:
            oldest = min((v for v in versions if not v["IsDefaultVersion"]), key=lambda v: v["CreateDate"])
            iam.delete_policy_version(PolicyArn=arn, VersionId=oldest["VersionId"])
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=text, SetAsDefault=True)
        changes.append(f"updated policy {part.name} (new default version)")
    return changes


def publisher_role_drift(iam: Any, role: PublisherRole) -> list[str]:
    """How the role in the account differs from `role`: empty when it has exactly the expected trust policy,
    the one expected inline policy, and no other policy attached."""
    try:
        current = iam.get_role(RoleName=role.name)["Role"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "NoSuchEntity":
            return ["missing"]
        raise
    drift = []
    if _document(current.get("AssumeRolePolicyDocument")) != role.trust_policy:
        drift.append("trust policy")
    inline = _role_policy_names(iam, role.name)
    if role.policy_name not in inline:
        drift.append(f"inline policy {role.policy_name} missing")
    else:
        document = iam.get_role_policy(RoleName=role.name, PolicyName=role.policy_name)["PolicyDocument"]
        if _document(document) != role.policy:
            drift.append(f"inline policy {role.policy_name}")
    drift += [f"extra inline policy {name}" for name in sorted(inline - {role.policy_name})]
    drift += [f"attached policy {arn}" for arn in _attached_policy_arns(iam, role.name)]
    return drift


def ensure_publisher_role(iam: Any, role: PublisherRole) -> list[str]:
    """Create the role, or bring its trust and permissions back to exactly `role` (nothing else attached)."""
    trust = json.dumps(role.trust_policy, separators=(",", ":"))
    policy = json.dumps(role.policy, separators=(",", ":"))
    drift = publisher_role_drift(iam, role)
    changes = []
    if drift == ["missing"]:
        iam.create_role(
            RoleName=role.name,
            AssumeRolePolicyDocument=trust,
            Description=f"lakeops config publish writes {_facts_path(role)}/* as this role (made by lakeops bootstrap)",
            MaxSessionDuration=3600,
            Tags=[{"Key": k, "Value": v} for k, v in role.tags],
        )
        iam.put_role_policy(RoleName=role.name, PolicyName=role.policy_name, PolicyDocument=policy)
        return [f"created role {role.name} with inline policy {role.policy_name}"]
    if "trust policy" in drift:
        iam.update_assume_role_policy(RoleName=role.name, PolicyDocument=trust)
        changes.append(f"updated the trust policy of role {role.name}")
    if any(d.startswith(f"inline policy {role.policy_name}") for d in drift):
        iam.put_role_policy(RoleName=role.name, PolicyName=role.policy_name, PolicyDocument=policy)
        changes.append(f"updated inline policy {role.policy_name} of role {role.name}")
    for name in sorted(_role_policy_names(iam, role.name) - {role.policy_name}):
        iam.delete_role_policy(RoleName=role.name, PolicyName=name)
        changes.append(f"removed inline policy {name} from role {role.name}")
    for arn in _attached_policy_arns(iam, role.name):
        iam.detach_role_policy(RoleName=role.name, PolicyArn=arn)
        changes.append(f"detached policy {arn} from role {role.name}")
    return changes


def _role_policy_names(iam: Any, role: str) -> set[str]:
    return {n for page in iam.get_paginator("list_role_policies").paginate(RoleName=role) for n in page["PolicyNames"]}


def _attached_policy_arns(iam: Any, role: str) -> list[str]:
    pages = iam.get_paginator("list_attached_role_policies").paginate(RoleName=role)
    return sorted(str(p["PolicyArn"]) for page in pages for p in page["AttachedPolicies"])


def _document(document: Any) -> Any:
    """IAM returns policy documents URL-encoded; boto3 usually decodes them already."""
    return json.loads(unquote(document)) if isinstance(document, str) else document


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


def _facts_path(role: PublisherRole) -> str:
    resource = str(role.policy["Statement"][0]["Resource"])
    return "/" + resource.split(":parameter/", 1)[1]


def _find_policy_arn(iam: Any, name: str) -> str | None:
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            if policy["PolicyName"] == name:
                return str(policy["Arn"])
    return None


def _relative(arg: str, root: Path, cwd: Path) -> str:
    prefix = str(root.resolve())
    if prefix not in arg:
        return arg

    def shorten(match: re.Match[str]) -> str:
        return os.path.relpath(match.group(0), cwd.resolve())

    return re.sub(re.escape(prefix) + r"(/[^\s,=]*)?", shorten, arg)
