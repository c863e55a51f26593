"""Job groups are folders: a new folder is a new stack, and 500 generated jobs stay within CloudFormation's limits."""

from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk import assertions

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.layout import MAX_PARAMETERS, MAX_RESOURCES, MAX_TEMPLATE_BYTES, STACK_BYTES, job_bytes
from etl_jobs.stage import EtlStage
from etl_jobs.synthetic import write_group
from lake_pipelines.checks import enable_nag, lake_app, synth, templates

FIXTURES = Path(__file__).parent / "fixtures"
CONFIG = load(EXAMPLE_CONFIG_PATH)
BIG_GROUP_JOBS = 300
SMALL_GROUPS = 20
SMALL_GROUP_JOBS = 10
PARTITIONED_JOBS = 40


def build(tmp: Path, jobs_dir: Path) -> tuple[EtlStage, Any]:
    app = lake_app(outdir=str(tmp / "assembly"))
    stage = EtlStage(app, "dev", config=CONFIG, env_name="dev", jobs_dir=jobs_dir, library_dir=FIXTURES / "lakejobs")
    enable_nag(stage)
    enable_nag(app)
    return stage, synth(app)


@pytest.fixture(scope="module")
def with_new_group(tmp_path_factory: pytest.TempPathFactory) -> tuple[EtlStage, Any]:
    tmp = tmp_path_factory.mktemp("new-group")
    jobs_dir = tmp / "jobs"
    shutil.copytree(FIXTURES / "jobs", jobs_dir)
    shutil.copytree(FIXTURES / "jobs" / "crm", jobs_dir / "billing")
    spec = (jobs_dir / "billing" / "group.yaml").read_text().replace("crm/customers/", "billing/invoices/")
    (jobs_dir / "billing" / "group.yaml").write_text(spec)
    return build(tmp, jobs_dir)


@pytest.fixture(scope="module")
def at_scale(tmp_path_factory: pytest.TempPathFactory) -> tuple[EtlStage, Any]:
    tmp = tmp_path_factory.mktemp("scale")
    jobs_dir = tmp / "jobs"
    write_group(jobs_dir, "bulk", BIG_GROUP_JOBS)
    for n in range(SMALL_GROUPS):
        write_group(jobs_dir, f"team_{n:02d}", SMALL_GROUP_JOBS)
    return build(tmp, jobs_dir)


@pytest.fixture(scope="module")
def partitioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[EtlStage, Any]:
    """Generated jobs whose outputs are partitioned by two keys: partition registration grows every job."""
    tmp = tmp_path_factory.mktemp("partitioned")
    jobs_dir = tmp / "jobs"
    write_group(jobs_dir, "dated", PARTITIONED_JOBS)
    spec_file = jobs_dir / "dated" / "group.yaml"
    spec = yaml.safe_load(spec_file.read_text())
    for job in spec["jobs"]:
        for output in job["outputs"]:
            output["partition_by"] = ["event_date", "region"]
            output["partition_types"] = {"event_date": "date", "region": "string"}
    spec_file.write_text(yaml.safe_dump(spec, sort_keys=False))
    return build(tmp, jobs_dir)


def test_a_new_group_folder_becomes_a_new_stack(with_new_group: tuple[EtlStage, Any]) -> None:
    stage, _ = with_new_group
    names = names_for(CONFIG, "dev")
    assert [s.stack_name for s in stage.group_stacks] == [
        names.stack_name("etl", f"group-{g}") for g in ("billing", "crm", "orders")
    ]
    billing = assertions.Template.from_stack(stage.group_stacks[0]).to_json()
    jobs = [r["Properties"]["Name"] for r in billing["Resources"].values() if r["Type"] == "AWS::Glue::Job"]
    assert jobs == [names.glue_job_name("billing", "load_customers")]


@pytest.mark.long
def test_500_jobs_fit_cloudformation_limits(at_scale: tuple[EtlStage, Any]) -> None:
    stage, assembly = at_scale
    names = names_for(CONFIG, "dev")
    jobs = [
        r
        for t in templates(assembly.directory)
        for r in json.loads(t.read_text())["Resources"].values()
        if r["Type"] == "AWS::Glue::Job"
    ]
    assert len(jobs) == BIG_GROUP_JOBS + SMALL_GROUPS * SMALL_GROUP_JOBS
    for path in templates(assembly.directory):
        body = json.loads(path.read_text())
        assert len(body["Resources"]) <= MAX_RESOURCES, path.name
        assert path.stat().st_size <= MAX_TEMPLATE_BYTES, path.name
        assert len(body.get("Parameters", {})) <= MAX_PARAMETERS, path.name
    bulk = [s for s in stage.group_stacks if s.part.group.name == "bulk"]
    assert len(bulk) > 1, "the 300-job group must be split"
    assert [s.stack_name for s in bulk] == [
        names.stack_name("etl", "group-bulk"),
        *(names.stack_name("etl", f"group-bulk-{n}") for n in range(2, len(bulk) + 1)),
    ]
    assert [j.name for s in bulk for j in s.part.jobs] == [f"step_{n:03d}" for n in range(BIG_GROUP_JOBS)]
    # each part hands over to the next by state machine name, and deploys after it
    for earlier, later in itertools.pairwise(bulk):
        assert later in earlier.dependencies
        resources = assertions.Template.from_stack(earlier).to_json()["Resources"].values()
        machine = next(r for r in resources if r["Type"] == "AWS::StepFunctions::StateMachine")
        assert names.state_machine_name("bulk", later.part.number) in json.dumps(machine)
    # single flight is the first part's: it holds the lock while the later parts run (it waits for them)
    for stack in bulk:
        resources = assertions.Template.from_stack(stack).to_json()["Resources"].values()
        machine = next(r for r in resources if r["Type"] == "AWS::StepFunctions::StateMachine")
        assert ("Take the lock" in json.dumps(machine)) is stack.part.is_entry, stack.stack_name
    small = [s for s in stage.group_stacks if s.part.group.name != "bulk"]
    assert len(small) == SMALL_GROUPS


@pytest.mark.long
def test_the_size_estimate_covers_partitioned_jobs(partitioned: tuple[EtlStage, Any]) -> None:
    stage, _ = partitioned
    assert sum(len(stack.part.jobs) for stack in stage.group_stacks) == PARTITIONED_JOBS
    for stack in stage.group_stacks:  # the first part holds the single-flight states, the others do not
        template = Path(stage.outdir) / stack.template_file
        estimate = STACK_BYTES + sum(job_bytes(job) for job in stack.part.jobs)
        # the planner splits on the estimate, so it must never be below what CDK writes
        assert template.stat().st_size <= estimate, stack.stack_name
