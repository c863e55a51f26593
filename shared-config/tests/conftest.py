"""Fixtures shared by the shared-config tests: the example config, parsed once, and a way to vary it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from datalake_config import ConfigError, LakeConfig, from_mapping, load
from datalake_config.testing import EXAMPLE_CONFIG_PATH


@pytest.fixture(scope="session")
def example_raw() -> dict[str, Any]:
    """The example config as plain data; tests deep-copy it before changing anything."""
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG_PATH.read_text(encoding="utf-8"))
    return raw


@pytest.fixture(scope="session")
def example() -> LakeConfig:
    return load(EXAMPLE_CONFIG_PATH)


def set_path(raw: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted path, creating mappings on the way."""
    *parents, last = path.split(".")
    node = raw
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value


@pytest.fixture
def variant(example_raw: dict[str, Any]) -> Callable[..., dict[str, Any]]:
    """A deep copy of the example with `{dotted.path: value}` edits applied."""

    def make(edits: dict[str, Any] | None = None) -> dict[str, Any]:
        raw = copy.deepcopy(example_raw)
        for path, value in (edits or {}).items():
            set_path(raw, path, value)
        return raw

    return make


@pytest.fixture
def problems(variant: Callable[..., dict[str, Any]]) -> Callable[..., list[str]]:
    """Every problem the loader reports for the example with `edits` applied (or for `raw`), [] when valid."""

    def check(edits: dict[str, Any] | None = None, *, raw: Any = None) -> list[str]:
        try:
            from_mapping(variant(edits) if raw is None else raw, source="test")
        except ConfigError as exc:
            return exc.problems
        return []

    return check
