"""Publish and pull against moto: the secret in the deployment account, facts in each target account.

The caller acts in the deployment account through credentials of a role assumed there: moto's
`MOTO_ACCOUNT_ID` would pin every request (the assumed target-account sessions too) to one account,
which would hide exactly the cross-account mistakes these tests are for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ClientError

from datalake_config import ConfigError, LakeConfig, dumps_json, from_mapping, lake_names, load, names_for
from datalake_config.aws import AccountMismatch, Sessions
from datalake_config.publish import PublishError, config_digest, environment_facts, plan_publish, pull
from datalake_config.testing import moto_acting_in

DEPLOYMENT = "111111111111"
REGION = "eu-west-1"
SECRET = "acme-lake/config/global"
FACTS_PER_ENVIRONMENT = 11

Variant = Callable[..., dict[str, Any]]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """moto, with the process's credentials acting in the deployment account."""
    with moto_acting_in(DEPLOYMENT, REGION, monkeypatch, tmp_path):
        yield


# One service-model loader for every checking session: parsing the models per session dominates run time.
_MODELS = botocore.loaders.create_loader()


def _session(**credentials: str) -> boto3.Session:
    core = botocore.session.Session()
    core.register_component("data_loader", _MODELS)
    return boto3.Session(region_name=REGION, botocore_session=core, **credentials)


def in_account(account: str, service: str) -> Any:
    """A client acting in `account`, made independently of the code under test."""
    base = _session()
    if account == DEPLOYMENT:
        return base.client(service)
    creds = base.client("sts").assume_role(RoleArn=f"arn:aws:iam::{account}:role/check", RoleSessionName="check")
    c = creds["Credentials"]
    return _session(
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    ).client(service)


def parameters(account: str, path: str) -> dict[str, str]:
    pages = in_account(account, "ssm").get_paginator("get_parameters_by_path").paginate(Path=path, Recursive=True)
    return {p["Name"]: p["Value"] for page in pages for p in page["Parameters"]}


def secret_value(secret: str = SECRET) -> str:
    return str(in_account(DEPLOYMENT, "secretsmanager").get_secret_value(SecretId=secret)["SecretString"])


@pytest.fixture
def deployment_stack(aws: None) -> None:
    """What the deployment-account stack leaves behind: the secret, without a value."""
    in_account(DEPLOYMENT, "secretsmanager").create_secret(Name=SECRET, Description="global config")


def publish(config: LakeConfig) -> list[str]:
    plan = plan_publish(config, Sessions(region=REGION))
    plan.apply()
    return [str(change) for change in plan.changes]


def plan_lines(config: LakeConfig) -> list[str]:
    return [str(change) for change in plan_publish(config, Sessions(region=REGION)).changes]


def test_first_publish_writes_the_secret_and_each_environments_facts_in_its_own_account(
    deployment_stack: None, example: LakeConfig
) -> None:
    plan = plan_publish(example, Sessions(region=REGION))
    assert [(c.action, c.name) for c in plan.changes[:1]] == [("create", SECRET)]
    assert len(plan.changes) == 1 + FACTS_PER_ENVIRONMENT * len(example.environments)
    assert {c.action for c in plan.changes} == {"create"}
    assert plan.notes == []

    plan.apply()

    assert secret_value() == dumps_json(example)
    for env in example.environment_names:
        account = example.env(env).account
        assert parameters(account, f"/acme-lake/{env}/facts") == environment_facts(example, env)
        others = [o for o in example.environment_names if o != env]
        assert all(parameters(account, f"/acme-lake/{o}") == {} for o in others), f"{env} holds foreign facts"
    assert parameters(DEPLOYMENT, "/acme-lake") == {}


def test_facts_describe_the_environment(example: LakeConfig) -> None:
    facts = environment_facts(example, "prod")
    root = names_for(example, "prod").facts_root
    assert {name.removeprefix(f"{root}/"): value for name, value in facts.items()} == {
        "account": "444444444444",
        "region": "eu-west-1",
        "vpc-cidr": "10.30.0.0/16",
        "nat-gateways": "0",
        "max-azs": "3",
        "require-approval": "true",
        "retain-data": "true",
        "zones": "raw,conformed,curated",
        "deployment-account": DEPLOYMENT,
        "deployment-region": "eu-west-1",
        "config-digest": config_digest(example),
    }


def test_a_second_publish_changes_nothing(deployment_stack: None, example: LakeConfig) -> None:
    publish(example)
    assert plan_publish(example, Sessions(region=REGION)).empty


