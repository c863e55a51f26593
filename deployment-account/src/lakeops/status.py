"""`lakeops status`: which commit of which repository runs in which environment, and what is waiting.

For every repository × environment it reads, and changes nothing:
- git (the local repositories, found as `lakeops promote` finds them): the environment branch's head
  (`config.branch_for`), and how many commits the next promotion into it would move (`rev-list` from this
  environment's branch to the previous one's), or that it would be refused (not a fast-forward);
- CodePipeline (deployment account): the commit last deployed *and verified*, which is the source revision of
  the pipeline's last succeeded execution (every step ran, Verify included: the notion the promotion guard
  asks for), and the state of its last execution (running, failed at a step, waiting for approval, succeeded);
- SSM (each environment's account): the published `config-digest` fact against the digest of the config file.

Each AWS read uses the operator's profiles as `lakeops bootstrap` does (`<prefix>-deployment`,
`<prefix>-<env>`); a source that cannot be read is named with the profile it needs, and the rest is shown.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from datalake_config import LakeConfig, names_for
from datalake_config.cli import aws_failure
from datalake_config.naming import REPOSITORIES
from datalake_config.publish import config_digest
from lakeops.errors import LakeopsError

DIGEST_FACT = "config-digest"  # the fact `config publish` writes (`publish.environment_facts`)
SHORT = 10  # characters of a commit id in the table
# Execution statuses of the CodePipeline API, as this command words them.
STATE_WORDS = {
    "Succeeded": "succeeded",
    "InProgress": "running",
    "Failed": "failed",
    "Stopped": "stopped",
    "Stopping": "stopping",
    "Superseded": "superseded",
    "Cancelled": "cancelled",
}


class Unavailable(LakeopsError):
    """A source of the status could not be read; the message names what and the profile it needs."""


# --- git --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LocalRepository:
    kind: str  # "infra" | "etl"
    path: Path


def find_repositories(config: LakeConfig, specs: Sequence[str], cwd: Path) -> list[LocalRepository]:
    """`KIND=PATH` or `PATH` (its kind told by the origin URL naming a configured repository, as promote does).

    Without specs: the repository around `cwd`, when its origin names one of the configured repositories."""
    found: dict[str, LocalRepository] = {}
    for spec in specs:
        kind, sep, path = spec.partition("=")
        if not sep or kind not in REPOSITORIES:
            kind, path = "", spec
        root = _toplevel(Path(path))
        if root is None:
            raise LakeopsError(f"--repo {spec}: {path} is not a git repository")
        kind = kind or _kind_from_origin(config, root) or ""
        if not kind:
            raise LakeopsError(
                f"--repo {spec}: cannot tell which repository {root} is (its origin names none of "
                f"{_configured_names(config)}); pass {' or '.join(f'{k}={path}' for k in REPOSITORIES)}"
            )
        if kind in found:
            raise LakeopsError(f"--repo {spec}: the {kind} repository is already {found[kind].path}")
        found[kind] = LocalRepository(kind, root)
    if not specs:
        around = _toplevel(cwd)
        told = _kind_from_origin(config, around) if around is not None else None
        if around is not None and told is not None:
            found[told] = LocalRepository(told, around)
    return [found[k] for k in REPOSITORIES if k in found]


def _configured_names(config: LakeConfig) -> str:
    return ", ".join(f"{k}: {config.repository(k).source.repository_name}" for k in REPOSITORIES)


def _kind_from_origin(config: LakeConfig, root: Path) -> str | None:
    url = _git(root, "remote", "get-url", "origin")
    if not url:
        return None
    last = url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1].removesuffix(".git")
    named = [k for k in REPOSITORIES if config.repository(k).source.repository_name == last]
    return named[0] if len(named) == 1 else None


def _toplevel(path: Path) -> Path | None:
    top = _git(path, "rev-parse", "--show-toplevel") if path.is_dir() else None
    return Path(top) if top else None


def _git(repo: Path, *args: str) -> str | None:
    """git's output, or None when it fails (a missing branch, an unknown commit: status reports, never raises)."""
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def branch_head(repo: Path, branch: str) -> str | None:
    """The local branch's commit (promotion works on local branches: fetch and pull first)."""
    return _git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}^{{commit}}")


