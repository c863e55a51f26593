"""Fixtures shared by the infra tests: the example config and the CDK context `cdk synth` would use."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from datalake_config import LakeConfig, load
from datalake_config.testing import EXAMPLE_CONFIG_PATH

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
