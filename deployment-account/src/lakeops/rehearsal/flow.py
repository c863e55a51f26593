"""The whole lifecycle on the emulator: bootstrap, publish, deploy per environment, run the jobs, promote.

Every command the pipelines run comes from `lake_pipelines.buildspec`, and every operator action is the real
`lakeops` command; the rehearsal only supplies what a cloud would: accounts (the emulator), the
repositories (temporary git repositories) and the CodeBuild machine (this one).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from datalake_config import ConfigError, LakeConfig, lake_names, load, names_for
from lake_pipelines import buildspec
from lakeops import status
from lakeops.bootstrap import default_profiles
from lakeops.commands.common import confirm
from lakeops.emulator.package_index import PackageIndex
from lakeops.emulator.process import Emulator
from lakeops.errors import LakeopsError
from lakeops.rehearsal import pipeline_steps, report
from lakeops.rehearsal.runner import Runner, StepFailed
from lakeops.rehearsal.workspace import (
    RepoCopy,
    checkout,
    commit_directly,
    make_repositories,
    reset_branch,
    write_profiles,
)

PROJECT_ROOT = Path(__file__).resolve().parents[4]
APP_FOLDERS = {"infra": "infra-repo", "etl": "etl-jobs-repo"}
# What the install phase reads: a change to any of these makes a fresh environment.
INSTALL_INPUTS = ("requirements.txt", "package.json", "package-lock.json")


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
    index: PackageIndex | None = None
    checked_commits: set[tuple[str, str]] = field(default_factory=set)

    def session(self, env_name: str | None = None) -> boto3.Session:
        names = lake_names(self.config)
        profile = names.environment_profile(env_name) if env_name else names.deployment_profile
        return boto3.Session(profile_name=profile)

    def client(self, service: str, env_name: str | None = None) -> Any:
        region = self.config.env(env_name).region if env_name else self.config.deployment.region
        return self.session(env_name).client(service, region_name=region)


def rehearse(options: Options) -> int:
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="lakeops-rehearsal-"))
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    tools = [str(Path(sys.executable).parent), str(options.project_root / "node_modules" / ".bin")]
    runner = Runner(
        log_path=workdir / "rehearsal.log",
        env={**os.environ, "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "")])},
    )
    summaries: list[report.EnvironmentSummary] = []
    status_table = ""  # `lakeops status` after the last environment deployed, for the summary
    failed = True
    print(f"rehearsal workspace: {workdir} (full command output in rehearsal.log)")
    try:
        config, selected = _validate(runner, options)
        _synthesize(runner, options, workdir)
        lake = lake_names(config)
        with (
            Emulator(
                workdir / "emulator",
                default_account=config.deployment.account,
                region=config.deployment.region,
                # Glue's runtime brings pyspark: the ETL repository's own environment, created by its install
                # phase before any job is deployed, runs the emulated job runs
                glue_python=str(_venv(workdir, "etl") / "bin" / "python"),
                # the trigger chain: a delivered object starts its group's state machine, which runs the jobs
                deliver_events=True,
            ) as emu,
            PackageIndex(
                workdir / "package-index",
                domain=lake.package_domain,
                repository=lake.package_repository,
                domain_owner=config.deployment.account,
            ) as index,
        ):
            runner.note(f"emulator pid {emu.pid} at {emu.endpoint_url}")
            runner.note(f"package index stand-in (CodeArtifact {lake.package_repository}) at {index.endpoint_url}")
            # CodeArtifact is the stand-in's, every other service the emulator's
            aws_env = write_profiles(workdir, config, emu) | {"AWS_ENDPOINT_URL_CODEARTIFACT": index.endpoint_url}
            runner.env |= aws_env
            saved = {k: os.environ.get(k) for k in aws_env}
            os.environ.update(aws_env)
            try:
                context = Context(options, config, runner, emu, aws_env, index=index)
                _bootstrap(context)
                _deployment_account_summary(context, workdir, summaries)
                context.repos = make_repositories(options.project_root, workdir, config, APP_FOLDERS)
                refusal_played = False
                for env_name in selected:
                    _promote_into(context, env_name)
                    if not refusal_played and config.previous_environment(env_name) is not None:
                        _refuse_a_direct_push(context, env_name)
                        refusal_played = True
                    for kind in APP_FOLDERS:
                        _deploy_environment(context, env_name, kind, summaries)
                    status_table = _status_step(context, selected[: selected.index(env_name) + 1])
                _new_commit_is_pending(context, selected)
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
    print(report.render(summaries, runner.steps, failed, status=status_table))
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
    with context.runner.step(
        "bootstrap: accounts, deployment stack, config publish, package release, pipelines"
    ) as record:
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
        published = _index(context).published()
        if not published:
            raise StepFailed("bootstrap published nothing to the package index")
        record.detail = "package index holds " + ", ".join(
            f"{name} {' '.join(versions)}" for name, versions in sorted(published.items())
        )


def _deployment_account_summary(context: Context, workdir: Path, summaries: list[report.EnvironmentSummary]) -> None:
    """What bootstrap created in the deployment account: its own stack and every pipeline stack.

    The summary joins `summaries` before its resources are accounted for, so that a failure still shows it."""
    config = context.config
    summary = report.EnvironmentSummary("deployment", "all", seconds=context.runner.steps[-1].seconds)
    summaries.append(summary)
    templates = [
        (
            context.options.project_root / "deployment-account" / buildspec.CDK_OUT,
            lake_names(config).deployment_stack_name,
        )
    ]
    for kind, folder in APP_FOLDERS.items():
        for env_name in config.environment_names:
            templates.append((workdir / "synth" / folder, names_for(config, env_name).pipeline_stack_name(kind)))
    with context.runner.step("deployment account: every template resource accounted for") as record:
        cloudformation = context.client("cloudformation")
        for directory, stack in templates:
            template = directory / f"{stack}.template.json"
            summary.stacks.append(
                report.stack_report(template, stack, config.deployment.account, cloudformation, context.client)
            )
        _fail_on_unaccounted(summary)
        record.detail = _accounting_detail(summary)
    summary.check = "bootstrap done"


def _accounting_detail(summary: report.EnvironmentSummary) -> str:
    in_template = sum(r.in_template for r in summary.stacks)
    return f"{len(summary.stacks)} stacks, {summary.count(report.Category.CREATED)} of {in_template} resources created"


def _fail_on_unaccounted(summary: report.EnvironmentSummary) -> None:
    failure = report.unaccounted_failure(summary)
    if failure:
        summary.check = "unaccounted resources"
        raise StepFailed(failure)


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


def _deploy_environment(context: Context, env_name: str, kind: str, summaries: list[report.EnvironmentSummary]) -> None:
    """Run `kind`'s pipeline for `env_name`; its summary joins `summaries` at once, so a failure still shows it."""
    config, runner = context.config, context.runner
    repo = context.repos[kind]
    names = names_for(config, env_name)
    summary = report.EnvironmentSummary(env_name, kind, check="did not finish")
    summaries.append(summary)
    started = time.monotonic()
    try:
        with runner.step(f"{env_name}: {kind} pipeline (checks, synth, deploy, verify)") as record:
            commit = checkout(repo, config.branch_for(kind, env_name))
            pipeline_stack = names.pipeline_stack_name(kind)
            deployed = _deployed_template(context, kind, pipeline_stack)
            synth = pipeline_steps.synth_step(deployed)
            guard, install = _split_guard(synth.install)
            for command in guard:
                runner.run(
                    command, cwd=repo.path, env=_guard_env(config, commit), label=f"promotion guard {commit[:10]}"
                )
            _install(context, repo, commit, install)
            pull, checks, synthesize = _split_synth_commands(synth.build)
            for command in pull:
                runner.run(command, cwd=repo.path, env=_profile_env(config) | repo.env)
            if context.options.skip_checks:
                runner.note("checks skipped (--skip-checks): make test runs them")
            elif (kind, commit) in context.checked_commits:
                runner.note(f"checks already passed at commit {commit[:10]}")
            else:
                for command in checks:
                    runner.run(command, cwd=repo.path, env=repo.env, unset=list(context.aws_env))
                context.checked_commits.add((kind, commit))
            for command in synthesize:
                runner.run(command, cwd=repo.path, env=repo.env, unset=list(context.aws_env))
            stage = env_name.capitalize()
            check = pipeline_steps.contract_check_step(deployed, stage)
            for command in check.build if check is not None else ():
                runner.run(
                    command, cwd=repo.path, env=_profile_env(config), label="contract check (SSM parameters read)"
                )
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
                env=repo.env,
                label=f"cdk deploy {pipeline_stack}/{stage}/* → {config.env(env_name).account}",
            )
            protect = pipeline_steps.termination_protection_step(deployed, stage)
            if protect is not None:
                for command in protect.build:
                    runner.run(command, cwd=repo.path, env=_profile_env(config), label=_shorten(command))
                summary.protected = _protected_stacks(context, env_name, protect.build)
            summary.stacks = _stack_reports(context, repo, env_name, kind)
            _fail_on_unaccounted(summary)
            if kind == "infra":
                summary.contract_present, summary.contract_expected = _contract_count(context, env_name)
                missing = summary.contract_expected - summary.contract_present
                if missing:
                    raise StepFailed(f"{missing} contract parameter(s) missing in {env_name}")
            data_step = _data_step(repo)
            # The repository's post-deploy check reads what its data step wrote: with --no-jobs there is nothing to
            # check, so both are skipped and the summary says so (the run still counts for the next guard: the
            # operator chose a rehearsal without jobs).
            skip_verify = bool(data_step) and not context.options.run_jobs
            if data_step and not skip_verify:
                summary.jobs = _run_data_step(context, repo, env_name, data_step)
                summary.jobs += _event_deliveries(context, env_name)
            if skip_verify:
                runner.note(f"{kind}: data step and Verify skipped (--no-jobs)")
            for command in () if skip_verify else pipeline_steps.verify_step(deployed, stage).build:
                runner.run(command, cwd=repo.path, env=_profile_env(config) | repo.env)
            if data_step and not skip_verify:
                summary.jobs += _glue_runs(context, env_name)
            _record_succeeded_run(context, deployed, names.pipeline_name(kind), commit)
            summary.check = "verify skipped (--no-jobs)" if skip_verify else "passed"
            record.detail = f"commit {commit[:10]}, {_accounting_detail(summary)}"
    finally:
        summary.seconds = time.monotonic() - started