def commits_between(repo: Path, older: str, newer: str) -> int | None:
    """How many commits `newer` has that `older` lacks; None when either is unknown here."""
    counted = _git(repo, "rev-list", "--count", f"{older}..{newer}")
    return int(counted) if counted is not None and counted.isdigit() else None


# --- CodePipeline -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class LastExecution:
    """The pipeline's most recent execution, as one state."""

    state: str  # running | waiting for approval | failed | succeeded | stopped | stopping | superseded | cancelled
    execution_id: str
    at: datetime | None  # since when (running: started; waiting: the approval's start; else: last change)
    step: str | None = None  # `Stage/Action` where it runs, waits or failed, when the pipeline state tells
    message: str | None = None

    def describe(self) -> str:
        when = _when(self.at)
        if self.state == "waiting for approval":
            return f"waiting for approval at {self.step} since {when}"
        if self.state == "running":
            return f"running{f' at {self.step}' if self.step else ''} since {when}"
        if self.state == "failed":
            where = f" at {self.step}" if self.step else ""
            why = f": {_one_line(self.message)}" if self.message else ""
            return f"failed{where} ({when}){why}"
        return f"{self.state} at {when}"

    def as_json(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "execution_id": self.execution_id,
            "at": _iso(self.at),
            "step": self.step,
            "message": self.message,
            "summary": self.describe(),
        }


@dataclass(frozen=True)
class PipelineStatus:
    name: str
    exists: bool
    last: LastExecution | None = None  # None: it never ran (or it does not exist)
    verified_commit: str | None = None  # source revision of the last succeeded execution
    verified_at: datetime | None = None
    verified_execution: str | None = None


