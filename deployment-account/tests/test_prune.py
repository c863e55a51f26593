"""`lakeops prune`: stacks of the lake an environment still has but no app synthesizes, removed with care."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datalake_config import LakeConfig
from lakeops import cli
from lakeops.errors import LakeopsError
from lakeops.prune import apply_prune, plan_prune, synthesized_stacks

REGION = "eu-west-1"
TOPIC = json.dumps({"Resources": {"T": {"Type": "AWS::SNS::Topic"}}})


def _assembly(root: Path, stage: str, stacks: list[str]) -> Path:
    """A cloud assembly as `cdk synth` writes it: a stage's stacks in a nested assembly."""
    nested = root / f"assembly-acme-lake-infra-{stage.lower()}-pipeline-{stage}"
    nested.mkdir(parents=True)
    artifacts = {
        f"S{i}": {"type": "aws:cloudformation:stack", "properties": {"stackName": s}} for i, s in enumerate(stacks)
    }
    (nested / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    (root / "manifest.json").write_text(json.dumps({"artifacts": {}}))
    return root


@pytest.fixture
def cloudformation(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    with mock_aws():
        client = boto3.client("cloudformation", region_name=REGION)
        for name in ("acme-lake-dev-etl-shared", "acme-lake-dev-etl-group-orders", "acme-lake-dev-infra-storage"):
            client.create_stack(StackName=name, TemplateBody=TOPIC)
        client.create_stack(StackName="someone-elses-stack", TemplateBody=TOPIC)
        client.create_stack(StackName="acme-lake-test-etl-shared", TemplateBody=TOPIC)  # another environment
        yield client


def test_only_the_lakes_stacks_of_the_environment_that_no_app_synthesizes(
    example_config: LakeConfig, cloudformation: Any, tmp_path: Path
) -> None:
    expected = synthesized_stacks(
        [_assembly(tmp_path, "Dev", ["acme-lake-dev-etl-shared", "acme-lake-dev-infra-storage"])], "dev"
    )
    plan = plan_prune(example_config, "dev", cloudformation, expected)
    assert [o.name for o in plan.orphans] == ["acme-lake-dev-etl-group-orders"]  # the removed job group
    assert plan.describe()[0] == "dev: 1 stack(s) no app synthesizes any more:"
    assert apply_prune(plan, cloudformation, include_retained=False) == ["deleted acme-lake-dev-etl-group-orders"]
    assert plan_prune(example_config, "dev", cloudformation, expected).orphans == []


class _Protecting:
    """moto's CloudFormation without UpdateTerminationProtection (the emulator patches it in): recorded here."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.unprotected: list[str] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def update_termination_protection(self, StackName: str, EnableTerminationProtection: bool) -> None:  # noqa: N803
        assert EnableTerminationProtection is False
        self.unprotected.append(StackName)


def test_protected_stacks_need_a_separate_confirmation(example_config: LakeConfig, cloudformation: Any) -> None:
    cloudformation.delete_stack(StackName="acme-lake-dev-etl-group-orders")
    cloudformation.create_stack(
        StackName="acme-lake-dev-etl-group-orders", TemplateBody=TOPIC, EnableTerminationProtection=True
    )
    expected = {"acme-lake-dev-etl-shared", "acme-lake-dev-infra-storage"}
    plan = plan_prune(example_config, "dev", cloudformation, expected)
    assert "kept unless --include-retained: termination protection" in plan.describe()[1]
    client = _Protecting(cloudformation)
    assert apply_prune(plan, client, include_retained=False) == [
        "kept acme-lake-dev-etl-group-orders (--include-retained deletes it)"
    ]
    assert apply_prune(plan, client, include_retained=True) == ["deleted acme-lake-dev-etl-group-orders"]
    assert client.unprotected == ["acme-lake-dev-etl-group-orders"]  # protection off only right before deleting


def test_every_stack_of_an_environment_that_retains_data_needs_the_confirmation(
    example_config: LakeConfig, cloudformation: Any
) -> None:
    cloudformation.create_stack(StackName="acme-lake-prod-etl-group-gone", TemplateBody=TOPIC)
    plan = plan_prune(example_config, "prod", cloudformation, {"acme-lake-prod-etl-shared"})
    assert [o.name for o in plan.orphans] == ["acme-lake-prod-etl-group-gone"]
    assert "the environment retains data" in plan.describe()[1]
    assert apply_prune(plan, cloudformation, include_retained=False)[0].startswith("kept ")


def test_an_empty_assembly_never_means_every_stack_is_removed(
    example_config: LakeConfig, cloudformation: Any, tmp_path: Path
) -> None:
    with pytest.raises(LakeopsError, match="refusing to treat every stack there as removed"):
        plan_prune(
            example_config, "dev", cloudformation, synthesized_stacks([_assembly(tmp_path, "Test", ["x"])], "dev")
        )
    with pytest.raises(LakeopsError, match="not a cloud assembly"):
        synthesized_stacks([tmp_path / "nothing"], "dev")


def test_cli_lists_and_deletes_only_with_yes(
    cloudformation: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assembly = _assembly(tmp_path, "Dev", ["acme-lake-dev-etl-shared", "acme-lake-dev-infra-storage"])
    monkeypatch.setattr("boto3.Session", lambda **kwargs: boto3.session.Session(region_name=REGION))
    argv = ["prune", "--env", "dev", "--assembly", str(assembly)]
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert cli.main(argv) == 1  # no terminal and no --yes: nothing deleted
    assert "nothing deleted" in capsys.readouterr().out
    assert cli.main([*argv, "--yes"]) == 0
    assert "deleted acme-lake-dev-etl-group-orders" in capsys.readouterr().out