def _shorten(command: str) -> str:
    return "update-termination-protection " + command.rsplit("--stack-name ", 1)[-1]


def _protected_stacks(context: Context, env_name: str, commands: Sequence[str]) -> list[str]:
    """The stacks the step protected, each checked to have termination protection on (`cdk deploy` in the
    rehearsal turns it on as well: the check proves the step's commands ran, not that only they did)."""
    cloudformation = context.client("cloudformation", env_name)
    stacks = [command.rsplit("--stack-name ", 1)[-1] for command in commands]
    for stack in stacks:
        if not cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("EnableTerminationProtection"):
            raise StepFailed(f"{stack}: termination protection is off after the TerminationProtection step")
    return stacks


def _split_guard(install: Sequence[str]) -> tuple[list[str], list[str]]:
    """The Synth step's install phase as (promotion guard, installs): the guard runs for every commit, the
    installs only when the repository's environment must be made again."""
    guard = [c for c in install if buildspec.SOURCE_COMMIT_VARIABLE in c]
    return guard, [c for c in install if c not in guard]


def _guard_env(config: LakeConfig, commit: str) -> dict[str, str]:
    # what the pipeline gives the step: the source action's CommitId, and the deployment account's credentials
    return _profile_env(config) | {buildspec.SOURCE_COMMIT_VARIABLE: commit}


