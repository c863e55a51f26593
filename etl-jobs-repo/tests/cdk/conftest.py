"""Markers of the CDK template tests."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: synthesizes hundreds of generated jobs (tens of seconds)")