def read_pipeline(client: Any, name: str) -> PipelineStatus:
    """The last execution's state and the commit of the last succeeded one (ListPipelineExecutions, newest
    first, read until a succeeded execution is found; GetPipelineState only when the last one has not succeeded)."""
    latest: dict[str, Any] | None = None
    succeeded: dict[str, Any] | None = None
    request: dict[str, Any] = {"pipelineName": name}
    try:
        while succeeded is None:
            page = client.list_pipeline_executions(**request)
            for summary in page.get("pipelineExecutionSummaries", []):
                latest = latest or summary
                if summary.get("status") == "Succeeded":
                    succeeded = summary
                    break
            if not page.get("nextToken"):
                break
            request["nextToken"] = page["nextToken"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "PipelineNotFoundException":
            return PipelineStatus(name, exists=False)
        raise
    last = _last_execution(client, name, latest) if latest is not None else None
    if succeeded is None:
        return PipelineStatus(name, exists=True, last=last)
    revisions = [r["revisionId"] for r in succeeded.get("sourceRevisions", []) if r.get("revisionId")]
    return PipelineStatus(
        name,
        exists=True,
        last=last,
        verified_commit=revisions[0] if revisions else None,
        verified_at=succeeded.get("lastUpdateTime"),
        verified_execution=succeeded.get("pipelineExecutionId"),
    )


def _last_execution(client: Any, name: str, summary: Mapping[str, Any]) -> LastExecution:
    status = str(summary.get("status", "Unknown"))
    execution_id = str(summary.get("pipelineExecutionId", ""))
    state = STATE_WORDS.get(status, status.lower())
    if status == "InProgress":
        return _in_progress(client, name, execution_id, summary.get("startTime"))
    if status == "Failed":
        return _failed(client, name, execution_id, summary.get("lastUpdateTime"))
    reason = summary.get("stopTrigger", {}).get("reason") if status in ("Stopped", "Stopping") else None
    return LastExecution(state, execution_id, summary.get("lastUpdateTime"), message=reason)


def _stage_actions(client: Any, name: str, execution_id: str) -> Iterable[tuple[str, Mapping[str, Any]]]:
    """(stage name, action state) of the stages the execution is in (GetPipelineState)."""
    try:
        state = client.get_pipeline_state(name=name)
    except (ClientError, BotoCoreError):
        return  # the step is then not named; the execution's own status still is
    for stage in state.get("stageStates", []):
        if stage.get("latestExecution", {}).get("pipelineExecutionId") != execution_id:
            continue
        for action in stage.get("actionStates", []):
            yield str(stage.get("stageName")), action


def _in_progress(client: Any, name: str, execution_id: str, started: datetime | None) -> LastExecution:
    for stage, action in _stage_actions(client, name, execution_id):
        latest = action.get("latestExecution", {})
        if latest.get("status") != "InProgress":
            continue
        step = f"{stage}/{action.get('actionName')}"
        # GetPipelineState gives the token of an open approval request, and only of one
        if latest.get("token"):
            return LastExecution("waiting for approval", execution_id, latest.get("lastStatusChange"), step)
        return LastExecution("running", execution_id, started, step)
    return LastExecution("running", execution_id, started)


def _failed(client: Any, name: str, execution_id: str, at: datetime | None) -> LastExecution:
    for stage, action in _stage_actions(client, name, execution_id):
        latest = action.get("latestExecution", {})
        if latest.get("status") != "Failed":
            continue
        message = latest.get("errorDetails", {}).get("message") or latest.get("summary")
        return LastExecution(
            "failed", execution_id, latest.get("lastStatusChange") or at, f"{stage}/{action.get('actionName')}", message
        )
    return LastExecution("failed", execution_id, at)


# --- AWS access through the operator's profiles ----------------------------------------------------------
@dataclass
class ProfileAccess:
    """Clients per role (`deployment` or an environment) from that role's profile, each checked to act in the
    account the role needs before anything is read."""

    profiles: Mapping[str, str]
    endpoint_url: str | None = None
    _sessions: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def client(self, role: str, service: str, account: str, region: str, what: str) -> Any:
        profile = self.profiles[role]
        try:
            if role not in self._sessions:
                session = boto3.Session(profile_name=profile)
                actual = session.client("sts", region_name=region, endpoint_url=self.endpoint_url).get_caller_identity()
                if actual["Account"] != account:
                    raise Unavailable(
                        f"{what} not read: profile {profile} belongs to account {actual['Account']}, "
                        f"not {account}; choose another with --profile {role}=NAME"
                    )
                self._sessions[role] = session
            return self._sessions[role].client(service, region_name=region, endpoint_url=self.endpoint_url)
        except (ClientError, BotoCoreError) as exc:
            raise Unavailable(unavailable(what, profile, role, account, exc)) from None


def unavailable(what: str, profile: str, role: str, account: str, exc: ClientError | BotoCoreError) -> str:
    if isinstance(exc, ProfileNotFound):
        reason = "no such profile in the AWS config"
    elif isinstance(exc, NoCredentialsError):
        reason = "it has no credentials"
    else:
        reason = aws_failure("reading", exc).removeprefix("reading: ")
    return (
        f"{what} not read: needs the profile {profile} (account {account}): {reason}; "
        f"choose another with --profile {role}=NAME"
    )


# --- the report ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NextPromotion:
    source_env: str
    source_branch: str
    commits: int | None  # what `lakeops promote <source> <env>` would move; None: unknown here
    refused_by: int = 0  # commits only this environment's branch has: promote would refuse (no fast-forward)


@dataclass
class Row:
    """One repository in one environment."""

    repository: str
    env: str
    branch: str
    pipeline: str
    repo_path: Path | None = None
    head: str | None = None
    pipeline_status: PipelineStatus | None = None  # None: not read
    next_promotion: NextPromotion | None = None  # None: the first environment
    head_ahead: int | None = None  # commits on the branch after the verified one
    verified_on_branch: bool | None = None  # False: the verified commit is not on the branch (or not here)

    @property
    def verified(self) -> str | None:
        return self.pipeline_status.verified_commit if self.pipeline_status else None

    @property
    def pending(self) -> int | None:
        return self.next_promotion.commits if self.next_promotion else None

    def verified_text(self) -> str:
        if self.pipeline_status is None:
            return "not read"
        if not self.pipeline_status.exists:
            return "no pipeline"
        if self.verified is None:
            return "none yet"
        short = self.verified[:SHORT]
        if self.head is None:
            return short
        if self.verified == self.head:
            return f"{short} (head)"
        if self.verified_on_branch is False:
            return f"{short} (not on {self.branch} here)"
        return f"{short} (head +{self.head_ahead})" if self.head_ahead else short

    def head_text(self) -> str:
        if self.repo_path is None:
            return "no repo"
        return self.head[:SHORT] if self.head else "no branch"

    def pending_text(self) -> str:
        promotion = self.next_promotion
        if promotion is None:
            return "-"
        if promotion.refused_by:
            return f"refused: {promotion.refused_by} only on {self.branch}"
        if promotion.commits is None:
            return "?"
        return f"{promotion.commits} from {promotion.source_env}"

    def last_text(self) -> str:
        status = self.pipeline_status
        if status is None:
            return "not read"
        if not status.exists:
            return "no pipeline (lakeops bootstrap apply creates it)"
        return status.last.describe() if status.last else "never ran"

    def as_json(self) -> dict[str, Any]:
        status = self.pipeline_status
        promotion = self.next_promotion
        return {
            "repository": self.repository,
            "env": self.env,
            "branch": self.branch,
            "repo_path": str(self.repo_path) if self.repo_path else None,
            "head": self.head,
            "pipeline": self.pipeline,
            "pipeline_read": status is not None,
            "pipeline_exists": status.exists if status else None,
            "verified": (
                {
                    "commit": status.verified_commit,
                    "at": _iso(status.verified_at),
                    "execution_id": status.verified_execution,
                }
                if status and status.verified_commit
                else None
            ),
            "head_verified": (self.verified == self.head) if self.verified and self.head else None,
            "head_ahead_of_verified": self.head_ahead,
            "last_execution": status.last.as_json() if status and status.last else None,
            "next_promotion": (
                {
                    "from": promotion.source_env,
                    "from_branch": promotion.source_branch,
                    "commits": promotion.commits,
                    "refused_by": promotion.refused_by,
                }
                if promotion
                else None
            ),
        }


@dataclass
class PublishedConfig:
    """One environment's published `config-digest` fact against the config file's digest."""

    env: str
    account: str
    region: str
    parameter: str
    expected: str
    published: str | None = None
    read: bool = False

    @property
    def matches(self) -> bool | None:
        return self.published == self.expected if self.read else None

    def describe(self) -> str:
        if not self.read:
            return "not read"
        if self.published is None:
            return f"not published ({self.parameter}): run lakeops config publish"
        if self.matches:
            return "matches"
        return "differs from the config file: run lakeops config publish"

    def as_json(self) -> dict[str, Any]:
        return {
            "env": self.env,
            "account": self.account,
            "region": self.region,
            "parameter": self.parameter,
            "published": self.published,
            "read": self.read,
            "matches": self.matches,
        }


@dataclass
class StatusReport:
    prefix: str
    config_path: Path
    digest: str
    repositories: list[LocalRepository]
    rows: list[Row]
    configs: list[PublishedConfig]
    unavailable: list[str] = field(default_factory=list)  # what could not be read, and the profile it needs

    @property
    def complete(self) -> bool:
        return not self.unavailable

    def row(self, repository: str, env: str) -> Row:
        return next(r for r in self.rows if r.repository == repository and r.env == env)

    def unsettled(self, envs: Iterable[str]) -> list[str]:
        """What is not at rest in `envs`: a branch head not deployed and verified, commits waiting for the
        promotion into it, a published config that is not the file's, or anything not read."""
        wanted = set(envs)
        problems = list(self.unavailable)
        for row in self.rows:
            if row.env not in wanted:
                continue
            where = f"{row.repository} {row.env}"
            if row.head is None:
                problems.append(f"{where}: no branch head ({row.head_text()})")
            elif row.verified != row.head:
                problems.append(f"{where}: head {row.head[:SHORT]} is not the verified commit ({row.verified_text()})")
            if row.pending:
                problems.append(f"{where}: {row.pending_text()} waiting")
        problems += [f"config {c.env}: {c.describe()}" for c in self.configs if c.env in wanted and not c.matches]
        return problems

    def as_json(self) -> dict[str, Any]:
        return {
            "prefix": self.prefix,
            "config": {"path": str(self.config_path), "digest": self.digest},
            "repositories": {r.kind: str(r.path) for r in self.repositories},
            "complete": self.complete,
            "unavailable": self.unavailable,
            "rows": [r.as_json() for r in self.rows],
            "published_config": [c.as_json() for c in self.configs],
        }


def collect(
    config: LakeConfig, config_path: Path, repositories: Sequence[LocalRepository], access: ProfileAccess | None
) -> StatusReport:
    """Read git, CodePipeline and SSM; `access` None reads git alone."""
    local = {r.kind: r.path for r in repositories}
    rows = [_git_row(config, kind, env, local.get(kind)) for kind in REPOSITORIES for env in config.environment_names]
    report = StatusReport(
        prefix=config.prefix,
        config_path=config_path,
        digest=config_digest(config),
        repositories=list(repositories),
        rows=rows,
        configs=[
            PublishedConfig(
                env,
                config.env(env).account,
                config.env(env).region,
                names_for(config, env).fact(DIGEST_FACT),
                config_digest(config),
            )
            for env in config.environment_names
        ],
    )
    missing = [k for k in REPOSITORIES if k not in local]
    if missing:
        report.unavailable.append(
            f"git not read for {', '.join(missing)}: no local repository "
            f"(pass {' '.join(f'--repo {k}=PATH' for k in missing)})"
        )
    if access is None:
        return report
    _read_pipelines(config, report, access)
    _read_published_config(report, access)
    for row in report.rows:
        if row.repo_path and row.head and row.verified and row.verified != row.head:
            extra = commits_between(row.repo_path, row.head, row.verified)
            row.verified_on_branch = extra == 0
            row.head_ahead = commits_between(row.repo_path, row.verified, row.head) if extra == 0 else None
    return report


def _git_row(config: LakeConfig, kind: str, env: str, repo: Path | None) -> Row:
    branch = config.branch_for(kind, env)
    row = Row(kind, env, branch, names_for(config, env).pipeline_name(kind), repo_path=repo)
    previous = config.previous_environment(env)
    if repo is None:
        if previous is not None:
            row.next_promotion = NextPromotion(previous, config.branch_for(kind, previous), None)
        return row
    row.head = branch_head(repo, branch)
    if previous is not None:
        source_branch = config.branch_for(kind, previous)
        source = branch_head(repo, source_branch)
        if row.head is None or source is None:
            row.next_promotion = NextPromotion(previous, source_branch, None)
        else:
            row.next_promotion = NextPromotion(
                previous,
                source_branch,
                commits_between(repo, row.head, source),
                commits_between(repo, source, row.head) or 0,
            )
    return row


def _read_pipelines(config: LakeConfig, report: StatusReport, access: ProfileAccess) -> None:
    deployment = config.deployment
    try:
        client = access.client("deployment", "codepipeline", deployment.account, deployment.region, "pipelines")
    except Unavailable as exc:
        report.unavailable.append(str(exc))
        return
    for row in report.rows:
        try:
            row.pipeline_status = read_pipeline(client, row.pipeline)
        except (ClientError, BotoCoreError) as exc:
            report.unavailable.append(f"pipeline {row.pipeline} not read: {aws_failure('reading', exc)}")


def _read_published_config(report: StatusReport, access: ProfileAccess) -> None:
    for published in report.configs:
        what = f"the published config of {published.env}"
        try:
            ssm = access.client(published.env, "ssm", published.account, published.region, what)
            published.published = ssm.get_parameter(Name=published.parameter)["Parameter"]["Value"]
        except Unavailable as exc:
            report.unavailable.append(str(exc))
            continue
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                report.unavailable.append(f"{what} not read: {aws_failure('reading', exc)}")
                continue
        except BotoCoreError as exc:
            report.unavailable.append(f"{what} not read: {exc}")
            continue
        published.read = True


# --- rendering -------------------------------------------------------------------------------------------
COLUMNS = ("repo", "env", "branch", "head", "deployed + verified", "next promotion", "last execution")


def render(report: StatusReport) -> str:
    """The summary table, the published config per environment, and what could not be read."""
    lines = [f"lakeops status: {report.prefix}, config {report.config_path} (digest {report.digest})", ""]
    table = [
        (r.repository, r.env, r.branch, r.head_text(), r.verified_text(), r.pending_text(), r.last_text())
        for r in report.rows
    ]
    lines += _table(COLUMNS, table)
    lines += ["", "published config (the config-digest fact in each environment's account):"]
    lines += _table(
        ("env", "account", "published", "against the config file"),
        [(c.env, c.account, c.published or "-", c.describe()) for c in report.configs],
    )
    if report.unavailable:
        lines += ["", "not read:"]
        lines += [f"  {u}" for u in report.unavailable]
    return "\n".join(lines)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(v)) for v in column) for column in zip(header, *rows, strict=False)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(f"{v:<{w}}" for v, w in zip(values, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _when(at: datetime | None) -> str:
    if at is None:
        return "an unknown time"
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def _one_line(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
