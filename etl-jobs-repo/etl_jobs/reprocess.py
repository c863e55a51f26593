"""Reprocess a window of input by bookmark run ids: a job run with `job-bookmark-pause` and from/to run ids.

Glue then processes the input first seen after run FROM up to and including run TO, without moving the
job's bookmark, so the regular incremental runs carry on where they were. Both runs must belong to the
job, have succeeded (only successful runs commit a bookmark) and be in order; the job must use bookmarks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

BOOKMARK_OPTION = "--job-bookmark-option"
BOOKMARK_ENABLED = "job-bookmark-enable"


class ReprocessError(RuntimeError):
    """A reprocessing request refused before any run starts, or a run Glue refused to start."""


@dataclass(frozen=True)
class ReprocessPlan:
    """The run to start: job name and the bookmark arguments."""

    job_name: str
    from_run: str
    to_run: str

    @property
    def arguments(self) -> dict[str, str]:
        return {
            BOOKMARK_OPTION: "job-bookmark-pause",
            "--job-bookmark-from": self.from_run,
            "--job-bookmark-to": self.to_run,
        }


def plan_reprocess(glue: Any, job_name: str, from_run: str, to_run: str) -> ReprocessPlan:
    """Check the job and both runs; raises ReprocessError naming what is wrong."""
    try:
        job = glue.get_job(JobName=job_name)["Job"]
    except ClientError as exc:
        raise ReprocessError(f"Glue job {job_name}: {_reason(exc)}") from None
    option = job.get("DefaultArguments", {}).get(BOOKMARK_OPTION)
    if option != BOOKMARK_ENABLED:
        raise ReprocessError(
            f"Glue job {job_name} does not use bookmarks ({BOOKMARK_OPTION} is {option or 'not set'}); "
            "there is no bookmark window to reprocess"
        )
    runs = {label: _run(glue, job_name, run_id, label) for label, run_id in (("from", from_run), ("to", to_run))}
    for label, run in runs.items():
        if run["JobRunState"] != "SUCCEEDED":
            raise ReprocessError(
                f"--{label}-run {run['Id']}: state {run['JobRunState']}; only a SUCCEEDED run has a bookmark to use"
            )
    if runs["from"]["StartedOn"] > runs["to"]["StartedOn"]:
        raise ReprocessError(f"--from-run {from_run} started after --to-run {to_run}; give the earlier run first")
    return ReprocessPlan(job_name=job_name, from_run=from_run, to_run=to_run)


def start_reprocess(glue: Any, plan: ReprocessPlan) -> str:
    """Start the paused-bookmark run; returns its run id."""
    try:
        response = glue.start_job_run(JobName=plan.job_name, Arguments=plan.arguments)
    except ClientError as exc:
        raise ReprocessError(f"Glue job {plan.job_name}: could not start the run: {_reason(exc)}") from None
    return str(response["JobRunId"])


def _run(glue: Any, job_name: str, run_id: str, label: str) -> dict[str, Any]:
    try:
        run: dict[str, Any] = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]
    except ClientError as exc:
        raise ReprocessError(f"--{label}-run {run_id}: not a run of {job_name} ({_reason(exc)})") from None
    return run


def _reason(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'error')}: {error.get('Message', str(exc))}"