def _record_succeeded_run(context: Context, deployed: Path, pipeline: str, commit: str) -> None:
    """CodePipeline's record that `pipeline` deployed and verified `commit`, which the next environment's
    promotion guard asks for. The rehearsal plays the pipeline, so once every step of the run has passed it
    records the execution through the real API (StartPipelineExecution with the source revision; the emulator
    runs no action, so the execution is a succeeded one)."""
    revision = {
        "actionName": pipeline_steps.source_action(deployed),
        "revisionType": "COMMIT_ID",
        "revisionValue": commit,
    }
    context.client("codepipeline").start_pipeline_execution(name=pipeline, sourceRevisions=[revision])


def _refuse_a_direct_push(context: Context, env_name: str) -> None:
    """A commit pushed straight to an environment branch (not promoted) is refused by that environment's
    pipeline before it changes anything: the guard is the first command of its first build, before the install,
    the checks, the synth and the pipeline's self-mutation."""
    config, runner = context.config, context.runner
    kind = next(iter(APP_FOLDERS))  # every repository's pipelines carry the same guard
    repo = context.repos[kind]
    branch = config.branch_for(kind, env_name)
    names = names_for(config, env_name)
    with runner.step(f"{env_name}: a commit pushed straight to {branch} ({kind}) is refused") as record:
        promoted = checkout(repo, branch)
        pipeline_stack = names.pipeline_stack_name(kind)
        deployed = _deployed_template(context, kind, pipeline_stack)
        guard, _ = _split_guard(pipeline_steps.synth_step(deployed).install)
        if not guard:
            raise StepFailed(f"the {env_name} {kind} pipeline's synth step has no promotion guard")
        cloudformation = context.client("cloudformation")
        before = cloudformation.describe_stacks(StackName=pipeline_stack)["Stacks"][0]
        direct = commit_directly(repo, branch, f"a change pushed straight to {branch}, not promoted")
        try:
            for command in guard:
                runner.run(
                    command, cwd=repo.path, env=_guard_env(config, direct), label=f"promotion guard {direct[:10]}"
                )
        except StepFailed as refusal:
            if "REFUSED" not in str(refusal):
                raise
        else:
            raise StepFailed(
                f"the promotion guard let commit {direct[:10]} into {env_name} without {branch}'s predecessor"
            )
        finally:
            reset_branch(repo, branch, promoted)
        after = cloudformation.describe_stacks(StackName=pipeline_stack)["Stacks"][0]
        if after.get("LastUpdatedTime", after["CreationTime"]) != before.get("LastUpdatedTime", before["CreationTime"]):
            raise StepFailed(f"{pipeline_stack} changed while the guard refused a commit")
        record.detail = (
            f"commit {direct[:10]} refused by the first command of {names.pipeline_name(kind)}; "
            f"nothing after it ran, {pipeline_stack} unchanged"
        )


