"""Shared fixtures: the example config and a tiny test-only Stage, so pipeline tests need neither app."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from datalake_config import LakeConfig, load
from datalake_config.testing import EXAMPLE_CONFIG_PATH

ASSET_DIR = Path(__file__).parent / "fixtures" / "asset"


class TinyStage(cdk.Stage):
    """A stage in the target account: one stack, one SSM parameter and (optionally) one file asset."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        env_name: str,
        with_asset: bool = False,
        reads: Sequence[str] = (),
    ) -> None:
        target = config.env(env_name)
        super().__init__(scope, construct_id, env=cdk.Environment(account=target.account, region=target.region))
        # protected where data is retained, as the apps' stateful stacks are
        stack = cdk.Stack(
            self,
            "Marker",
            stack_name=f"{config.prefix}-{env_name}-test-marker",
            termination_protection=target.retain_data,
        )
        ssm.StringParameter(stack, "Marker", string_value=env_name)
        # SSM parameters another repository's stage writes, resolved at deploy time (as the ETL stage reads the
        # infra contract)
        for index, name in enumerate(reads):
            cdk.CfnOutput(stack, f"Read{index}", value=ssm.StringParameter.value_for_string_parameter(stack, name))
        if with_asset:
            # Asset publishing adds its own CodeBuild project and role to the pipeline (as Glue scripts do).
            s3_assets.Asset(stack, "Script", path=str(ASSET_DIR))


def tiny_stage_factory(
    config: LakeConfig, *, with_asset: bool = False, reads: Callable[[str], Sequence[str]] | None = None
) -> Callable[[Construct, str, str], cdk.Stage]:
    """`reads(env_name)` names the SSM parameters the environment's stage reads and does not write."""
    return lambda scope, construct_id, env_name: TinyStage(
        scope,
        construct_id,
        config=config,
        env_name=env_name,
        with_asset=with_asset,
        reads=reads(env_name) if reads is not None else (),
    )


@pytest.fixture(scope="session")
def example_config() -> LakeConfig:
    return load(EXAMPLE_CONFIG_PATH)


@pytest.fixture(scope="session")
def stage_factory() -> Callable[..., Callable[[Construct, str, str], cdk.Stage]]:
    """`stage_factory(config, with_asset=False)` → a StageFactory building `TinyStage`s."""
    return tiny_stage_factory


@pytest.fixture(scope="module")
def module_dir() -> Iterator[Path]:
    """A directory for one module's cloud assemblies; not under pytest's basetemp, which concurrent
    pytest sessions of the same user prune while this one may still be reading it."""
    with tempfile.TemporaryDirectory(prefix="lakeops-test-") as path:
        yield Path(path)


@pytest.fixture(autouse=True)
def example_config_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """This repository holds no shared-config checkout: commands without --config read the packaged example."""
    monkeypatch.setenv("LAKE_CONFIG", str(EXAMPLE_CONFIG_PATH))
