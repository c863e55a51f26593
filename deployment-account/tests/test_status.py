"""`lakeops status`: git heads and pending promotions from temporary repositories, pipeline states from stubbed
CodePipeline answers, and the whole command against the emulator with the operator's profiles."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from datalake_config import LakeConfig, lake_names, names_for
from datalake_config.publish import config_digest
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from lakeops.cli import main
from lakeops.emulator.process import Emulator
from lakeops.errors import LakeopsError
from lakeops.rehearsal.workspace import write_profiles
from lakeops.status import (
    LocalRepository,
    ProfileAccess,
    collect,
    find_repositories,
    read_pipeline,
    render,
)

T0 = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)
T1 = datetime(2025, 3, 4, 10, 15, tzinfo=UTC)
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ENDPOINT_URL",
)


# --- temporary repositories ----------------------------------------------------------------------------------
def git(repo: Path, *args: str) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


def make_repo(path: Path, config: LakeConfig, kind: str, origin: str | None = None) -> Path:
    """Every environment branch at one commit, as after a full promotion."""
    path.mkdir(parents=True)
    branches = [config.branch_for(kind, env) for env in config.environment_names]
    git(path, "init", "--quiet", "--initial-branch", branches[0])
    git(path, "commit", "--quiet", "--allow-empty", "-m", "import")
    for branch in branches[1:]:
        git(path, "branch", branch)
    if origin:
        git(path, "remote", "add", "origin", origin)
    return path


def commit_on(repo: Path, branch: str, message: str) -> str:
    git(repo, "checkout", "--quiet", branch)
    git(repo, "commit", "--quiet", "--allow-empty", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def head(repo: Path, branch: str) -> str:
    return git(repo, "rev-parse", f"refs/heads/{branch}")


@pytest.fixture()
def repos(tmp_path: Path, example_config: LakeConfig) -> dict[str, Path]:
    return {kind: make_repo(tmp_path / kind, example_config, kind) for kind in ("infra", "etl")}


def test_branch_heads_and_what_the_next_promotion_would_move(
    example_config: LakeConfig, repos: dict[str, Path]
) -> None:
    commit_on(repos["infra"], "dev", "one")
    commit_on(repos["infra"], "dev", "two")
    commit_on(repos["etl"], "test", "pushed straight to test")  # promote dev → test would be refused
    local = [LocalRepository(kind, path) for kind, path in repos.items()]
    report = collect(example_config, EXAMPLE_CONFIG_PATH, local, access=None)

    infra_dev, infra_test, infra_prod = (report.row("infra", env) for env in ("dev", "test", "prod"))
    assert infra_dev.head == head(repos["infra"], "dev") and infra_dev.next_promotion is None
    assert infra_test.pending == 2 and infra_test.pending_text() == "2 from dev"
    assert infra_prod.pending == 0
    etl_test = report.row("etl", "test")
    assert etl_test.next_promotion is not None and etl_test.next_promotion.refused_by == 1
    assert etl_test.pending_text() == "refused: 1 only on test"
    assert report.row("etl", "prod").pending == 1  # test has a commit prod lacks
    # git alone: the pipelines and the published config are shown as not read, never guessed
    assert infra_dev.verified_text() == "not read" and infra_dev.last_text() == "not read"
    assert all(not c.read for c in report.configs)


def test_repositories_are_found_as_promote_finds_them(
    tmp_path: Path, example_config: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    named = make_repo(tmp_path / "clone", example_config, "etl", origin="ssh://git.example/v1/repos/acme-lake-etl")
    plain = make_repo(tmp_path / "plain", example_config, "infra")
    # KIND=PATH, or the origin URL naming a configured repository
    found = find_repositories(example_config, [f"infra={plain}", str(named)], tmp_path)
    assert [(r.kind, r.path) for r in found] == [("infra", plain), ("etl", named)]
    with pytest.raises(LakeopsError, match=r"cannot tell which repository .* pass infra=.* or etl="):
        find_repositories(example_config, [str(plain)], tmp_path)
    with pytest.raises(LakeopsError, match="not a git repository"):
        find_repositories(example_config, [f"infra={tmp_path / 'nowhere'}"], tmp_path)
    # no --repo: the repository around the current directory, when its origin names one
    assert [r.kind for r in find_repositories(example_config, [], named)] == ["etl"]
    assert find_repositories(example_config, [], plain) == []


# --- pipeline states from CodePipeline's answers ---------------------------------------------------------------
def summary(execution: str, status: str, commit: str | None = None, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "pipelineExecutionId": execution,
        "status": status,
        "startTime": T0,
        "lastUpdateTime": T1,
        **extra,
    }
    if commit:
        answer["sourceRevisions"] = [{"actionName": "acme-lake-infra", "revisionId": commit}]
    return answer


def stage(name: str, execution: str, status: str, actions: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "stageName": name,
        "latestExecution": {"pipelineExecutionId": execution, "status": status},
        "actionStates": actions,
    }


@pytest.fixture()
def stubbed() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client(
        "codepipeline", region_name="eu-west-1", aws_access_key_id="test", aws_secret_access_key="test"
    )
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


PIPELINE = "acme-lake-infra-prod-pipeline"


def test_succeeded_is_the_verified_commit(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("e2", "Succeeded", "b" * 40), summary("e1", "Succeeded", "a" * 40)]},
        {"pipelineName": PIPELINE},
    )
    status = read_pipeline(client, PIPELINE)
    assert status.verified_commit == "b" * 40 and status.verified_at == T1
    assert status.last is not None and status.last.describe() == "succeeded at 2025-03-04 10:15 UTC"


def test_failed_names_the_step_and_the_verified_commit_stays_the_last_succeeded(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("e3", "Failed", "c" * 40)], "nextToken": "page2"},
        {"pipelineName": PIPELINE},
    )
    stubber.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("e2", "Succeeded", "b" * 40)]},
        {"pipelineName": PIPELINE, "nextToken": "page2"},
    )
    failed_action = {
        "actionName": "Verify",
        "latestExecution": {
            "status": "Failed",
            "lastStatusChange": T1,
            "errorDetails": {"code": "JobFailed", "message": "contract parameter missing"},
        },
    }
    deployed = {"actionName": "acme-lake-prod-infra-storage.Deploy", "latestExecution": {"status": "Succeeded"}}
    stubber.add_response(
        "get_pipeline_state",
        {"pipelineName": PIPELINE, "stageStates": [stage("Prod", "e3", "Failed", [deployed, failed_action])]},
        {"name": PIPELINE},
    )
    status = read_pipeline(client, PIPELINE)
    assert status.verified_commit == "b" * 40  # the failed run's commit is not verified
    assert status.last is not None
    assert status.last.describe() == "failed at Prod/Verify (2025-03-04 10:15 UTC): contract parameter missing"


def test_waiting_for_approval_since_the_approval_started(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("e4", "InProgress", "d" * 40), summary("e2", "Succeeded", "b" * 40)]},
        {"pipelineName": PIPELINE},
    )
    approval = {
        "actionName": "Approve",
        "latestExecution": {"status": "InProgress", "lastStatusChange": T1, "token": "approval-token"},
    }
    stubber.add_response(
        "get_pipeline_state",
        {
            "pipelineName": PIPELINE,
            "stageStates": [
                stage(
                    "Build", "e4", "Succeeded", [{"actionName": "Synth", "latestExecution": {"status": "Succeeded"}}]
                ),
                stage("Prod", "e4", "InProgress", [approval]),
            ],
        },
        {"name": PIPELINE},
    )
    status = read_pipeline(client, PIPELINE)
    assert status.last is not None and status.last.state == "waiting for approval"
    assert status.last.describe() == "waiting for approval at Prod/Approve since 2025-03-04 10:15 UTC"
    assert status.verified_commit == "b" * 40


def test_running_names_the_running_step(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "list_pipeline_executions",
        {"pipelineExecutionSummaries": [summary("e5", "InProgress")]},
        {"pipelineName": PIPELINE},
    )
    synth = {"actionName": "Synth", "latestExecution": {"status": "InProgress", "lastStatusChange": T1}}
    stubber.add_response(
        "get_pipeline_state",
        {"pipelineName": PIPELINE, "stageStates": [stage("Build", "e5", "InProgress", [synth])]},
        {"name": PIPELINE},
    )
    status = read_pipeline(client, PIPELINE)
    assert status.verified_commit is None  # never succeeded yet
    assert status.last is not None and status.last.describe() == "running at Build/Synth since 2025-03-04 09:30 UTC"


def test_a_pipeline_not_created_yet(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("list_pipeline_executions", "PipelineNotFoundException", "no such pipeline")
    status = read_pipeline(client, PIPELINE)
    assert not status.exists and status.last is None


# --- the command against the emulator --------------------------------------------------------------------------
DEPLOYMENT = "111111111111"
SOURCE_ACTION_TYPE = {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("emulator"), default_account=DEPLOYMENT, region="eu-west-1") as emu:
        yield emu


@pytest.fixture()
def operator(
    emulator: Emulator, example_config: LakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """The operator's machine: AWS profiles for every account of the example config, as the rehearsal writes them."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    for name, value in write_profiles(tmp_path, example_config, emulator).items():
        monkeypatch.setenv(name, value)
    names = lake_names(example_config)
    return {
        role: boto3.Session(profile_name=profile)
        for role, profile in [("deployment", names.deployment_profile)]
        + [(env, names.environment_profile(env)) for env in example_config.environment_names]
    }