def _deployed_template(context: Context, kind: str, pipeline_stack: str) -> Path:
    """The pipeline stack as bootstrap deployed it (synthesized from the workspace before bootstrap)."""
    return context.runner.log_path.parent / "synth" / APP_FOLDERS[kind] / f"{pipeline_stack}.template.json"


def _split_synth_commands(build: Sequence[str]) -> tuple[list[str], list[str], list[str]]:
    """The Synth step's build phase as (config pull, checks, synth): only the pull may reach AWS, and the
    checks are what `--skip-checks` skips and a commit already checked does not repeat."""
    checks = set(buildspec.check_commands())
    pulls = [c for c in build if c.startswith("lake-config pull")]
    return pulls, [c for c in build if c in checks], [c for c in build if c not in checks and c not in pulls]


def _data_step(repo: RepoCopy) -> str | None:
    """A repository may contribute a rehearsal step of its own: `[tool.lake.rehearsal] data-step` in its
    pyproject.toml, a command run with `--config --env --profile --report` after each deployment, before Verify."""
    project = tomllib.loads((repo.path / "pyproject.toml").read_text(encoding="utf-8"))
    command = project.get("tool", {}).get("lake", {}).get("rehearsal", {}).get("data-step")
    return command if isinstance(command, str) else None


def _run_data_step(context: Context, repo: RepoCopy, env_name: str, data_step: str) -> list[str]:
    workdir = context.runner.log_path.parent
    report_file = workdir / f"{repo.kind}-data-{env_name}.json"
    profile = lake_names(context.config).environment_profile(env_name)
    command = (
        f"{data_step} --config {buildspec.CONFIG_FILE} --env {env_name} --profile {profile} --report {report_file}"
    )
    context.runner.run(command, cwd=repo.path, env=repo.env, label=f"{data_step} --env {env_name}")
    lines: list[str] = json.loads(report_file.read_text(encoding="utf-8"))
    return lines


