"""The whole lifecycle on the emulator: bootstrap, publish, deploy per environment, run the jobs, promote.

Every command the pipelines run comes from `lakeops.buildspec`, and every operator action is the real
`lakeops` command; the rehearsal only supplies what a cloud would: accounts (the emulator), the
repositories (temporary git repositories) and the CodeBuild machine (this one).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from datalake_config import ConfigError, LakeConfig, lake_names, load, names_for
from lakeops import buildspec
from lakeops.commands.common import confirm
from lakeops.emulator.process import Emulator
from lakeops.errors import LakeopsError
from lakeops.rehearsal import report
from lakeops.rehearsal.runner import Runner, StepFailed
from lakeops.rehearsal.workspace import RepoCopy, checkout, make_repositories, write_profiles

PROJECT_ROOT = Path(__file__).resolve().parents[4]
APP_FOLDERS = {"infra": "infra-repo", "etl": "etl-jobs-repo"}
VERIFY_MODULES = {"infra": "datalake_infra.smoke_check", "etl": "etl_jobs.integration_check"}

# A hook the ETL repository contributes: runs the job groups against the emulator's buckets.
EtlDataStep = Callable[["Context", str], list[str]]


@dataclass
class Options:
    config_path: Path
    environments: Sequence[str] | None = None  # a leading part of the promotion order; default: all
    workdir: Path | None = None
    assume_yes: bool = False
    skip_checks: bool = False  # lint + unit tests of each repository (make test runs them already)
    run_jobs: bool = True
    project_root: Path = PROJECT_ROOT


@dataclass
class Context:
    options: Options
    config: LakeConfig
    runner: Runner
    emulator: Emulator
    aws_env: dict[str, str]
    repos: dict[str, RepoCopy] = field(default_factory=dict)
    checked_commits: set[tuple[str, str]] = field(default_factory=set)

    def session(self, env_name: str | None = None) -> boto3.Session:
        names = lake_names(self.config)
        profile = names.environment_profile(env_name) if env_name else names.deployment_profile
        return boto3.Session(profile_name=profile)

    def client(self, service: str, env_name: str | None = None) -> Any:
        region = self.config.env(env_name).region if env_name else self.config.deployment.region
        return self.session(env_name).client(service, region_name=region)


def rehearse(options: Options, etl_data_step: EtlDataStep | None = None) -> int:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="lakeops-rehearsal-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tools = [str(Path(sys.executable).parent), str(options.project_root / "node_modules" / ".bin")]
    runner = Runner(
        log_path=workdir / "rehearsal.log",
        env={**os.environ, "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "")])},
    )
    summaries: list[report.EnvironmentSummary] = []
    failed = True
    print(f"rehearsal workspace: {workdir} (full command output in rehearsal.log)")
    try:
        config, selected = _validate(runner, options)
        _synthesize(runner, options, workdir)
        with Emulator(
            workdir / "emulator", default_account=config.deployment.account, region=config.deployment.region
        ) as emu:
            runner.note(f"emulator pid {emu.pid} at {emu.endpoint_url}")
            aws_env = write_profiles(workdir, config, emu)
            runner.env |= aws_env
            saved = {k: os.environ.get(k) for k in aws_env}
            os.environ.update(aws_env)
            try:
                context = Context(options, config, runner, emu, aws_env)
                _bootstrap(context)
                summaries.append(_deployment_account_summary(context, workdir))
                context.repos = make_repositories(options.project_root, workdir, config, APP_FOLDERS)
                for env_name in selected:
                    _promote_into(context, env_name)
                    for kind in APP_FOLDERS:
                        summaries.append(_deploy_environment(context, env_name, kind, etl_data_step))
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        failed = False
    except StepFailed as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("\ninterrupted: the emulator was stopped", file=sys.stderr)
    print(report.render(summaries, runner.steps, failed))
    return 1 if failed else 0


def _validate(runner: Runner, options: Options) -> tuple[LakeConfig, list[str]]:
    with runner.step("validate the shared config") as record:
        try:
            config = load(options.config_path)
        except ConfigError as exc:
            raise StepFailed(str(exc)) from None
        order = config.environment_names
        selected = list(options.environments or order)
        unknown = [e for e in selected if e not in order]
        if unknown:
            raise StepFailed(f"unknown environment(s) {', '.join(unknown)}; configured: {', '.join(order)}")
        if selected != order[: len(selected)]:
            raise StepFailed(
                f"environments must be a leading part of the promotion order {' → '.join(order)}, "
                f"got {', '.join(selected)}"
            )
        record.detail = f"{options.config_path}: {' → '.join(selected)}"
    return config, selected


def _synthesize(runner: Runner, options: Options, workdir: Path) -> None:
    with runner.step("synthesize both apps (all environments)"):
        for kind, folder in APP_FOLDERS.items():
            out = workdir / "synth" / folder
            runner.run(
                ["cdk", "synth", "--quiet", "-c", f"config={options.config_path.resolve()}", "--output", str(out)],
                cwd=options.project_root / folder,
                label=f"cdk synth ({kind})",
            )


def _bootstrap(context: Context) -> None:
    options = context.options
    with context.runner.step("bootstrap: accounts, deployment stack, config publish, pipelines"):
        context.runner.run(
            [
                "lakeops",
                "bootstrap",
                "apply",
                "--yes",
                "--config",
                str(options.config_path.resolve()),
                "--endpoint-url",
                context.emulator.endpoint_url,
            ],
            cwd=options.project_root,
            label="lakeops bootstrap apply --yes --endpoint-url <emulator>",
        )


def _deployment_account_summary(context: Context, workdir: Path) -> report.EnvironmentSummary:
    """What bootstrap created in the deployment account: its own stack and every pipeline stack."""
    config = context.config
    summary = report.EnvironmentSummary("deployment", "all")
    cloudformation = context.client("cloudformation")
    templates = [
        (
            context.options.project_root / "deployment-account" / buildspec.CDK_OUT,
            lake_names(config).deployment_stack_name,
        )
    ]
    for kind, folder in APP_FOLDERS.items():
        for env_name in config.environment_names:
            templates.append((workdir / "synth" / folder, names_for(config, env_name).pipeline_stack_name(kind)))
    for directory, stack in templates:
        template = directory / f"{stack}.template.json"
        summary.stacks.append(report.stack_report(template, stack, config.deployment.account, cloudformation))
    summary.check = "bootstrap done"
    summary.seconds = context.runner.steps[-1].seconds
    return summary


def _promote_into(context: Context, env_name: str) -> None:
    config = context.config
    previous = config.previous_environment(env_name)
    if previous is not None:
        with context.runner.step(f"promote {previous} → {env_name} (both repositories)"):
            for kind, repo in context.repos.items():
                context.runner.run(
                    [
                        "lakeops",
                        "promote",
                        previous,
                        env_name,
                        "--repo",
                        str(repo.path),
                        "--kind",
                        kind,
                        "--yes",
                        "--config",
                        str(context.options.config_path.resolve()),
                    ],
                    cwd=repo.path,
                    label=f"lakeops promote {previous} {env_name} ({kind})",
                )
    if config.env(env_name).require_approval:
        with context.runner.step(f"manual approval before {env_name}") as record:
            approvers = ", ".join(config.notification_emails(env_name))
            context.runner.note(f"the pipeline waits here; approvers are notified at {approvers}")
            if not confirm(f"approve the deployment to {env_name}?", assume_yes=context.options.assume_yes):
                raise StepFailed(f"the deployment to {env_name} was not approved")
            record.detail = "approved" + (" (--yes)" if context.options.assume_yes else "")


def _deploy_environment(
    context: Context, env_name: str, kind: str, etl_data_step: EtlDataStep | None
) -> report.EnvironmentSummary:
    config, runner = context.config, context.runner
    repo = context.repos[kind]
    names = names_for(config, env_name)
    summary = report.EnvironmentSummary(env_name, kind)
    started = time.monotonic()
    with runner.step(f"{env_name}: {kind} pipeline (checks, synth, deploy, verify)") as record:
        commit = checkout(repo, config.branch_for(kind, env_name))
        secret = lake_names(config).global_config_secret
        for command in buildspec.pull_config_commands(secret, config.deployment.region):
            runner.run(command, cwd=repo.path, env=_profile_env(config))
        if context.options.skip_checks:
            runner.note("checks skipped (--skip-checks): make test runs them")
        elif (kind, commit) in context.checked_commits:
            runner.note(f"checks already passed at commit {commit[:10]}")
        else:
            for command in buildspec.check_commands():
                runner.run(command, cwd=repo.path, unset=list(context.aws_env))
            context.checked_commits.add((kind, commit))
        for command in buildspec.synth_commands():
            runner.run(command, cwd=repo.path, unset=list(context.aws_env))
        pipeline_stack = names.pipeline_stack_name(kind)
        stage = env_name.capitalize()
        runner.run(
            [
                "cdk",
                "deploy",
                "--app",
                buildspec.CDK_OUT,
                "--require-approval",
                "never",
                "--progress",
                "events",
                "--profile",
                lake_names(config).deployment_profile,
                f"{pipeline_stack}/{stage}/*",
            ],
            cwd=repo.path,
            label=f"cdk deploy {pipeline_stack}/{stage}/* → {config.env(env_name).account}",
        )
        summary.stacks = _stack_reports(context, repo, env_name, kind)
        if kind == "infra":
            summary.contract_present, summary.contract_expected = _contract_count(context, env_name)
            missing = summary.contract_expected - summary.contract_present
            if missing:
                raise StepFailed(f"{missing} contract parameter(s) missing in {env_name}")
        if kind == "etl" and context.options.run_jobs and etl_data_step is not None:
            summary.jobs = etl_data_step(context, env_name)
        role_arn = f"arn:aws:iam::{config.env(env_name).account}:role/{names.verify_role_name(kind)}"
        for command in buildspec.verify_commands(VERIFY_MODULES[kind], env_name, role_arn, config.env(env_name).region):
            runner.run(command, cwd=repo.path, env=_profile_env(config))
        summary.check = "passed"
        created = sum(r.created for r in summary.stacks)
        record.detail = f"commit {commit[:10]}, {len(summary.stacks)} stacks, {created} resources created"
    summary.seconds = time.monotonic() - started
    return summary


def _profile_env(config: LakeConfig) -> dict[str, str]:
    return {"AWS_PROFILE": lake_names(config).deployment_profile}


def _stack_reports(context: Context, repo: RepoCopy, env_name: str, kind: str) -> list[report.StackReport]:
    config = context.config
    account = config.env(env_name).account
    cloudformation = context.client("cloudformation", env_name)
    stage_dirs = [
        p for p in (repo.path / buildspec.CDK_OUT).glob("assembly-*") if p.name.endswith(f"-{env_name.capitalize()}")
    ]
    reports = []
    for stage_dir in stage_dirs:
        for template in sorted(stage_dir.glob("*.template.json")):
            stack_name = _stack_name_of(stage_dir, template)
            reports.append(report.stack_report(template, stack_name, account, cloudformation))
    if not reports:
        raise LakeopsError(f"no {kind} stage templates for {env_name} found under {repo.path / buildspec.CDK_OUT}")
    return reports


def _stack_name_of(stage_dir: Path, template: Path) -> str:
    manifest = json.loads((stage_dir / "manifest.json").read_text())
    for artifact in manifest.get("artifacts", {}).values():
        props = artifact.get("properties", {})
        if artifact.get("type") == "aws:cloudformation:stack" and props.get("templateFile") == template.name:
            return str(props.get("stackName", template.name.removesuffix(".template.json")))
    return template.name.removesuffix(".template.json")


def _contract_count(context: Context, env_name: str) -> tuple[int, int]:
    names = names_for(context.config, env_name)
    ssm = context.client("ssm", env_name)
    expected = [p.path for p in names.contract()]
    present = 0
    for start in range(0, len(expected), 10):
        batch = expected[start : start + 10]
        present += len(ssm.get_parameters(Names=batch)["Parameters"])
    return present, len(expected)
