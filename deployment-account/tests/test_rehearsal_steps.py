"""What the rehearsal reads from a deployed pipeline template: its source action, its guard, its protection step."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from lake_pipelines import buildspec
from lakeops.rehearsal import pipeline_steps
from lakeops.rehearsal.flow import _split_guard, _unchecked_reads

GUARD = buildspec.promotion_guard_commands("acme-lake-infra-dev-pipeline", "dev", "test", "eu-west-1")
PROTECT = buildspec.termination_protection_commands("arn:aws:iam::4:role/r", "eu-west-1", ["a", "b"])
CONTRACT = buildspec.contract_check_commands("arn:aws:iam::4:role/l", "eu-west-1", ["/p/a"], "the infra pipeline")


def _project(install: list[str], build: list[str]) -> dict[str, Any]:
    spec = {"version": "0.2", "phases": {"install": {"commands": install}, "build": {"commands": build}}}
    return {"Type": "AWS::CodeBuild::Project", "Properties": {"Source": {"BuildSpec": json.dumps(spec)}}}


def _template(tmp_path: Path, *, protected: bool) -> Path:
    resources: dict[str, Any] = {
        "Pipeline9850B417": {
            "Type": "AWS::CodePipeline::Pipeline",
            "Properties": {"Stages": [{"Name": "Source", "Actions": [{"Name": "acme_lake-infra"}]}]},
        },
        "PipelineBuildSynthCdkBuildProject6BEFA8E6": _project([*GUARD, "npm ci"], ["npx cdk synth"]),
    }
    if protected:
        resources["PipelineProdTerminationProtection1A2B3C4D"] = _project([], PROTECT)
        resources["PipelineProdContractCheck5E6F7A8B"] = _project([], CONTRACT)
    path = tmp_path / "pipeline.template.json"
    path.write_text(json.dumps({"Resources": resources}))
    return path


def test_the_guard_is_split_from_the_installs_and_the_source_action_named(tmp_path: Path) -> None:
    template = _template(tmp_path, protected=False)
    guard, install = _split_guard(pipeline_steps.synth_step(template).install)
    assert guard == GUARD and install == ["npm ci"]
    assert pipeline_steps.source_action(template) == "acme_lake-infra"


def test_the_protection_step_is_read_only_where_the_stage_has_one(tmp_path: Path) -> None:
    assert pipeline_steps.termination_protection_step(_template(tmp_path, protected=False), "Prod") is None
    step = pipeline_steps.termination_protection_step(_template(tmp_path, protected=True), "Prod")
    assert step is not None and list(step.build) == PROTECT


def test_the_contract_check_is_read_only_where_the_stage_has_one(tmp_path: Path) -> None:
    assert pipeline_steps.contract_check_step(_template(tmp_path, protected=False), "Prod") is None
    step = pipeline_steps.contract_check_step(_template(tmp_path, protected=True), "Prod")
    assert step is not None and list(step.build) == CONTRACT


def test_runs_whose_reads_went_unchecked_are_reported_not_passed_over(tmp_path: Path) -> None:
    account = "222222222222"
    env = SimpleNamespace(account=account)
    context: Any = SimpleNamespace(
        config=SimpleNamespace(env=lambda name: env), emulator=SimpleNamespace(glue_workdir=tmp_path)
    )
    assert _unchecked_reads(context, "dev") == []
    for run in ("jr_1", "jr_2"):
        folder = tmp_path / "runs" / account / "eu-west-1" / "lake-job" / run
        folder.mkdir(parents=True)
        (folder / "reads-not-checked.txt").write_text("not Linux (darwin)\n")
    other = tmp_path / "runs" / "333333333333" / "eu-west-1" / "lake-job" / "jr_3"
    other.mkdir(parents=True)
    (other / "reads-not-checked.txt").write_text("not Linux (darwin)\n")

    [line] = _unchecked_reads(context, "dev")
    assert line.startswith("reads not checked against the job role in 2 run(s): not Linux (darwin) (")
