"""The groups shipped in `jobs/` with the real job library: the stage the pipelines deploy, nag and lint clean."""

from __future__ import annotations

from pathlib import Path

import pytest
from aws_cdk import assertions

from datalake_config import load, names_for
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from etl_jobs.layout import catalog_table_name
from etl_jobs.library import LIBRARY_DIR
from etl_jobs.spec import JOBS_DIR, discover
from etl_jobs.stage import EtlStage
from lake_pipelines.checks import cfn_lint, enable_nag, lake_app, synth
from lake_pipelines.policy_coverage import coverage_problems, stage_templates
from lake_pipelines.role_boundary import boundary_problems

CONFIG = load(EXAMPLE_CONFIG_PATH)


@pytest.fixture(scope="module")
def stage_and_assembly(tmp_path_factory: pytest.TempPathFactory) -> tuple[EtlStage, Path]:
    app = lake_app(outdir=str(tmp_path_factory.mktemp("repository-groups")))
    stage = EtlStage(app, "test", config=CONFIG, env_name="test", jobs_dir=JOBS_DIR, library_dir=LIBRARY_DIR)
    enable_nag(stage)
    enable_nag(app)
    return stage, Path(synth(app).directory)


def test_every_shipped_group_has_a_stack(stage_and_assembly: tuple[EtlStage, Path]) -> None:
    stage, _ = stage_and_assembly
    groups = discover(JOBS_DIR, "test", CONFIG.environment_names)
    assert groups, "jobs/ ships example groups"
    names = names_for(CONFIG, "test")
    expected = [names.stack_name("etl", f"group-{g.name}".replace("_", "-")) for g in groups]
    assert [s.stack_name for s in stage.group_stacks] == expected


def test_shipped_groups_are_cfn_lint_clean(stage_and_assembly: tuple[EtlStage, Path]) -> None:
    _, assembly = stage_and_assembly
    assert cfn_lint(assembly) == []


def test_partition_columns_the_jobs_write_are_catalog_partition_keys(stage_and_assembly: tuple[EtlStage, Path]) -> None:
    stage, _ = stage_and_assembly
    keys: dict[str, list[tuple[str, str]]] = {}
    for stack in stage.group_stacks:
        for table in assertions.Template.from_stack(stack).find_resources("AWS::Glue::Table").values():
            table_input = table["Properties"]["TableInput"]
            keys[table_input["Name"]] = [(k["Name"], k["Type"]) for k in table_input.get("PartitionKeys", [])]
    # What each group.yaml declares, whatever groups jobs/ holds: a new group needs no edit here.
    declared = {
        catalog_table_name(group, output.name): [
            (column, output.partition_types[column]) for column in output.partition_by
        ]
        for group in stage.groups
        for job in group.jobs
        for output in job.outputs
    }
    assert keys == declared
    assert any(declared.values()), "the shipped groups include a partitioned output"


def test_the_shipped_execution_policy_covers_the_stage(stage_and_assembly: tuple[EtlStage, Path]) -> None:
    stage, _ = stage_and_assembly
    templates = stage_templates(stage)
    assert any(t.resources("AWS::Glue::Table") for t in templates), "expected Glue tables in the ETL stage"
    assert coverage_problems(templates, CONFIG, "test") == []


def test_every_policy_document_of_the_stage_lints_clean(stage_and_assembly: tuple[EtlStage, Path]) -> None:
    """parliament over every identity policy the stage creates (ours and CDK's): issue 10."""
    from lake_pipelines.policy_lint import lint_problems

    stage, _ = stage_and_assembly
    assert lint_problems(stage_templates(stage), CONFIG, "test") == []


def test_every_role_of_the_shipped_groups_fits_the_stage_role_boundary(
    stage_and_assembly: tuple[EtlStage, Path],
) -> None:
    stage, _ = stage_and_assembly
    assert boundary_problems(stage_templates(stage), CONFIG, "test") == []
