"""Every job script agrees with its group.yaml, and the local runner refuses bad requests before Spark starts.

Nothing here lists the groups: each test runs on whatever `jobs/` holds, so a new group folder is checked
without editing this file.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from etl_jobs.group_check import argument_problems
from etl_jobs.local_runner import RunnerError, quarantine_path, resolve, run_job
from etl_jobs.spec import JOBS_DIR, Group, Job, SpecError, discover, load_group

GROUPS = discover(JOBS_DIR)
JOBS = [(group, job) for group in GROUPS for job in group.jobs]


def test_every_folder_in_jobs_is_a_discovered_group() -> None:
    # A folder whose group.yaml is missing or misnamed (group.yml) would silently never deploy.
    folders = sorted(p.name for p in JOBS_DIR.iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))
    assert [g.name for g in GROUPS] == folders, "every folder in jobs/ needs a group.yaml"
    assert GROUPS, "jobs/ ships example groups"


@pytest.mark.parametrize(("group", "job"), JOBS, ids=[f"{g.name}/{j.name}" for g, j in JOBS])
def test_script_arguments_match_the_spec(group: Group, job: Job) -> None:
    assert argument_problems(group, job) == []


def test_scripts_import_awsglue_only_under_main() -> None:
    for group, job in JOBS:
        source = group.script_path(job).read_text()
        head, _, tail = source.partition('if __name__ == "__main__":')
        assert "awsglue" not in head, f"{job.script} imports awsglue outside the Glue edge"
        assert "run_in_glue(main, ARGS)" in tail


def test_runner_refusals_name_the_problem(tmp_path: Path) -> None:
    listed = re.escape(", ".join(g.name for g in GROUPS))
    with pytest.raises(RunnerError, match=rf"no job group 'nope'.*groups: {listed}$"):
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
    group = load_group(JOBS_DIR / "customer_cdc")
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


PARTITIONED_OUTPUT: dict[str, object] = {
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
        (
            {"partition_types": {"currency": "text", "day": "date"}},
            "jobs.totals.outputs.totals.partition_types.currency: String should match",
        ),
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


def test_a_type_yaml_split_at_its_comma_is_named_with_the_fix(tmp_path: Path) -> None:
    write_group(tmp_path, outputs=[])
    flow_style = "{name: totals, zone: curated, prefix: orders/totals/, columns: {day: date, amount: decimal(10,2)}}"
    spec = tmp_path / "orders" / "group.yaml"
    spec.write_text(spec.read_text().replace("outputs: []", f"outputs:\n  - {flow_style}"))
    with pytest.raises(SpecError) as raised:
        load_group(tmp_path / "orders")
    message = str(raised.value)
    assert "jobs.totals.outputs.totals.columns.amount: YAML split the type decimal(10,2) at its comma" in message
    assert "leaving amount: 'decimal(10' and a key '2)'" in message
    assert 'quote the type: {amount: "decimal(10,2)"}' in message
    # The two ways the message offers both load.
    spec.write_text(spec.read_text().replace("decimal(10,2)", '"decimal(10,2)"'))
    assert load_group(tmp_path / "orders").jobs[0].outputs[0].columns["amount"] == "decimal(10,2)"
    write_group(tmp_path, outputs=[{"name": "totals", "zone": "curated", "prefix": "orders/totals/"}])
    block_style = "\n    columns:\n      day: date\n      amount: decimal(10,2)\n"
    spec.write_text(spec.read_text().rstrip("\n") + block_style)
    assert load_group(tmp_path / "orders").jobs[0].outputs[0].columns == {"day": "date", "amount": "decimal(10,2)"}


def test_argument_problems_say_what_the_script_and_the_spec_disagree_on(tmp_path: Path) -> None:
    write_group(tmp_path, outputs=[PARTITIONED_OUTPUT])
    script = tmp_path / "orders" / "totals.py"
    head = 'from lakejobs.args import Arg, job_args\n\nmain = print\nARGS = job_args(Arg("input_orders"), '
    script.write_text(head + 'Arg("output_totals"), Arg("currency"))\n')
    group = load_group(tmp_path / "orders")
    assert argument_problems(group, group.jobs[0]) == [
        "orders/totals: group.yaml gives --partition_by_totals but totals.py does not declare it "
        "(add Arg(...) to ARGS)",
        "orders/totals: totals.py declares --currency but group.yaml does not give it (an input, output, "
        "partitioned output or `arguments:` entry)",
    ]
    script.write_text(head + 'Arg("output_totals"), Arg("partition_by_totals"))\n')
    (problem,) = argument_problems(group, group.jobs[0])
    assert "--partition_by_totals parses as 'day,currency', not ('day', 'currency') (declare it Arg(..., tuple))" in (
        problem
    )


def write_group(
    root: Path,
    *,
    outputs: list[dict[str, object]],
    inputs: list[dict[str, object]] | None = None,
    **job_fields: object,
) -> None:
    folder = root / "orders"
    folder.mkdir(exist_ok=True)
    (folder / "totals.py").write_text('"""Never run: the spec is what these tests load."""\n')
    job = {
        "name": "totals",
        "script": "totals.py",
        "inputs": inputs or [{"name": "orders", "zone": "conformed", "prefix": "orders/current/"}],
        "outputs": outputs,
        **job_fields,
    }
    (folder / "group.yaml").write_text(yaml.safe_dump({"schedule": "rate(1 day)", "jobs": [job]}, sort_keys=False))


def test_a_previous_input_must_be_the_location_of_its_output(tmp_path: Path) -> None:
    output: dict[str, object] = {"name": "current", "zone": "curated", "prefix": "orders/current/"}
    events: dict[str, object] = {"name": "orders", "zone": "conformed", "prefix": "orders/events/"}
    same = {**output, "name": "previous_current"}
    write_group(tmp_path, outputs=[output], inputs=[events, same])
    assert load_group(tmp_path / "orders").jobs[0].inputs[1].prefix == "orders/current/"
    typo = {**same, "prefix": "orders/curent/"}
    write_group(tmp_path, outputs=[output], inputs=[events, typo])
    with pytest.raises(
        SpecError,
        match=r"jobs\.totals: inputs\.previous_current: must be the location of output current "
        r"\(curated:orders/current/, parquet\), got curated:orders/curent/",
    ):
        load_group(tmp_path / "orders")
    write_group(tmp_path, outputs=[output], inputs=[events, {**same, "name": "previous_totals"}])
    with pytest.raises(SpecError, match=r"jobs\.totals: inputs\.previous_totals: .* no output totals"):
        load_group(tmp_path / "orders")


def test_the_streaming_only_worker_type_is_refused_for_batch_jobs(tmp_path: Path) -> None:
    totals: dict[str, object] = {"name": "totals", "zone": "curated", "prefix": "orders/totals/"}
    write_group(tmp_path, outputs=[totals], worker_type="G.025X")
    with pytest.raises(SpecError, match=r"jobs\.totals\.worker_type: G\.025X is for Glue streaming jobs only"):
        load_group(tmp_path / "orders")
    write_group(tmp_path, outputs=[totals], worker_type="G.1X")
    (tmp_path / "orders" / "overrides.yaml").write_text("prod/jobs/totals/worker_type: G.025X\n")
    with pytest.raises(SpecError, match=r"jobs\.totals\.worker_type: G\.025X is for Glue streaming jobs only"):
        load_group(tmp_path / "orders", "prod")
