"""app.py as the CDK CLI runs it: one pipeline stack per environment, each deploying its stage to its account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from datalake_config import LakeConfig, dumps_json, from_mapping, names_for

INFRA_DIR = Path(__file__).resolve().parents[1]
STAGING = {
    "account": "555555555555",
    "region": "eu-west-1",
    "branch": "staging",
    "vpc_cidr": "10.50.0.0/16",
    "require_approval": True,
    "retain_data": True,
}
COMPONENTS = ("storage", "network", "catalog", "verify")


@dataclass
class AppRun:
    config: LakeConfig
    assembly: cdk.cx_api.CloudAssembly

    def pipeline_stacks(self) -> dict[str, cdk.cx_api.CloudFormationStackArtifact]:
        return {stack.stack_name: stack for stack in self.assembly.stacks}

    def stage_stacks(self, env: str) -> dict[str, cdk.cx_api.CloudFormationStackArtifact]:
        pipeline = names_for(self.config, env).pipeline_stack_name("infra")
        (nested,) = [a for a in self.assembly.nested_assemblies if a.id == f"assembly-{pipeline}-{env.capitalize()}"]
        return {stack.stack_name: stack for stack in nested.nested_assembly.stacks}


def _start(config: LakeConfig, workdir: Path, context: dict[str, Any]) -> tuple[subprocess.Popen[str], Path]:
    """Run app.py the way `cdk synth -c config=...` does: context in CDK_CONTEXT_JSON, output to CDK_OUTDIR."""
    config_file = workdir / "config.json"
    config_file.write_text(dumps_json(config))
    outdir = workdir / "cdk.out"
    env = {
        **os.environ,
        "CDK_OUTDIR": str(outdir),
        "CDK_CONTEXT_JSON": json.dumps({**context, "config": str(config_file)}),
        "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION": "20",
    }
    process = subprocess.Popen(
        [sys.executable, "app.py"], cwd=INFRA_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return process, outdir


@pytest.fixture(scope="module")
def runs(
    example_config: LakeConfig,
    cdk_context: dict[str, Any],
    s3_prefix_list_entry: Callable[[str, str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, AppRun]:
    raw = example_config.model_dump(mode="json")
    raw["environments"]["dev"]["vpc_cidr"] = "10.40.0.0/16"
    prod = raw["environments"].pop("prod")
    raw["environments"] = {**raw["environments"], "staging": STAGING, "prod": prod}
    configs = {"example": example_config, "changed": from_mapping(raw, source="changed config")}
    # the example synthesizes from the committed context alone; the added account's S3 prefix list is recorded
    # as an operator would (synth never looks it up)
    contexts = {
        "example": cdk_context,
        "changed": {**cdk_context, **s3_prefix_list_entry(STAGING["account"], STAGING["region"])},
    }
    # both apps synthesize side by side: each is one process, mostly waiting on its jsii runtime
    started = {name: _start(config, tmp_path_factory.mktemp(name), contexts[name]) for name, config in configs.items()}
    runs = {}
    for name, (process, outdir) in started.items():
        output, _ = process.communicate(timeout=600)
        assert process.returncode == 0, f"app.py failed with the {name} config:\n{output[-4000:]}"
        runs[name] = AppRun(configs[name], cdk.cx_api.CloudAssembly(str(outdir)))
    return runs


def test_one_pipeline_per_environment_in_the_deployment_account(runs: dict[str, AppRun]) -> None:
    example = runs["example"]
    pipelines = example.pipeline_stacks()
    assert sorted(pipelines) == sorted(f"acme-lake-infra-{env}-pipeline" for env in ("dev", "test", "prod"))
    for stack in pipelines.values():
        assert (stack.environment.account, stack.environment.region) == ("111111111111", "eu-west-1")


def test_each_pipeline_deploys_its_stage_to_its_environment_account(runs: dict[str, AppRun]) -> None:
    example = runs["example"]
    for env in example.config.environment_names:
        stacks = example.stage_stacks(env)
        names = names_for(example.config, env)
        assert sorted(stacks) == sorted(names.stack_name("infra", component) for component in COMPONENTS)
        assert {stack.environment.account for stack in stacks.values()} == {example.config.env(env).account}


def test_the_pipeline_runs_this_repository_smoke_check_through_the_verify_role(runs: dict[str, AppRun]) -> None:
    template = json.dumps(runs["example"].pipeline_stacks()["acme-lake-infra-prod-pipeline"].template)
    assert "python -m datalake_infra.smoke_check" in template
    assert "arn:aws:iam::444444444444:role/acme-lake-prod-infra-verify" in template


def test_an_added_environment_gets_a_pipeline_and_a_stage_with_no_code_change(runs: dict[str, AppRun]) -> None:
    changed = runs["changed"]
    assert sorted(changed.pipeline_stacks()) == sorted(
        f"acme-lake-infra-{env}-pipeline" for env in ("dev", "test", "staging", "prod")
    )
    staging = changed.stage_stacks("staging")
    assert {stack.environment.account for stack in staging.values()} == {STAGING["account"]}
    (vpc,) = [
        r
        for r in staging["acme-lake-staging-infra-network"].template["Resources"].values()
        if r["Type"] == "AWS::EC2::VPC"
    ]
    assert vpc["Properties"]["CidrBlock"] == STAGING["vpc_cidr"]


def test_a_changed_cidr_changes_only_what_it_should(runs: dict[str, AppRun]) -> None:
    def vpc_cidr(run: AppRun) -> str:
        template = run.stage_stacks("dev")["acme-lake-dev-infra-network"].template
        (vpc,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::EC2::VPC"]
        cidr: str = vpc["Properties"]["CidrBlock"]
        return cidr

    assert vpc_cidr(runs["example"]) == "10.10.0.0/16"
    assert vpc_cidr(runs["changed"]) == "10.40.0.0/16"
    # the storage of dev did not change at all
    assert (
        runs["example"].stage_stacks("dev")["acme-lake-dev-infra-storage"].template
        == runs["changed"].stage_stacks("dev")["acme-lake-dev-infra-storage"].template
    )


def test_package_json_pins_the_cli_the_pipelines_install() -> None:
    """Synth here and self-mutation in the pipeline run the same CDK CLI version."""
    from lake_pipelines.pipeline import CDK_CLI_VERSION

    package = json.loads((INFRA_DIR / "package.json").read_text(encoding="utf-8"))
    assert package["devDependencies"]["aws-cdk"] == CDK_CLI_VERSION