def create_pipeline(deployment: Any, name: str) -> None:
    trust = {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "codepipeline.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
    iam = deployment.client("iam")
    try:
        role = iam.get_role(RoleName="status-test-pipeline")["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        role = iam.create_role(RoleName="status-test-pipeline", AssumeRolePolicyDocument=json.dumps(trust))
        role = role["Role"]["Arn"]
    stage = {"name": "Source", "actions": [{"name": "Src", "actionTypeId": SOURCE_ACTION_TYPE, "configuration": {}}]}
    artifacts = {"type": "S3", "location": "artifacts"}
    deployment.client("codepipeline").create_pipeline(
        pipeline={"name": name, "roleArn": role, "artifactStore": artifacts, "stages": [stage, {**stage, "name": "B"}]}
    )


def test_status_against_the_emulator_with_the_operators_profiles(
    operator: dict[str, Any],
    example_config: LakeConfig,
    repos: dict[str, Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    """dev and test deployed and verified at their heads (prod's pipeline never ran); dev then gets a new commit;
    dev's published config is the file's, test's is another, prod's is not published."""
    deployment = operator["deployment"]
    pipelines = deployment.client("codepipeline")
    for kind in ("infra", "etl"):
        for env in example_config.environment_names:
            name = names_for(example_config, env).pipeline_name(kind)
            create_pipeline(deployment, name)
            if env != "prod":  # what the rehearsal records once a run deployed and verified a commit
                revision = {"actionName": "Src", "revisionType": "COMMIT_ID", "revisionValue": head(repos[kind], env)}
                pipelines.start_pipeline_execution(name=name, sourceRevisions=[revision])
    new = commit_on(repos["infra"], "dev", "after the deployment")
    digest = names_for(example_config, "dev").fact("config-digest")
    operator["dev"].client("ssm").put_parameter(Name=digest, Value=config_digest(example_config), Type="String")
    other = names_for(example_config, "test").fact("config-digest")
    operator["test"].client("ssm").put_parameter(Name=other, Value="0" * 16, Type="String")

    argv = ["status", "--repo", f"infra={repos['infra']}", "--repo", f"etl={repos['etl']}"]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["complete"] and out["unavailable"] == []
    rows = {(r["repository"], r["env"]): r for r in out["rows"]}
    infra_dev = rows["infra", "dev"]
    assert infra_dev["head"] == new and infra_dev["head_verified"] is False and infra_dev["head_ahead_of_verified"] == 1
    assert rows["infra", "test"]["next_promotion"]["commits"] == 1
    for key in [("infra", "test"), ("etl", "dev"), ("etl", "test")]:
        assert rows[key]["head_verified"] is True and rows[key]["last_execution"]["state"] == "succeeded"
    assert rows["etl", "test"]["next_promotion"]["commits"] == 0
    assert rows["infra", "prod"]["verified"] is None and rows["infra", "prod"]["last_execution"] is None
    published = {c["env"]: c for c in out["published_config"]}
    assert published["dev"]["matches"] is True
    assert published["test"]["matches"] is False and published["test"]["published"] == "0" * 16
    assert published["prod"]["read"] and published["prod"]["published"] is None

    assert main(argv) == 0
    table = capsys.readouterr().out
    assert f"infra  dev   dev     {new[:10]}  {head(repos['infra'], 'test')[:10]} (head +1)" in table
    assert "1 from dev" in table and "never ran" in table
    assert "not published (/acme-lake/prod/facts/config-digest)" in table


def test_without_credentials_it_names_the_profiles_and_shows_git(
    example_config: LakeConfig,
    repos: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "empty").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "empty"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    commit_on(repos["etl"], "dev", "new")

    code = main(["status", "--repo", f"infra={repos['infra']}", "--repo", f"etl={repos['etl']}"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in out + err
    assert "status incomplete: 4 source(s) not read" in err
    assert "pipelines not read: needs the profile acme-lake-deployment (account 111111111111)" in out
    assert "choose another with --profile deployment=NAME" in out
    assert "the published config of prod not read: needs the profile acme-lake-prod" in out
    # what git alone tells
    assert head(repos["etl"], "dev")[:10] in out and "1 from dev" in out


def test_profiles_of_another_account_are_refused_by_name(
    operator: dict[str, Any], example_config: LakeConfig, repos: dict[str, Path]
) -> None:
    names = lake_names(example_config)
    # the dev profile for the deployment role: its credentials act in 222222222222, not the deployment account
    access = ProfileAccess(
        {"deployment": names.environment_profile("dev")}
        | {e: names.environment_profile(e) for e in example_config.environment_names}
    )
    report = collect(example_config, EXAMPLE_CONFIG_PATH, [], access)
    assert any(
        "profile acme-lake-dev belongs to account 222222222222, not 111111111111" in line for line in report.unavailable
    )
    assert "git not read for infra, etl" in render(report)


def test_unsettled_names_what_is_not_at_rest(example_config: LakeConfig, repos: dict[str, Path]) -> None:
    commit_on(repos["infra"], "dev", "new")
    local = [LocalRepository(kind, path) for kind, path in repos.items()]
    report = collect(example_config, EXAMPLE_CONFIG_PATH, local, access=None)
    report.unavailable.clear()
    problems = report.unsettled(["dev", "test"])
    assert "infra test: 1 from dev waiting" in problems
    assert any(p.startswith("infra dev: head") for p in problems)  # not read, so not verified
    assert any(p.startswith("config dev:") for p in problems)
