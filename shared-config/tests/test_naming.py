"""The naming module: the golden contract for the example, lookups, and every name valid for its AWS service."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from datalake_config import LakeConfig, from_mapping, lake_names, names_for, tags
from datalake_config.naming import (
    PUBLIC_PYPI_CONNECTION,
    REPOSITORIES,
    TEAM_PACKAGE_GROUP,
    TEAM_PACKAGE_PREFIX,
    TEAM_PACKAGES,
)

# The infra → ETL contract of the example's dev environment. A change here is a breaking change for
# every deployed ETL stack: update this list only together with both apps.
DEV_CONTRACT = [
    "/acme-lake/dev/contract/buckets/raw/name",
    "/acme-lake/dev/contract/buckets/raw/arn",
    "/acme-lake/dev/contract/catalog/raw/database",
    "/acme-lake/dev/contract/buckets/conformed/name",
    "/acme-lake/dev/contract/buckets/conformed/arn",
    "/acme-lake/dev/contract/catalog/conformed/database",
    "/acme-lake/dev/contract/buckets/curated/name",
    "/acme-lake/dev/contract/buckets/curated/arn",
    "/acme-lake/dev/contract/catalog/curated/database",
    "/acme-lake/dev/contract/kms/data-key-arn",
    "/acme-lake/dev/contract/network/vpc-id",
    "/acme-lake/dev/contract/network/private-subnet-ids",
    "/acme-lake/dev/contract/network/private-subnet-azs",
    "/acme-lake/dev/contract/network/glue-security-group-id",
    "/acme-lake/dev/contract/notifications/alarm-topic-arn",
    "/acme-lake/dev/contract/notifications/alarm-topic-key-arn",
]

# What each AWS service accepts (from the services' API references).
SSM_PATH_RE = re.compile(r"^(/[a-zA-Z0-9_.-]+)+$")
SSM_MAX_LENGTH = 1011  # 2048 minus the 1037 characters AWS reserves for the ARN around the name
SSM_MAX_LEVELS = 15
IAM_ROLE_RE = re.compile(r"^[\w+=,.@-]{1,64}$")
IAM_POLICY_RE = re.compile(r"^[\w+=,.@-]{1,128}$")
STACK_NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")
GLUE_DATABASE_RE = re.compile(r"^[a-z0-9_]{1,255}$")  # Athena: lowercase letters, digits, underscore
SECRET_NAME_RE = re.compile(r"^[A-Za-z0-9/_+=.@-]{1,512}$")
KMS_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9/_-]{1,250}$")
SNS_TOPIC_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# CodeArtifact (the CloudFormation resource schemas of AWS::CodeArtifact::Domain and ::Repository)
CODEARTIFACT_DOMAIN_RE = re.compile(r"^[a-z][a-z0-9-]{0,48}[a-z0-9]$")
CODEARTIFACT_REPOSITORY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,99}$")
# PEP 503: the normalized form of a distribution name, the form CodeArtifact matches package groups against
PYTHON_NORMALIZED_RE = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")

LONGEST_PREFIX = "abcdefghij-klmnopqrs"  # 20 characters, the most the prefix rule allows
LONGEST_ENV = "abcdefghij"  # 10 characters, the most an environment name may have
LONGEST_ZONE = "z" * 20
STACK_COMPONENTS = ["network", "storage", "catalog", "orchestration", "jobs", "contract"]


def test_contract_paths_of_the_example(example: LakeConfig) -> None:
    assert [p.path for p in names_for(example, "dev").contract()] == DEV_CONTRACT


def test_contract_keys_are_the_paths_below_the_contract_root(example: LakeConfig) -> None:
    for env in example.environment_names:
        names = names_for(example, env)
        contract = names.contract()
        assert [p.path for p in contract] == [p.replace("/dev/", f"/{env}/", 1) for p in DEV_CONTRACT]
        assert all(p.path == f"{names.contract_root}/{p.key}" for p in contract)
        assert len({p.path for p in contract}) == len(contract)


def test_contract_accessors_return_the_listed_paths(example: LakeConfig) -> None:
    names = names_for(example, "prod")
    assert names.bucket_name("raw") == "/acme-lake/prod/contract/buckets/raw/name"
    assert names.bucket_arn("curated") == "/acme-lake/prod/contract/buckets/curated/arn"
    assert names.database("conformed") == "/acme-lake/prod/contract/catalog/conformed/database"
    assert names.data_key_arn == "/acme-lake/prod/contract/kms/data-key-arn"
    assert names.vpc_id == "/acme-lake/prod/contract/network/vpc-id"
    assert names.private_subnet_ids == "/acme-lake/prod/contract/network/private-subnet-ids"
    assert names.subnet_availability_zones == "/acme-lake/prod/contract/network/private-subnet-azs"
    assert names.glue_security_group_id == "/acme-lake/prod/contract/network/glue-security-group-id"
    assert names.alarm_topic_arn == "/acme-lake/prod/contract/notifications/alarm-topic-arn"
    assert names.alarm_topic_key_arn == "/acme-lake/prod/contract/notifications/alarm-topic-key-arn"
    assert names.fact("account") == "/acme-lake/prod/facts/account"
    assert names.facts_root == "/acme-lake/prod/facts"


def test_zone_parameters_carry_their_zone(example: LakeConfig) -> None:
    contract = names_for(example, "test").contract()
    assert {p.zone for p in contract if p.zone} == set(example.zones)
    assert all(p.zone in p.key.split("/") for p in contract if p.zone)


def test_glue_database_names(example: LakeConfig) -> None:
    assert [names_for(example, "test").glue_database_name(z) for z in example.zones] == [
        "acme_lake_test_raw",
        "acme_lake_test_conformed",
        "acme_lake_test_curated",
    ]


def test_glue_job_names_start_with_their_environments_prefix_and_no_other(example: LakeConfig) -> None:
    dev, prod = names_for(example, "dev"), names_for(example, "prod")
    name = dev.glue_job_name("customer_cdc", "merge_current")
    assert name.startswith(dev.glue_job_name_prefix())
    assert not name.startswith(prod.glue_job_name_prefix())
    assert dev.glue_job_arn_pattern() == f"job/{dev.glue_job_name_prefix()}*"


def test_stack_and_role_names(example: LakeConfig) -> None:
    dev, prod = names_for(example, "dev"), names_for(example, "prod")
    assert dev.stack_name("infra", "storage") == "acme-lake-dev-infra-storage"
    assert prod.stack_name("etl", "jobs") == "acme-lake-prod-etl-jobs"
    assert dev.pipeline_stack_name("infra") == "acme-lake-infra-dev-pipeline"
    assert prod.pipeline_stack_name("etl") == "acme-lake-etl-prod-pipeline"
    assert prod.verify_role_name("etl") == "acme-lake-prod-etl-verify"


def test_config_publisher_and_operator_role_names(example: LakeConfig) -> None:
    assert names_for(example, "dev").config_publisher_role_name == "acme-lake-dev-config-publisher"
    assert names_for(example, "prod").config_publisher_role_name == "acme-lake-prod-config-publisher"
    assert lake_names(example).operator_role_name == "acme-lake-operator"


def test_lake_wide_names(example: LakeConfig) -> None:
    lake = lake_names(example)
    assert lake.global_config_secret == "acme-lake/config/global"
    assert lake.deployment_stack_name == "acme-lake-deployment"
    assert lake.cloudformation_execution_policy == "acme-lake-cfn-execution"
    assert lake.stage_role_boundary == "acme-lake-stage-role-boundary"
    assert lake.package_domain == "acme-lake-packages"
    assert lake.package_repository == "acme-lake-python"
    assert lake.package_upstream_repository == "acme-lake-public-pypi"
    assert lake.package_key_alias == "alias/acme-lake/packages"


def test_the_team_packages_are_what_the_package_group_covers() -> None:
    # the origin controls protect the prefix; a team package outside it could be replaced from the public index
    assert all(name.startswith(TEAM_PACKAGE_PREFIX) for name in TEAM_PACKAGES)
    assert all(PYTHON_NORMALIZED_RE.match(name) for name in TEAM_PACKAGES)
    assert PYTHON_NORMALIZED_RE.match(TEAM_PACKAGE_PREFIX.rstrip("-"))
    assert TEAM_PACKAGE_GROUP == "/pypi//gluelake-~"
    assert PUBLIC_PYPI_CONNECTION == "public:pypi"


def test_every_pipeline_stack_name_is_distinct(example: LakeConfig) -> None:
    stacks = [names_for(example, e).pipeline_stack_name(r) for e in example.environment_names for r in REPOSITORIES]
    stacks.append(lake_names(example).deployment_stack_name)
    assert len(set(stacks)) == len(stacks) == 7


def test_tags(example: LakeConfig) -> None:
    assert tags(example) == {"cost-center": "data-platform", "owner": "data-platform-team", "lake:prefix": "acme-lake"}
    assert tags(example, "prod", "etl") == {
        "cost-center": "data-platform",
        "owner": "data-platform-team",
        "lake:prefix": "acme-lake",
        "lake:environment": "prod",
        "lake:repository": "etl",
    }


def test_tags_do_not_change_the_config(example: LakeConfig) -> None:
    tags(example, "dev", "infra")["owner"] = "someone else"
    assert example.tags["owner"] == "data-platform-team"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: names_for(c, "qa"), "unknown environment 'qa'; configured: dev, test, prod"),
        (lambda c: tags(c, "qa"), "unknown environment 'qa'; configured: dev, test, prod"),
        (lambda c: tags(c, "dev", "web"), "unknown repository 'web'; known: infra, etl"),
        (lambda c: names_for(c, "dev").bucket_name("gold"), "unknown zone 'gold'; configured: raw, conformed, curated"),
        (lambda c: names_for(c, "dev").database("gold"), "unknown zone 'gold'; configured: raw, conformed, curated"),
        (lambda c: names_for(c, "dev").glue_database_name("gold"), "unknown zone 'gold'"),
        (lambda c: names_for(c, "dev").stack_name("web", "storage"), "unknown repository 'web'; known: infra, etl"),
        (lambda c: names_for(c, "dev").pipeline_stack_name("web"), "unknown repository 'web'"),
        (lambda c: names_for(c, "dev").verify_role_name("web"), "unknown repository 'web'"),
        (lambda c: c.branch_for("web", "dev"), "unknown repository 'web'; configured: infra, etl"),
        (lambda c: c.branch_for("etl", "qa"), "unknown environment 'qa'"),
        (lambda c: c.next_environment("qa"), "unknown environment 'qa'"),
    ],
)
def test_unknown_names_are_refused_naming_what_exists(
    example: LakeConfig, call: Callable[[LakeConfig], Any], message: str
) -> None:
    with pytest.raises(KeyError, match=re.escape(message)):
        call(example)


def test_promotion_lookups(example: LakeConfig) -> None:
    assert example.environment_names == ["dev", "test", "prod"]
    assert [example.next_environment(e) for e in example.environment_names] == ["test", "prod", None]
    assert [example.previous_environment(e) for e in example.environment_names] == [None, "dev", "test"]
    assert example.raw_zone == "raw"


def test_branch_overrides_apply_to_their_repository_only(variant: Callable[..., dict[str, Any]]) -> None:
    config = from_mapping(variant({"repositories.etl.branches": {"prod": "main"}}))
    assert config.branch_for("etl", "prod") == "main"
    assert config.branch_for("infra", "prod") == "prod"
    assert config.branch_for("etl", "dev") == "dev"


def test_notification_emails_fall_back_to_the_global_list(variant: Callable[..., dict[str, Any]]) -> None:
    config = from_mapping(variant({"environments.prod.notification_emails": ["oncall@example.com"]}))
    assert config.notification_emails("prod") == ["oncall@example.com"]
    assert config.notification_emails("dev") == ["data-platform-alerts@example.com"]


# --- the longest legal names are still valid AWS names --------------------------------------


@pytest.fixture(scope="module")
def longest(example_raw: dict[str, Any]) -> LakeConfig:
    """The example with the longest prefix, environment and zone names the validation accepts."""
    envs = example_raw["environments"]
    raw = {
        **example_raw,
        "prefix": LONGEST_PREFIX,
        "environments": {"dev": envs["dev"], LONGEST_ENV: envs["test"], "prod": envs["prod"]},
        "zones": ["raw", LONGEST_ZONE],
    }
    return from_mapping(raw)


def test_the_longest_names_are_accepted_by_validation(longest: LakeConfig) -> None:
    assert len(longest.prefix) == 20
    assert LONGEST_ENV in longest.environments


def test_ssm_paths_are_valid(longest: LakeConfig) -> None:
    for env in longest.environment_names:
        names = names_for(longest, env)
        paths = [p.path for p in names.contract()] + [names.fact("deployment-region"), names.facts_root]
        for path in paths:
            assert SSM_PATH_RE.match(path), path
            assert len(path) <= SSM_MAX_LENGTH, path
            assert path.count("/") <= SSM_MAX_LEVELS, path
            assert not path.lower().startswith(("/aws", "/ssm")), path


def test_iam_names_are_valid(longest: LakeConfig) -> None:
    for env in longest.environment_names:
        for repo in REPOSITORIES:
            role = names_for(longest, env).verify_role_name(repo)
            assert IAM_ROLE_RE.match(role), role
        publisher = names_for(longest, env).config_publisher_role_name
        assert IAM_ROLE_RE.match(publisher), publisher
    assert IAM_ROLE_RE.match(lake_names(longest).operator_role_name)
    assert IAM_POLICY_RE.match(lake_names(longest).cloudformation_execution_policy)
    assert IAM_POLICY_RE.match(lake_names(longest).stage_role_boundary)


def test_stack_names_are_valid(longest: LakeConfig) -> None:
    stacks = [lake_names(longest).deployment_stack_name]
    for env in longest.environment_names:
        names = names_for(longest, env)
        for repo in REPOSITORIES:
            stacks.append(names.pipeline_stack_name(repo))
            stacks += [names.stack_name(repo, component) for component in STACK_COMPONENTS]
    invalid = [s for s in stacks if not STACK_NAME_RE.match(s)]
    assert invalid == []


def test_glue_database_names_are_valid(longest: LakeConfig) -> None:
    for env in longest.environment_names:
        for zone in longest.zones:
            database = names_for(longest, env).glue_database_name(zone)
            assert GLUE_DATABASE_RE.match(database), database


def test_deployment_account_names_are_valid(longest: LakeConfig) -> None:
    lake = lake_names(longest)
    assert SECRET_NAME_RE.match(lake.global_config_secret)
    assert KMS_ALIAS_RE.match(lake.global_config_key_alias)
    assert KMS_ALIAS_RE.match(lake.pipeline_topic_key_alias)
    assert SNS_TOPIC_RE.match(lake.pipeline_topic)
    assert KMS_ALIAS_RE.match(lake.package_key_alias)


@pytest.mark.parametrize("prefix", ["abc", LONGEST_PREFIX])
def test_package_index_names_are_valid(example_raw: dict[str, Any], prefix: str) -> None:
    lake = lake_names(from_mapping({**example_raw, "prefix": prefix}))
    assert CODEARTIFACT_DOMAIN_RE.match(lake.package_domain), lake.package_domain
    for repository in (lake.package_repository, lake.package_upstream_repository):
        assert CODEARTIFACT_REPOSITORY_RE.match(repository), repository
    assert lake.package_repository != lake.package_upstream_repository


def test_tags_are_valid_aws_tags(longest: LakeConfig) -> None:
    for key, value in tags(longest, LONGEST_ENV, "infra").items():
        assert 1 <= len(key) <= 128
        assert len(value) <= 256
        assert not key.lower().startswith("aws:")