def _install(context: Context, repo: RepoCopy, commit: str, commands: Sequence[str]) -> None:
    """The pipeline's install phase, verbatim, into a fresh virtual environment of this repository alone:
    log in to the package index, `npm ci`, `pip install -r requirements.txt` (the team's packages from the
    index, nothing from the workspace). Reused while the commit's requirements and lock files are unchanged."""
    runner = context.runner
    digest = hashlib.sha256(
        b"".join((repo.path / name).read_bytes() for name in INSTALL_INPUTS if (repo.path / name).exists())
    ).hexdigest()
    if repo.installed == digest:
        runner.note(f"{repo.kind}: requirements unchanged at commit {commit[:10]}; environment reused")
        return
    venv = _venv(repo.path.parent.parent, repo.kind)
    shutil.rmtree(venv, ignore_errors=True)
    runner.run([sys.executable, "-m", "venv", str(venv)], cwd=repo.path, label=f"python -m venv ({repo.kind})")
    # `aws codeartifact login --tool pip` runs `pip config set`, which writes the site file of the active
    # environment only when it exists (and PIP_CONFIG_FILE names it); otherwise the operator's own
    # ~/.config/pip. A home of its own, as a build container has, keeps the operator's files out of reach.
    pip_config = venv / "pip.conf"
    pip_config.touch()
    home = venv / "home"
    home.mkdir()
    repo.env = {
        "HOME": str(home),
        "VIRTUAL_ENV": str(venv),
        # Spark's Python workers too: the repository's environment, never the workspace's
        "PYSPARK_PYTHON": str(venv / "bin" / "python"),
        "PATH": os.pathsep.join([str(venv / "bin"), str(repo.path / "node_modules" / ".bin"), *_tool_path(context)]),
        "PIP_CONFIG_FILE": str(pip_config),
        # the downloads stay cached across rehearsals: a different home must not mean a cold cache
        "PIP_CACHE_DIR": str(_user_cache("pip")),
        "npm_config_cache": str(Path.home() / ".npm"),
        # nothing of this machine's pip settings (extra indexes, find-links) takes part
        **{name: None for name in os.environ if name.startswith("PIP_") and name not in ("PIP_CACHE_DIR",)},
    }
    repo.env |= {"PIP_CONFIG_FILE": str(pip_config), "PIP_CACHE_DIR": str(_user_cache("pip"))}
    for command in commands:
        runner.run(command, cwd=repo.path, env=_profile_env(context.config) | repo.env)
    repo.installed = digest


def _venv(workdir: Path, kind: str) -> Path:
    """The virtual environment a repository's install phase creates."""
    return workdir / "venvs" / kind