def test_a_config_change_updates_exactly_what_changed(
    deployment_stack: None, example: LakeConfig, variant: Variant
) -> None:
    publish(example)
    changed = from_mapping(variant({"environments.test.vpc_cidr": "10.21.0.0/16"}))
    plan = plan_publish(changed, Sessions(region=REGION))
    digest_change = f"{config_digest(example)!r} → {config_digest(changed)!r}"
    assert sorted((c.action, c.name, c.detail) for c in plan.changes) == sorted(
        [
            ("update", SECRET, "fields changed: environments.test.vpc_cidr"),
            ("update", "/acme-lake/test/facts/vpc-cidr", "'10.20.0.0/16' → '10.21.0.0/16'"),
            *[("update", f"/acme-lake/{e}/facts/config-digest", digest_change) for e in ("dev", "test", "prod")],
        ]
    )
    plan.apply()
    assert secret_value() == dumps_json(changed)
    assert parameters("333333333333", "/acme-lake/test/facts")["/acme-lake/test/facts/vpc-cidr"] == "10.21.0.0/16"
    assert plan_publish(changed, Sessions(region=REGION)).empty


def test_facts_no_longer_produced_are_deleted(deployment_stack: None, example: LakeConfig) -> None:
    publish(example)
    stale = "/acme-lake/dev/facts/obsolete-fact"
    in_account("222222222222", "ssm").put_parameter(Name=stale, Value="old", Type="String")
    plan = plan_publish(example, Sessions(region=REGION))
    assert [(c.action, c.name) for c in plan.changes] == [("delete", stale)]
    plan.apply()
    assert stale not in parameters("222222222222", "/acme-lake/dev/facts")
    assert len(parameters("222222222222", "/acme-lake/dev/facts")) == FACTS_PER_ENVIRONMENT


def test_facts_of_a_removed_environment_are_deleted(
    deployment_stack: None, example: LakeConfig, variant: Variant
) -> None:
    raw = variant()
    envs = raw["environments"]
    staging = {"account": "555555555555", "region": REGION, "branch": "staging", "vpc_cidr": "10.40.0.0/16"}
    raw["environments"] = {"dev": envs["dev"], "test": envs["test"], "staging": staging, "prod": envs["prod"]}
    publish(from_mapping(raw))
    assert len(parameters("555555555555", "/acme-lake/staging/facts")) == FACTS_PER_ENVIRONMENT

    plan = plan_publish(example, Sessions(region=REGION))
    deleted = sorted(c.name for c in plan.changes if c.action == "delete")
    assert deleted == sorted(environment_facts(from_mapping(raw), "staging"))
    assert {c.where for c in plan.changes if c.action == "delete"} == {"ssm staging (555555555555/eu-west-1)"}
    plan.apply()
    assert parameters("555555555555", "/acme-lake") == {}


def test_the_plan_never_shows_secret_values(deployment_stack: None, example: LakeConfig, variant: Variant) -> None:
    first = publish(example)
    changed = from_mapping(
        variant({"notifications.emails": ["hidden-approvers@example.com"], "organisation": "Hidden Org"})
    )
    second = plan_lines(changed)
    text = "\n".join(first + second)
    assert "hidden-approvers" not in text
    assert "Hidden Org" not in text
    assert "data-platform-alerts@example.com" not in text
    assert "{" not in text  # no JSON at all
    assert f"update  secret in {DEPLOYMENT}: {SECRET}  fields changed: organisation, notifications.emails" in second


def test_publishing_without_the_deployment_stack_is_refused(aws: None, example: LakeConfig) -> None:
    with pytest.raises(PublishError, match="deploy the deployment-account stack first"):
        plan_publish(example, Sessions(region=REGION))
    assert all(parameters(example.env(e).account, "/acme-lake") == {} for e in example.environment_names)


def test_pull_round_trips_to_an_identical_config_file(
    deployment_stack: None, example: LakeConfig, tmp_path: Path
) -> None:
    publish(example)
    out = tmp_path / "synth" / "config.json"
    pulled = pull(lake_names(example).global_config_secret, Sessions(region=REGION), out)
    assert pulled == example
    assert out.read_text(encoding="utf-8") == dumps_json(example)
    assert load(out) == example


