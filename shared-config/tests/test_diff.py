"""`lakeops config diff`: what changes between two configs, per field and per produced name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from datalake_config import LakeConfig, from_mapping
from datalake_config.diff import diff, resource_names

Variant = Callable[..., dict[str, Any]]

STAGING = {"account": "555555555555", "region": "eu-west-1", "branch": "staging", "vpc_cidr": "10.40.0.0/16"}


def with_staging(variant: Variant) -> LakeConfig:
    raw = variant()
    envs = raw["environments"]
    raw["environments"] = {"dev": envs["dev"], "test": envs["test"], "staging": STAGING, "prod": envs["prod"]}
    return from_mapping(raw)


def test_identical_configs_have_no_changes(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, from_mapping(variant()))
    assert result.empty
    assert result.render() == "no changes"


def test_a_cidr_change_is_one_field_and_no_names(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, from_mapping(variant({"environments.dev.vpc_cidr": "10.11.0.0/16"})))
    assert result.fields == [("environments.dev.vpc_cidr", "10.10.0.0/16", "10.11.0.0/16")]
    assert result.names_added == {} == result.names_removed
    assert result.render() == "fields:\n  environments.dev.vpc_cidr: '10.10.0.0/16' → '10.11.0.0/16'"


def test_an_added_environment_lists_its_fields_and_names(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, with_staging(variant))
    changed = {path: (old, new) for path, old, new in result.fields}
    assert changed["environments.staging.account"] == (None, "555555555555")
    assert changed["environments.staging.vpc_cidr"] == (None, "10.40.0.0/16")
    assert changed["environments.staging.lifecycle.log_retention_days"] == (None, 90)  # defaults are shown too
    assert all(path.startswith("environments.staging.") for path in changed)
    assert result.names_removed == {}
    assert list(result.names_added) == ["environment staging"]
    added = result.names_added["environment staging"]
    assert "pipeline acme-lake-infra-staging-pipeline (branch staging)" in added
    assert "pipeline acme-lake-etl-staging-pipeline (branch staging)" in added
    assert "ssm /acme-lake/staging/contract/buckets/raw/name" in added
    assert "glue database acme_lake_staging_curated" in added
    assert "account 555555555555 / eu-west-1" in added

    text = result.render()
    assert "  environments.staging.account: (absent) → '555555555555'" in text
    assert "names in environment staging:\n" in text
    assert "  + pipeline acme-lake-etl-staging-pipeline (branch staging)" in text
    assert "\n  - " not in text


def test_a_removed_environment_is_the_mirror_image(example: LakeConfig, variant: Variant) -> None:
    added, removed = diff(example, with_staging(variant)), diff(with_staging(variant), example)
    assert removed.names_removed == added.names_added
    assert removed.fields == [(path, new, old) for path, old, new in added.fields]


def test_a_prefix_rename_renames_every_name(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, from_mapping(variant({"prefix": "beta-lake"})))
    assert result.fields == [("prefix", "acme-lake", "beta-lake")]
    assert result.names_removed["lake"] == ["acme-lake-deployment", "acme-lake/config/global"]
    assert result.names_added["lake"] == ["beta-lake-deployment", "beta-lake/config/global"]
    for env in example.environment_names:
        scope = f"environment {env}"
        removed, added = result.names_removed[scope], result.names_added[scope]
        assert len(removed) == len(added)
        assert [name.replace("acme", "beta") for name in removed] == added
        assert f"ssm /beta-lake/{env}/contract/kms/data-key-arn" in added
    # the account line does not mention the prefix, so it is unchanged
    assert not any(name.startswith("account ") for names in result.names_added.values() for name in names)
    text = result.render()
    assert "  - ssm /acme-lake/prod/contract/network/vpc-id" in text
    assert "  + ssm /beta-lake/prod/contract/network/vpc-id" in text


def test_a_branch_override_shows_in_the_pipeline_names(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, from_mapping(variant({"repositories.etl.branches": {"prod": "main"}})))
    assert result.fields == [("repositories.etl.branches.prod", None, "main")]
    assert result.names_removed == {"environment prod": ["pipeline acme-lake-etl-prod-pipeline (branch prod)"]}
    assert result.names_added == {"environment prod": ["pipeline acme-lake-etl-prod-pipeline (branch main)"]}


def test_an_account_move_is_named_per_environment(example: LakeConfig, variant: Variant) -> None:
    result = diff(example, from_mapping(variant({"environments.test.account": "555555555555"})))
    assert result.names_removed == {"environment test": ["account 333333333333 / eu-west-1"]}
    assert result.names_added == {"environment test": ["account 555555555555 / eu-west-1"]}


def test_resource_names_cover_every_environment(example: LakeConfig) -> None:
    names = resource_names(example)
    assert set(names) == {"lake", "environment dev", "environment test", "environment prod"}