def _event_deliveries(context: Context, env_name: str) -> list[str]:
    """How many state machine executions EventBridge started in `env_name`'s account; a delivery the target's
    role was denied, or that failed, fails the step (the emulator records each one: lakeops.emulator.events)."""
    account = context.config.env(env_name).account
    mine = [d for d in context.emulator.event_deliveries() if str(d["stateMachineArn"]).split(":")[4] == account]
    bad = [d for d in mine if d.get("outcome") != "started"]
    if bad:
        raise StepFailed(
            f"{env_name}: {len(bad)} EventBridge deliveries started nothing: "
            + "; ".join(f"rule {d.get('rule')}: {d.get('outcome')} ({d.get('reason')})" for d in bad)
        )
    started = [d for d in mine if d.get("outcome") == "started"]
    rules = sorted({str(d.get("rule", "")).rsplit("/", 1)[-1] for d in started})
    return [f"EventBridge: {len(started)} execution(s) started by rule(s) {', '.join(rules) or 'none'}"]


def _glue_runs(context: Context, env_name: str) -> list[str]:
    """Every run of every Glue job of `env_name`, as the emulated Glue ran it, with what started it: the state
    machine execution the audit table names for it, or a direct StartJobRun (Verify's integration check). One
    line each; a run that did not succeed fails the step (the data step and Verify have failed already if it
    was theirs)."""
    names = names_for(context.config, env_name)
    glue = context.client("glue", env_name)
    started_by = _executions_by_run(context, env_name)
    prefix = names.glue_job_name_prefix()
    lines, failed = [], []
    for page in glue.get_paginator("get_jobs").paginate():
        for job in sorted(page["Jobs"], key=lambda j: str(j["CreatedOn"])):
            if not job["Name"].startswith(prefix):
                continue
            runs = [r for p in glue.get_paginator("get_job_runs").paginate(JobName=job["Name"]) for r in p["JobRuns"]]
            if not runs:
                lines.append(f"{job['Name']}: never run")
                continue
            for run in sorted(runs, key=lambda r: str(r.get("StartedOn", ""))):
                state = run["JobRunState"]
                execution = started_by.get(run["Id"])
                origin = f"execution {execution}" if execution else "a direct StartJobRun"
                line = f"{job['Name']}: run {run['Id']} {state} in {run.get('ExecutionTime', 0)}s, started by {origin}"
                if state != "SUCCEEDED":
                    line += f" ({run.get('ErrorMessage', 'no error message')})"
                    failed.append(line)
                lines.append(line)
    if failed:
        raise StepFailed(f"{env_name}: {len(failed)} Glue job run(s) did not succeed: " + "; ".join(failed))
    return lines + _unchecked_reads(context, env_name)


def _unchecked_reads(context: Context, env_name: str) -> list[str]:
    """A line saying so when the emulated Glue could not check the reads of some runs (inotify unavailable,
    or its watch incomplete): each such run leaves `reads-not-checked.txt` in its folder (`glue_runs`)."""
    account = context.config.env(env_name).account
    notes = sorted((context.emulator.glue_workdir / "runs" / account).glob("*/*/*/reads-not-checked.txt"))
    if not notes:
        return []
    why = notes[0].read_text(encoding="utf-8").strip().splitlines()[0]
    return [f"reads not checked against the job role in {len(notes)} run(s): {why} ({notes[0].parent})"]


def _executions_by_run(context: Context, env_name: str) -> dict[str, str]:
    """Glue run id → the name of the state machine execution that ran it, from the ETL audit table."""
    names = names_for(context.config, env_name)
    table = context.client("ssm", env_name).get_parameter(Name=names.audit_table_name)["Parameter"]["Value"]
    found: dict[str, str] = {}
    for page in context.client("dynamodb", env_name).get_paginator("scan").paginate(TableName=table):
        for item in page["Items"]:
            run, execution = item.get("job_run_id", {}).get("S"), item.get("execution_arn", {}).get("S")
            if run and execution:
                found[run] = execution.rsplit(":", 1)[-1]
    return found


