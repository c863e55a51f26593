"""The committed JSON Schema is the generated one, and it agrees with the loader on valid and invalid files."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from datalake_config.schema import json_schema, json_schema_text
from datalake_config.testing import EXAMPLE_CONFIG_PATH

COMMITTED_SCHEMA = Path(__file__).resolve().parents[1] / "config.schema.json"

Variant = Callable[..., dict[str, Any]]
Problems = Callable[..., list[str]]


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads(COMMITTED_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def schema_errors(validator: jsonschema.Draft202012Validator, raw: Any) -> list[str]:
    return [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(raw)]


def test_the_committed_schema_is_the_generated_one() -> None:
    assert COMMITTED_SCHEMA.read_text(encoding="utf-8") == json_schema_text(), (
        "shared-config/config.schema.json is stale; regenerate it with "
        "`lakeops config schema --out shared-config/config.schema.json`"
    )


def test_the_example_config_points_editors_at_the_schema() -> None:
    config_yaml = COMMITTED_SCHEMA.parent / "config.yaml"
    first_line = config_yaml.read_text(encoding="utf-8").splitlines()[0]
    assert first_line == "# yaml-language-server: $schema=./config.schema.json"


def test_the_packaged_example_is_the_repository_config() -> None:
    assert EXAMPLE_CONFIG_PATH.read_bytes() == (COMMITTED_SCHEMA.parent / "config.yaml").read_bytes()


def test_the_schema_declares_its_dialect() -> None:
    assert json_schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_the_example_config_is_valid_against_the_schema(
    validator: jsonschema.Draft202012Validator, example_raw: dict[str, Any]
) -> None:
    assert schema_errors(validator, example_raw) == []


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("prefx", ""),
        ("environments.prod.retian_data", "environments.prod"),
        ("environments.dev.lifecycle.log_retention", "environments.dev.lifecycle"),
        ("repositories.etl.source.branch", "repositories.etl.source"),
        ("notifications.email", "notifications"),
    ],
)
def test_unknown_keys_fail_schema_validation_too(
    validator: jsonschema.Draft202012Validator, variant: Variant, path: str, field: str
) -> None:
    errors = schema_errors(validator, variant({path: "x"}))
    key = path.rsplit(".", 1)[-1]
    assert any(e.startswith(f"{field}: ") and repr(key) in e for e in errors), errors


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("environments.prod.account", "12345"),
        ("deployment.region", "eu-wset-1"),
        ("prefix", "Acme_Lake"),
        ("prefix", "aws-lake"),
        ("environments.dev.vpc_cidr", "10.10.0.0/23"),
        ("environments.dev.lifecycle.log_retention_days", 15),
        ("environments.dev.nat_gateways", 4),
        ("notifications.emails", ["not-an-address"]),
        ("deployment.operator_principal", "arn:aws:iam::111111111111:user/alice"),
    ],
)
def test_static_field_rules_reach_the_schema(
    validator: jsonschema.Draft202012Validator, variant: Variant, problems: Problems, path: str, value: Any
) -> None:
    # an editor flags the same mistakes the loader refuses
    assert problems({path: value}) != []
    assert schema_errors(validator, variant({path: value})) != []