def test_pull_refuses_an_invalid_published_value(deployment_stack: None, example: LakeConfig, tmp_path: Path) -> None:
    bad = json.loads(dumps_json(example))
    bad["environments"]["prod"]["account"] = "12345"
    in_account(DEPLOYMENT, "secretsmanager").put_secret_value(SecretId=SECRET, SecretString=json.dumps(bad))
    out = tmp_path / "config.json"
    with pytest.raises(ConfigError) as caught:
        pull(SECRET, Sessions(region=REGION), out)
    assert caught.value.problems == ["environments.prod.account: must be 12 digits, got '12345'"]
    assert caught.value.source == f"secret {SECRET}"
    assert not out.exists()


def test_pull_of_a_missing_secret_is_refused(aws: None, tmp_path: Path) -> None:
    with pytest.raises(PublishError, match="cannot read secret 'acme-lake/config/global'"):
        pull(SECRET, Sessions(region=REGION), tmp_path / "config.json")
    assert not (tmp_path / "config.json").exists()


def test_require_account_refuses_other_credentials_before_anything_is_written(
    deployment_stack: None, example: LakeConfig
) -> None:
    sessions = Sessions(region=REGION)
    sessions.require_account(DEPLOYMENT, "config publish")
    with pytest.raises(AccountMismatch) as caught:
        sessions.require_account("999999999999", "config publish")
    assert str(caught.value) == (
        "config publish needs credentials for account 999999999999, but the current credentials belong to "
        f"{DEPLOYMENT} (choose them with --profile)"
    )
    assert in_account(DEPLOYMENT, "secretsmanager").describe_secret(SecretId=SECRET).get("VersionIdsToStages") in (
        None,
        {},
    )


def test_target_sessions_assume_the_named_role(aws: None) -> None:
    sessions = Sessions(region=REGION, assume_role_name="LakeopsPublisher")
    identity = sessions.account_client("sts", "333333333333", REGION).get_caller_identity()
    assert identity["Account"] == "333333333333"
    assert ":assumed-role/LakeopsPublisher/lakeops" in identity["Arn"]
    assert sessions.for_account(DEPLOYMENT, REGION) is sessions.base


def test_an_unreachable_removed_environment_becomes_a_note(
    deployment_stack: None, example: LakeConfig, variant: Variant, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = variant()
    envs = raw["environments"]
    staging = {"account": "555555555555", "region": REGION, "branch": "staging", "vpc_cidr": "10.40.0.0/16"}
    raw["environments"] = {"dev": envs["dev"], "test": envs["test"], "staging": staging, "prod": envs["prod"]}
    publish(from_mapping(raw))

    original = Sessions.for_account

    def closed_account(self: Sessions, account: str, region: str) -> Any:
        if account == "555555555555":  # e.g. the account was closed and the role is gone
            error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to assume the role"}}
            raise ClientError(error, "AssumeRole")
        return original(self, account, region)

    monkeypatch.setattr(Sessions, "for_account", closed_account)
    plan = plan_publish(example, Sessions(region=REGION))
    # the rest of the plan stands: the secret and each remaining environment's digest
    changed = [(c.action, c.name.rsplit("/", 1)[-1]) for c in plan.changes]
    assert changed == [("update", "global"), *[("update", "config-digest")] * 3]
    assert len(plan.notes) == 1
    assert plan.notes[0].startswith(
        "could not read the facts of removed environment 'staging' (555555555555/eu-west-1) under "
        "/acme-lake/staging/facts: An error occurred (AccessDenied)"
    )
    assert plan.notes[0].endswith("; delete them there by hand")


# --- `lake-config pull|validate`, the command an app repository's pipeline runs ---------------------------
def test_the_pull_command_writes_the_published_config(
    deployment_stack: None, example: LakeConfig, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datalake_config.cli import main

    publish(example)
    out = tmp_path / "pulled" / "config.json"
    assert main(["pull", "--secret", SECRET, "--out", str(out), "--region", REGION]) == 0
    assert capsys.readouterr().out == f"config pull: wrote {out} (prefix acme-lake, 3 environments)\n"
    assert out.read_text(encoding="utf-8") == dumps_json(example)
    assert main(["validate", str(out)]) == 0


def test_the_pull_command_of_a_missing_secret_exits_1_and_writes_nothing(
    aws: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datalake_config.cli import main

    assert main(["pull", "--secret", SECRET, "--out", str(tmp_path / "c.json"), "--region", REGION]) == 1
    assert f"cannot read secret {SECRET!r}" in capsys.readouterr().err
    assert not (tmp_path / "c.json").exists()


def test_validate_without_a_pulled_config_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datalake_config.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert "pull the published config with `lake-config pull`" in capsys.readouterr().err