def _user_cache(tool: str) -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / tool


def _index(context: Context) -> PackageIndex:
    if context.index is None:
        raise StepFailed("the package index stand-in is not running")
    return context.index


def _tool_path(context: Context) -> list[str]:
    """What a CodeBuild image has besides the repository's own tools: the AWS CLI, node, git, a shell."""
    tools = context.runner.log_path.parent / "tools"
    tools.mkdir(exist_ok=True)
    aws = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")
    if aws is None:
        raise StepFailed("the AWS CLI (`aws`) is not installed: make setup installs it into the workspace")
    if not (tools / "aws").exists():
        (tools / "aws").symlink_to(aws)
    # the machine's own PATH, without anything of the workspace (its venv, its node_modules)
    workspace = context.options.project_root.resolve()
    system = [
        p for p in os.environ.get("PATH", "").split(os.pathsep) if p and not Path(p).resolve().is_relative_to(workspace)
    ]
    return [str(tools), *system]


def _profile_env(config: LakeConfig) -> dict[str, str]:
    return {"AWS_PROFILE": lake_names(config).deployment_profile}


def _stack_reports(context: Context, repo: RepoCopy, env_name: str, kind: str) -> list[report.StackReport]:
    config = context.config
    account = config.env(env_name).account
    cloudformation = context.client("cloudformation", env_name)

    def client(service: str) -> Any:
        return context.client(service, env_name)

    stage_dirs = [
        p for p in (repo.path / buildspec.CDK_OUT).glob("assembly-*") if p.name.endswith(f"-{env_name.capitalize()}")
    ]
    reports = []
    for stage_dir in stage_dirs:
        for template in sorted(stage_dir.glob("*.template.json")):
            stack_name = _stack_name_of(stage_dir, template)
            reports.append(report.stack_report(template, stack_name, account, cloudformation, client))
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


def _status(context: Context) -> status.StatusReport:
    """What `lakeops status` reads, with the operator's profiles (the emulator's accounts) and the rehearsal's
    repositories."""
    repos = [status.LocalRepository(kind, repo.path) for kind, repo in context.repos.items()]
    access = status.ProfileAccess(default_profiles(context.config))
    return status.collect(context.config, context.options.config_path, repos, access)


def _status_step(context: Context, deployed: Sequence[str]) -> str:
    """`lakeops status` after an environment: in every environment deployed so far, each repository's branch head
    is the commit its pipeline deployed and verified, nothing waits to be promoted into it, its config is the
    published one. Returns the table."""
    with context.runner.step(f"lakeops status after {deployed[-1]}") as record:
        found = _status(context)
        table = status.render(found)
        print(table, flush=True)
        unsettled = found.unsettled(deployed)
        if unsettled:
            raise StepFailed("lakeops status: " + "; ".join(unsettled))
        record.detail = f"{', '.join(deployed)}: every branch head deployed and verified, 0 commits pending"
    return table


def _new_commit_is_pending(context: Context, selected: Sequence[str]) -> None:
    """A new commit on the first environment's branch shows as one commit pending for the next environment."""
    if len(selected) < 2:
        return
    first, second = selected[0], selected[1]
    with context.runner.step(f"a new commit on {first}: lakeops status shows it pending for {second}") as record:
        for kind, repo in context.repos.items():
            commit_directly(repo, context.config.branch_for(kind, first), f"a change made on {first} after the run")
        found = _status(context)
        print(status.render(found), flush=True)
        rows = [found.row(kind, second) for kind in context.repos]
        wrong = [f"{row.repository}: {row.pending_text()}" for row in rows if row.pending != 1]
        if wrong:
            raise StepFailed(f"lakeops status should show 1 commit pending for {second}: {'; '.join(wrong)}")
        record.detail = f"{second}: 1 commit pending from {first} in each repository"
