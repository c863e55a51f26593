"""Reprocessing a bookmark window: checks before anything starts, then a paused-bookmark run (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.moto_api import state_manager

from datalake_config import load
from datalake_config.naming import names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.cli import main as etl_jobs
from etl_jobs.reprocess import ReprocessError, plan_reprocess, start_reprocess

CONFIG = load(EXAMPLE_CONFIG_PATH)
DEV = CONFIG.env("dev")
JOB = names_for(CONFIG, "dev").glue_job_name("customer_cdc", "merge_current")


def create_job(glue: Any, name: str, bookmarks: bool) -> None:
    option = "job-bookmark-enable" if bookmarks else "job-bookmark-disable"
    glue.create_job(
        Name=name,
        Role="arn:aws:iam::222222222222:role/glue",
        Command={"Name": "glueetl", "ScriptLocation": "s3://assets/merge_current.py"},
        DefaultArguments={"--job-bookmark-option": option},
        GlueVersion="5.0",
    )


def finished_run(glue: Any, name: str) -> str:
    run_id = str(glue.start_job_run(JobName=name)["JobRunId"])
    # moto advances a run one state per read: STARTING → RUNNING → SUCCEEDED.
    while glue.get_job_run(JobName=name, RunId=run_id)["JobRun"]["JobRunState"] != "SUCCEEDED":
        pass
    return run_id


@pytest.fixture
def glue(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", DEV.region)
    with mock_aws():
        yield boto3.client("glue", region_name=DEV.region)


def test_reprocess_starts_a_paused_bookmark_run_over_the_window(glue: Any) -> None:
    create_job(glue, JOB, bookmarks=True)
    first, second = finished_run(glue, JOB), finished_run(glue, JOB)
    run_id = start_reprocess(glue, plan_reprocess(glue, JOB, first, second))
    arguments = glue.get_job_run(JobName=JOB, RunId=run_id)["JobRun"]["Arguments"]
    assert arguments["--job-bookmark-option"] == "job-bookmark-pause"
    assert (arguments["--job-bookmark-from"], arguments["--job-bookmark-to"]) == (first, second)


def test_refusals_name_the_job_or_run(glue: Any) -> None:
    with pytest.raises(ReprocessError, match=f"Glue job {JOB}: EntityNotFoundException"):
        plan_reprocess(glue, JOB, "jr_a", "jr_b")
    create_job(glue, "no-bookmarks", bookmarks=False)
    with pytest.raises(ReprocessError, match="does not use bookmarks"):
        plan_reprocess(glue, "no-bookmarks", "jr_a", "jr_b")
    create_job(glue, JOB, bookmarks=True)
    done = finished_run(glue, JOB)
    with pytest.raises(ReprocessError, match="--to-run jr_missing: not a run of"):
        plan_reprocess(glue, JOB, done, "jr_missing")
    later = finished_run(glue, JOB)
    with pytest.raises(ReprocessError, match="started after --to-run"):
        plan_reprocess(glue, JOB, later, done)
    # Hold new runs in their first state, as a real run is while it works.
    state_manager.set_transition(model_name="glue::job_run", transition={"progression": "manual", "times": 1000})
    try:
        running = str(glue.start_job_run(JobName=JOB)["JobRunId"])
        with pytest.raises(ReprocessError, match=r"state STARTING; only a SUCCEEDED run"):
            plan_reprocess(glue, JOB, done, running)
    finally:
        state_manager.unset_transition("glue::job_run")


def test_cli_reprocess_in_the_environment_account(glue: Any, capsys: pytest.CaptureFixture[str]) -> None:
    # The CLI assumes a role into the dev account; the job and its runs live there.
    dev_session = boto3.client("sts", region_name=DEV.region).assume_role(
        RoleArn=f"arn:aws:iam::{DEV.account}:role/OrganizationAccountAccessRole", RoleSessionName="test"
    )["Credentials"]
    dev_glue = boto3.client(
        "glue",
        region_name=DEV.region,
        aws_access_key_id=dev_session["AccessKeyId"],
        aws_secret_access_key=dev_session["SecretAccessKey"],
        aws_session_token=dev_session["SessionToken"],
    )
    create_job(dev_glue, JOB, bookmarks=True)
    first, second = finished_run(dev_glue, JOB), finished_run(dev_glue, JOB)
    base = ["reprocess", "customer_cdc/merge_current", "--env", "dev", "--from-run", first, "--to-run", second]
    base += ["--config", str(EXAMPLE_CONFIG_PATH)]
    assert etl_jobs([*base, "--dry-run"]) == 0
    assert "dry run: no run started" in capsys.readouterr().out
    assert len(dev_glue.get_job_runs(JobName=JOB)["JobRuns"]) == 2
    assert etl_jobs(base) == 0
    assert "started run jr_" in capsys.readouterr().out
    assert len(dev_glue.get_job_runs(JobName=JOB)["JobRuns"]) == 3
    assert etl_jobs([*base[:1], "legislators/conform", *base[2:]]) == 1
    assert "does not use bookmarks (group.yaml)" in capsys.readouterr().err
    assert etl_jobs([*base[:3], "qa", *base[4:]]) == 1
    assert "--env qa: unknown environment" in capsys.readouterr().err


def test_reprocess_refuses_an_unknown_job_before_any_aws_call(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = etl_jobs(["reprocess", "customer_cdc/nope", "--env", "dev", "--from-run", "a", "--to-run", "b"])
    assert code == 1
    assert "no job 'nope'" in capsys.readouterr().err
