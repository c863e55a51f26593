"""Every job script agrees with its group.yaml, and the local runner refuses bad requests before Spark starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from etl_jobs.local_runner import RunnerError, job_argv, load_job_module, quarantine_path, resolve, run_job
from etl_jobs.spec import JOBS_DIR, discover
from lakejobs.args import PLATFORM_ARGS

GROUPS = discover(JOBS_DIR)
JOBS = [(group, job) for group in GROUPS for job in group.jobs]


def test_the_example_groups_are_discovered() -> None:
    assert [g.name for g in GROUPS] == ["customer_cdc", "legislators"]


@pytest.mark.parametrize(("group", "job"), JOBS, ids=[f"{g.name}/{j.name}" for g, j in JOBS])
def test_script_arguments_match_the_spec(group, job) -> None:  # type: ignore[no-untyped-def]
    module = load_job_module(group, job)
    declared = set(module.ARGS.names) - {a.name for a in PLATFORM_ARGS}
    from_spec = (
        {f"input_{i.name}" for i in job.inputs}
        | {f"output_{o.name}" for o in job.outputs}
        | {name.removeprefix("--") for name in job.arguments}
    )
    assert declared == from_spec
    # The argument list a deployed run gets parses (platform arguments included).
    argv = job_argv(
        group,
        job,
        {i.name: f"s3://bucket/{i.prefix}" for i in job.inputs},
        {o.name: f"s3://bucket/{o.prefix}" for o in job.outputs},
        quarantine="s3://bucket/quarantine/",
    )
    argv += ["--JOB_NAME", "x", "--job-bookmark-option", "job-bookmark-enable", "--TempDir", "s3://bucket/tmp/"]
    parsed = module.ARGS.parse(argv)
    assert parsed["group_name"] == group.name
    if job.quarantine:
        assert parsed["quarantine_path"] == "s3://bucket/quarantine/"


def test_scripts_import_awsglue_only_under_main() -> None:
    for group, job in JOBS:
        source = group.script_path(job).read_text()
        head, _, tail = source.partition('if __name__ == "__main__":')
        assert "awsglue" not in head, f"{job.script} imports awsglue outside the Glue edge"
        assert "run_in_glue(main, ARGS)" in tail


def test_runner_refusals_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(RunnerError, match=r"no job group 'nope'.*groups: customer_cdc, legislators"):
        resolve("nope", "x")
    with pytest.raises(RunnerError, match=r"no job 'merge'.*conform_events, merge_current"):
        resolve("customer_cdc", "merge")
    with pytest.raises(RunnerError, match=r"missing input\(s\) raw_memberships, raw_organizations"):
        run_job("legislators", "conform", {"raw_persons": tmp_path}, {}, quarantine=tmp_path)
    outputs = {"events": tmp_path / "out"}
    with pytest.raises(RunnerError, match=r"unknown input\(s\) extra"):
        run_job("customer_cdc", "conform_events", {"raw_events": tmp_path, "extra": tmp_path}, outputs)
    with pytest.raises(RunnerError, match="quarantines malformed records: give a quarantine path"):
        run_job("customer_cdc", "conform_events", {"raw_events": tmp_path}, outputs)
    with pytest.raises(RunnerError, match="--max_malformed_fraction: expected float"):
        run_job(
            "customer_cdc",
            "conform_events",
            {"raw_events": tmp_path},
            outputs,
            quarantine=tmp_path / "q",
            arguments={"max_malformed_fraction": "lots"},
        )
    assert not (tmp_path / "out").exists()


def test_quarantine_location_is_the_first_output_zone_under_group_and_job() -> None:
    group = next(g for g in GROUPS if g.name == "customer_cdc")
    assert group.job("conform_events").quarantine_location(group.name) == (
        "conformed",
        "quarantine/customer_cdc/conform_events/",
    )
    assert group.job("merge_current").quarantine_location(group.name) == (
        "curated",
        "quarantine/customer_cdc/merge_current/",
    )
    assert quarantine_path(Path("/lake"), group, group.job("conform_events")) == Path(
        "/lake/conformed/quarantine/customer_cdc/conform_events"
    )
