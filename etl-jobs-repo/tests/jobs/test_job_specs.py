"""Every job script agrees with its group.yaml, and the local runner refuses bad requests before Spark starts."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from etl_jobs.local_runner import RunnerError, job_argv, load_job_module, quarantine_path, resolve, run_job
from etl_jobs.spec import JOBS_DIR, SpecError, discover, load_group
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
        | {name.removeprefix("--") for name in job.partition_arguments()}
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
    for output in job.outputs:
        if output.partition_by:
            assert parsed[f"partition_by_{output.name}"] == tuple(output.partition_by)


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


PARTITIONED_OUTPUT = {
    "name": "totals",
    "zone": "curated",
    "prefix": "orders/totals/",
    "columns": {"total": "double"},
    "partition_by": ["day", "currency"],
    "partition_types": {"currency": "string", "day": "date"},
}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"partition_types": {"day": "date"}},
            r"totals: partition_types: no Hive type for partition column\(s\) currency",
        ),
        (
            {"partition_types": {"currency": "string", "day": "date", "region": "string"}},
            "partition_types: region not in partition_by",
        ),
        ({"columns": {"total": "double", "day": "date"}}, r"partition column\(s\) day must not also be in columns"),
        ({"partition_by": ["day", "day"], "partition_types": {"day": "date"}}, "partition_by: listed twice: day"),
        ({"partition_types": {"currency": "text", "day": "date"}}, "partition_types.currency: String should match"),
        ({"partition_by": ["Day"], "partition_types": {"Day": "date"}}, "partition_by.0: String should match"),
    ],
)
def test_partition_columns_must_be_typed_and_apart_from_the_data_columns(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    write_group(tmp_path, outputs=[{**PARTITIONED_OUTPUT, **change}])
    with pytest.raises(SpecError, match=message):
        load_group(tmp_path / "orders")


def test_partitioning_is_declared_on_outputs_and_becomes_job_arguments(tmp_path: Path) -> None:
    write_group(tmp_path, outputs=[PARTITIONED_OUTPUT])
    job = load_group(tmp_path / "orders").jobs[0]
    assert job.partition_arguments() == {"--partition_by_totals": "day,currency"}
    write_group(tmp_path, outputs=[PARTITIONED_OUTPUT], inputs=[{**PARTITIONED_OUTPUT, "name": "previous"}])
    with pytest.raises(SpecError, match="inputs previous: partition_by is declared on the output"):
        load_group(tmp_path / "orders")


def write_group(root: Path, *, outputs: list[dict[str, object]], inputs: list[dict[str, object]] | None = None) -> None:
    folder = root / "orders"
    folder.mkdir(exist_ok=True)
    (folder / "totals.py").write_text('"""Never run: the spec is what these tests load."""\n')
    job = {
        "name": "totals",
        "script": "totals.py",
        "inputs": inputs or [{"name": "orders", "zone": "conformed", "prefix": "orders/current/"}],
        "outputs": outputs,
    }
    (folder / "group.yaml").write_text(yaml.safe_dump({"schedule": "rate(1 day)", "jobs": [job]}, sort_keys=False))
