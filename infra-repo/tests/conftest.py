"""Fixtures shared by the infra tests: the example config and the CDK context `cdk synth` would use."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest

from datalake_config import LakeConfig, load
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from datalake_infra.network.s3_prefix_list import context_key, s3_prefix_list_name
from lake_pipelines.checks import lake_app

INFRA_DIR = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def example_config() -> LakeConfig:
    return load(EXAMPLE_CONFIG_PATH)


@pytest.fixture(scope="session")
def cdk_context() -> dict[str, Any]:
    """Feature flags from cdk.json plus the committed lookups, exactly what the CDK CLI hands the app."""
    flags = json.loads((INFRA_DIR / "cdk.json").read_text())["context"]
    recorded = json.loads((INFRA_DIR / "cdk.context.json").read_text())
    return {**flags, **recorded}


# The id AWS gives com.amazonaws.eu-west-1.s3 (the same in every account of the region).
EU_WEST_1_S3_PREFIX_LIST = "pl-6da54004"


@pytest.fixture(scope="session")
def s3_prefix_list_entry() -> Callable[[str, str], dict[str, Any]]:
    """The cdk.context.json entry an operator records for an added account's S3 prefix list (see s3_prefix_list)."""

    def entry(account: str, region: str) -> dict[str, Any]:
        stack = cdk.Stack(lake_app(), "KeyOnly", env=cdk.Environment(account=account, region=region))
        key = context_key(stack, prefix_list_name=s3_prefix_list_name(region))
        return {key: [{"PrefixListId": EU_WEST_1_S3_PREFIX_LIST, "Identifier": EU_WEST_1_S3_PREFIX_LIST}]}

    return entry
