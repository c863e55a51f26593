"""`lakeops graph`: the Mermaid picture generated from the config and cloud assemblies.

Small assemblies built here with the naming module (as `cdk synth` lays them out) prove what is drawn and that
a new environment appears; in the DevOps workspace, the README's picture is regenerated from a real synth of
both apps and must not differ.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from datalake_config import LakeConfig, lake_names, names_for
from datalake_config.loader import from_mapping
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from lake_pipelines import buildspec
from lakeops.cli import main
from lakeops.errors import LakeopsError
from lakeops.graph import (
    mermaid_block,
    read_assemblies,
    readme_diagram,
    render,
    with_readme_diagram,
)

BOOTSTRAP_VERSION = "/cdk-bootstrap/hnb659fds/version"  # a parameter every CDK template reads: not the lake's


# --- assemblies as `cdk synth` writes them, made from a config --------------------------------------------------
def _write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")


def _project(commands: list[str]) -> dict[str, Any]:
    spec = json.dumps({"version": "0.2", "phases": {"build": {"commands": commands}}})
    return {"Type": "AWS::CodeBuild::Project", "Properties": {"Source": {"BuildSpec": spec}}}


def _stage_stacks(config: LakeConfig, env: str, kind: str, extra_reads: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """component → template: the infra stage writes the contract, the ETL stage reads it and writes its own."""
    names = names_for(config, env)

    def template(writes: list[str], reads: list[str], dynamic: tuple[str, ...] = ()) -> dict[str, Any]:
        resources: dict[str, Any] = {
            f"P{i}": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": path, "Type": "String", "Value": "v"}}
            for i, path in enumerate(writes)
        }
        resources |= {
            f"Uses{i}": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": f"{{{{resolve:ssm:{path}}}}}"}}
            for i, path in enumerate(dynamic)
        }
        parameters = {
            f"R{i}": {"Type": "AWS::SSM::Parameter::Value<String>", "Default": path}
            for i, path in enumerate([*reads, BOOTSTRAP_VERSION])
        }
        return {"Parameters": parameters, "Resources": resources}

    buckets = [names.bucket_name(zone) for zone in config.zones]
    if kind == "infra":
        return {
            "Storage": template([*buckets, names.data_key_arn], []),
            "Catalog": template([names.database(zone) for zone in config.zones], [*buckets, names.data_key_arn]),
        }
    return {
        "Shared": template([names.etl_key_arn], [names.data_key_arn]),
        "group-sales": template([], [buckets[0], *extra_reads], dynamic=(names.etl_key_arn,)),
    }


def make_assembly(
    root: Path, config: LakeConfig, kind: str, extra_reads: dict[str, tuple[str, ...]] | None = None
) -> Path:
    """One app's cdk.out: a pipeline stack per environment (its build steps' commands as the pipeline construct
    writes them) and a nested assembly per stage."""
    out = root / kind / "cdk.out"
    deployment = config.deployment
    artifacts: dict[str, Any] = {}
    for env in config.environment_names:
        names = names_for(config, env)
        pipeline = names.pipeline_stack_name(kind)
        previous = config.previous_environment(env)
        guard = (
            buildspec.promotion_guard_commands(
                names_for(config, previous).pipeline_name(kind), previous, env, deployment.region
            )
            if previous
            else []
        )
        pull = buildspec.pull_config_commands(lake_names(config).global_config_secret, deployment.region)
        resources = {
            "PipelineBuildSynthCdkBuildProject": _project([*guard, *pull, *buildspec.synth_commands()]),
            # asset publishing keeps its build spec in a file of the assembly
            "PipelineAssetsFileAsset": {
                "Type": "AWS::CodeBuild::Project",
                "Properties": {"Source": {"BuildSpec": "buildspec-assets.yaml"}},
            },
        }
        if kind == "infra":
            resources["StartDownstream"] = _project(
                buildspec.start_pipeline_commands(names.pipeline_name("etl"), deployment.region)
            )
        approve = [{"Name": "Approve", "ActionTypeId": {"Category": "Approval"}}]
        actions = (approve if config.env(env).require_approval else []) + [
            {"Name": "Deploy", "ActionTypeId": {"Category": "Deploy"}}
        ]
        resources["Pipeline"] = {
            "Type": "AWS::CodePipeline::Pipeline",
            "Properties": {"Stages": [{"Name": env.capitalize(), "Actions": actions}]},
        }
        _write(out / f"{pipeline}.template.json", {"Resources": resources})
        artifacts[pipeline] = {
            "type": "aws:cloudformation:stack",
            "properties": {"templateFile": f"{pipeline}.template.json", "stackName": pipeline},
        }
        nested = f"assembly-{pipeline}-{env.capitalize()}"
        artifacts[nested] = {"type": "cdk:cloud-assembly", "properties": {"directoryName": nested}}
        stage_artifacts = {}
        target = config.env(env)
        for component, template in _stage_stacks(config, env, kind, (extra_reads or {}).get(env, ())).items():
            file = f"{pipeline}{env}{component}.template.json"
            _write(out / nested / file, template)
            stage_artifacts[f"{pipeline}{component}"] = {
                "type": "aws:cloudformation:stack",
                "environment": f"aws://{target.account}/{target.region}",
                "displayName": f"{pipeline}/{env.capitalize()}/{component}",
                "properties": {"templateFile": file, "stackName": names.stack_name(kind, component.lower())},
            }
        _write(out / nested / "manifest.json", {"version": "48.0.0", "artifacts": stage_artifacts})
    _write(out / "manifest.json", {"version": "48.0.0", "artifacts": artifacts})
    return out


def assemblies(root: Path, config: LakeConfig, **kwargs: Any) -> list[Path]:
    return [make_assembly(root, config, kind, **kwargs) for kind in ("infra", "etl")]


def with_environment(config_path: Path, name: str, after: str, account: str, cidr: str) -> LakeConfig:
    """The config file with one more environment, placed after `after` in the promotion order."""
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    environments: dict[str, Any] = {}
    for env, values in raw["environments"].items():
        environments[env] = values
        if env == after:
            environments[name] = {**values, "account": account, "branch": name, "vpc_cidr": cidr}
    raw["environments"] = environments
    return from_mapping(raw, source=f"{config_path} + {name}")


# --- what is drawn ----------------------------------------------------------------------------------------------
def test_the_picture_shows_accounts_pipelines_promotion_secret_and_contract(
    tmp_path: Path, example_config: LakeConfig
) -> None:
    mermaid = render(example_config, read_assemblies(example_config, assemblies(tmp_path, example_config)))
    lines = mermaid.splitlines()
    assert lines[0] == "flowchart LR"
    assert '  subgraph deployment["deployment account 111111111111 · eu-west-1"]' in lines
    assert '    secret[("secret acme-lake/config/global")]' in lines
    assert '      pipeline_infra_prod["acme-lake-infra-prod-pipeline<br/>branch prod · manual approval"]' in lines
    assert '  subgraph env_test["test · account 333333333333 · eu-west-1"]' in lines
    assert '      stack_acme_lake_test_etl_group_sales["acme-lake-test-etl-group-sales"]' in lines
    # edges from the commands the pipelines run
    assert '  pipeline_infra_dev ==>|"promote, guarded"| pipeline_infra_test' in lines
    assert '  pipeline_etl_test ==>|"promote, guarded"| pipeline_etl_prod' in lines
    assert '  pipeline_infra_dev -.->|"starts"| pipeline_etl_dev' in lines
    assert not any(line.startswith("  pipeline_etl_dev -.->") for line in lines)
    assert '  secret -.->|"read at synth"| pipelines_infra' in lines
    assert '  pipeline_infra_prod -->|"deploys"| stacks_prod_infra' in lines
    assert '  publish -->|"writes"| facts_prod' in lines
    # the contract: drawn once (every environment the same), each group of parameters with its writer and readers
    assert sum(line.startswith("  subgraph contract_") for line in lines) == 1
    assert "SSM contract under /acme-lake/dev/ · the same in test, prod" in mermaid
    node = next(line.split("[", 1)[0].strip() for line in lines if '["contract/kms/data-key-arn"]' in line)
    assert f"  stack_acme_lake_dev_infra_storage --> {node}" in lines
    assert f"  {node} --> stack_acme_lake_dev_infra_catalog" in lines
    assert f"  {node} --> stack_acme_lake_dev_etl_shared" in lines
    etl_key = next(line.split("[", 1)[0].strip() for line in lines if '["etl/kms-key-arn"]' in line)
    assert f"  {etl_key} --> stack_acme_lake_dev_etl_group_sales" in lines  # a {{resolve:ssm:...}} reference
    assert "cdk-bootstrap" not in mermaid
    assert "contract/catalog/conformed/database<br/>contract/catalog/curated/database" in mermaid
    assert "(no template reads it)" in mermaid  # the catalog's databases, here
    # deterministic: the same inputs, the same text
    again = render(example_config, read_assemblies(example_config, assemblies(tmp_path / "again", example_config)))
    assert again == mermaid


def test_adding_an_environment_adds_it_to_the_picture(tmp_path: Path, example_config: LakeConfig) -> None:
    before = render(example_config, read_assemblies(example_config, assemblies(tmp_path / "before", example_config)))
    staged = with_environment(EXAMPLE_CONFIG_PATH, "staging", "test", "555555555555", "10.40.0.0/16")
    # assemblies synthesized before the environment was added are refused, naming what is missing
    with pytest.raises(LakeopsError, match="no synthesized stage for acme-lake-etl-staging-pipeline"):
        read_assemblies(staged, assemblies(tmp_path / "before", example_config))
    after = render(staged, read_assemblies(staged, assemblies(tmp_path / "after", staged)))

    assert "staging" not in before
    assert '  subgraph env_staging["staging · account 555555555555 · eu-west-1"]' in after
    assert '      pipeline_etl_staging["acme-lake-etl-staging-pipeline<br/>branch staging"]' in after
    assert '      stack_acme_lake_staging_infra_storage["acme-lake-staging-infra-storage"]' in after
    assert '  pipeline_infra_test ==>|"promote, guarded"| pipeline_infra_staging' in after
    assert '  pipeline_infra_staging ==>|"promote, guarded"| pipeline_infra_prod' in after
    test_to_prod = '  pipeline_infra_test ==>|"promote, guarded"| pipeline_infra_prod'
    assert test_to_prod in before.splitlines() and test_to_prod not in after.splitlines()
    assert "the same in test, staging, prod" in after
    # and an assembly of an environment the config no longer has is refused too
    with pytest.raises(LakeopsError, match="pipeline acme-lake-infra-staging-pipeline, which this config has no"):
        read_assemblies(example_config, assemblies(tmp_path / "after", staged))


def test_environments_that_differ_get_a_contract_each(tmp_path: Path, example_config: LakeConfig) -> None:
    unwritten = names_for(example_config, "prod").parameter("contract/never-written")
    pipelines = read_assemblies(
        example_config, assemblies(tmp_path, example_config, extra_reads={"prod": (unwritten,)})
    )
    mermaid = render(example_config, pipelines)
    assert [line for line in mermaid.splitlines() if line.startswith("  subgraph contract_")] == [
        '  subgraph contract_dev["SSM contract under /acme-lake/dev/: writer → parameters → readers"]',
        '  subgraph contract_test["SSM contract under /acme-lake/test/: writer → parameters → readers"]',
        '  subgraph contract_prod["SSM contract under /acme-lake/prod/: writer → parameters → readers"]',
    ]
    assert '["contract/never-written<br/>(no stack writes it)"]' in mermaid


def test_an_assembly_for_another_account_is_refused(tmp_path: Path, example_config: LakeConfig) -> None:
    raw = yaml.safe_load(EXAMPLE_CONFIG_PATH.read_text(encoding="utf-8"))
    raw["environments"]["test"]["account"] = "777777777777"
    other = from_mapping(raw)
    with pytest.raises(LakeopsError, match=r"targets account\(s\) 777777777777, the config says 333333333333"):
        read_assemblies(example_config, assemblies(tmp_path, other))
    with pytest.raises(LakeopsError, match="not a cloud assembly"):
        read_assemblies(example_config, [tmp_path / "nothing"])


# --- where it goes ------------------------------------------------------------------------------------------------
def test_the_readme_block_is_replaced_between_its_markers(tmp_path: Path, example_config: LakeConfig) -> None:
    mermaid = render(example_config, read_assemblies(example_config, assemblies(tmp_path, example_config)))
    old = mermaid_block("flowchart LR\n  old --> picture\n")
    readme = f"# Title\n\ntext\n\n{old}\n\nmore\n"
    updated = with_readme_diagram(readme, mermaid)
    assert readme_diagram(updated) == mermaid
    assert updated.startswith("# Title\n\ntext\n\n") and updated.endswith("\n\nmore\n")
    assert with_readme_diagram(updated, mermaid) == updated
    with pytest.raises(LakeopsError, match="no generated-diagram markers"):
        with_readme_diagram("# no markers\n", mermaid)


def test_the_command_writes_text_checks_a_readme_and_renders_only_with_a_renderer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, example_config: LakeConfig
) -> None:
    infra, etl = assemblies(tmp_path, example_config)
    base = ["graph", "--assembly", str(infra), "--assembly", str(etl)]
    assert main(base) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("flowchart LR\n")

    assert main([*base, "--output", str(tmp_path / "system.mmd")]) == 0
    assert (tmp_path / "system.mmd").read_text(encoding="utf-8") == printed

    readme = tmp_path / "README.md"
    readme.write_text("# Lake\n\n" + mermaid_block("flowchart LR\n") + "\n", encoding="utf-8")
    assert main([*base, "--readme", str(readme), "--check"]) == 1
    assert "differs from the generated one" in capsys.readouterr().err
    assert main([*base, "--readme", str(readme)]) == 0
    assert main([*base, "--readme", str(readme), "--check"]) == 0
    assert readme_diagram(readme.read_text(encoding="utf-8")) == printed

    monkeypatch.setattr("lakeops.commands.graph_cmd.shutil.which", lambda _: None)
    assert main([*base, "--output", str(tmp_path / "system.svg")]) == 1
    assert "no Mermaid renderer (mmdc" in capsys.readouterr().err
    assert not (tmp_path / "system.svg").exists()
