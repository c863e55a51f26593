"""Publish and pull against moto: the secret in the deployment account, facts in each target account.

The caller acts in the deployment account through credentials of a role assumed there: moto's
`MOTO_ACCOUNT_ID` would pin every request (the assumed target-account sessions too) to one account,
which would hide exactly the cross-account mistakes these tests are for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ClientError

from datalake_config import ConfigError, LakeConfig, dumps_json, from_mapping, lake_names, load, names_for
from datalake_config.aws import AccountMismatch, Sessions
from datalake_config.publish import (
    FACTS_PARAMETER_TYPE,
    PublishError,
    approvers,
    config_digest,
    environment_facts,
    operator_principal,
    pipelines_to_start,
    plan_publish,
    publisher_policy,
    publisher_role,
    publisher_trust_policy,
    pull,
)
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
def deployment_stack(aws: None, example: LakeConfig) -> None:
    """What bootstrap leaves behind: the secret, without a value (the deployment-account stack), and each
    target's config publisher role (moto assumes any role, but the roles are where publish expects them)."""
    in_account(DEPLOYMENT, "secretsmanager").create_secret(Name=SECRET, Description="global config")
    for env in example.environment_names:
        create_publisher_role(example, env)


def create_publisher_role(config: LakeConfig, env: str) -> None:
    role = publisher_role(config, env)
    iam = in_account(role.account, "iam")
    iam.create_role(RoleName=role.name, AssumeRolePolicyDocument=json.dumps(role.trust_policy))
    iam.put_role_policy(RoleName=role.name, PolicyName=role.policy_name, PolicyDocument=json.dumps(role.policy))


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
    # the secret changed, and every pipeline's synth step reads it: all of them run again
    assert pipelines_to_start(changed, plan) == [
        f"acme-lake-{kind}-{e}-pipeline" for e in ("dev", "test", "prod") for kind in ("infra", "etl")
    ]
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
    # only dev's facts change: only dev's pipelines run again
    assert pipelines_to_start(example, plan) == ["acme-lake-infra-dev-pipeline", "acme-lake-etl-dev-pipeline"]
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
    started = pipelines_to_start(example, plan)
    assert not [p for p in started if "staging" in p]  # a removed environment has no pipeline to start
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
    # a role named for the call wins, and each (account, role) is its own session
    other = sessions.account_client("sts", "333333333333", REGION, "acme-lake-test-config-publisher")
    assert ":assumed-role/acme-lake-test-config-publisher/lakeops" in other.get_caller_identity()["Arn"]
    assert sessions.for_account("333333333333", REGION) is not sessions.for_account(
        "333333333333", REGION, "acme-lake-test-config-publisher"
    )
    assert sessions.for_account(DEPLOYMENT, REGION) is sessions.base


def test_sessions_without_a_role_assume_none(aws: None) -> None:
    # no built-in default (it used to be OrganizationAccountAccessRole): a call naming no role fails
    with pytest.raises(ValueError, match="no role named to assume in account 333333333333"):
        Sessions(region=REGION).for_account("333333333333", REGION)


def test_an_unreachable_removed_environment_becomes_a_note(
    deployment_stack: None, example: LakeConfig, variant: Variant, monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = variant()
    envs = raw["environments"]
    staging = {"account": "555555555555", "region": REGION, "branch": "staging", "vpc_cidr": "10.40.0.0/16"}
    raw["environments"] = {"dev": envs["dev"], "test": envs["test"], "staging": staging, "prod": envs["prod"]}
    publish(from_mapping(raw))

    original = Sessions.for_account

    def closed_account(self: Sessions, account: str, region: str, role_name: str | None = None) -> Any:
        if account == "555555555555":  # e.g. the account was closed and the role is gone
            error = {"Error": {"Code": "AccessDenied", "Message": "not authorized to assume the role"}}
            raise ClientError(error, "AssumeRole")
        return original(self, account, region, role_name)

    monkeypatch.setattr(Sessions, "for_account", closed_account)
    plan = plan_publish(example, Sessions(region=REGION))
    # the rest of the plan stands: the secret and each remaining environment's digest
    changed = [(c.action, c.name.rsplit("/", 1)[-1]) for c in plan.changes]
    assert changed == [("update", "global"), *[("update", "config-digest")] * 3]
    assert len(plan.notes) == 1
    assert plan.notes[0].startswith(
        "could not read the facts of removed environment 'staging' (555555555555/eu-west-1) under "
        "/acme-lake/staging/facts as role acme-lake-staging-config-publisher: An error occurred (AccessDenied)"
    )
    assert plan.notes[0].endswith("; delete them there by hand")


# --- the config publisher role: who publish acts as in each target, and what it may do there ---------------
def with_staging(variant: Variant) -> LakeConfig:
    raw = variant()
    envs = raw["environments"]
    staging = {"account": "555555555555", "region": REGION, "branch": "staging", "vpc_cidr": "10.40.0.0/16"}
    raw["environments"] = {"dev": envs["dev"], "test": envs["test"], "staging": staging, "prod": envs["prod"]}
    return from_mapping(raw)


@pytest.fixture
def ssm_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str | None, str, dict[str, Any]]]:
    """Every SSM call publish makes in a target: (account, region, role assumed, operation, parameters)."""
    calls: list[tuple[str, str, str | None, str, dict[str, Any]]] = []
    original = Sessions.account_client

    def recording(self: Sessions, service: str, account: str, region: str, role_name: str | None = None) -> Any:
        client = original(self, service, account, region, role_name)
        if service != "secretsmanager":

            def record(params: dict[str, Any], model: Any, **_: Any) -> None:
                calls.append((account, region, role_name, model.name, dict(params)))

            client.meta.events.register(f"provide-client-params.{service}.*", record)
        return client

    monkeypatch.setattr(Sessions, "account_client", recording)
    return calls


def called_resource(account: str, region: str, operation: str, params: dict[str, Any]) -> str:
    """The resource IAM authorizes the call against (Parameter Store user guide, "How Parameter Store
    authorizes parameter retrieval": GetParametersByPath against the requested path, the others per name)."""
    name = params["Path"] if operation == "GetParametersByPath" else params["Name"]
    return f"arn:aws:ssm:{region}:{account}:parameter{name}"


def allows(policy: dict[str, Any], action: str, resource: str) -> bool:
    """Whether an Allow statement grants `action` on `resource` (our policies use no Deny and no condition)."""
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and "Condition" not in statement and "NotAction" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if action in actions and fnmatchcase(resource, statement["Resource"]):
            return True
    return False


def test_publish_acts_in_each_target_only_through_its_publisher_role_and_within_its_policy(
    deployment_stack: None,
    example: LakeConfig,
    variant: Variant,
    ssm_calls: list[tuple[str, str, str | None, str, dict[str, Any]]],
) -> None:
    # every kind of write publish makes: create, update, delete a stale fact, delete a removed environment's
    bigger = with_staging(variant)
    publish(bigger)
    in_account("222222222222", "ssm").put_parameter(Name="/acme-lake/dev/facts/obsolete", Value="x", Type="String")
    publish(example)
    assert parameters("555555555555", "/acme-lake") == {}

    policies = {publisher_role(bigger, env).name: publisher_policy(bigger, env) for env in bigger.environment_names}
    operations = {call[3] for call in ssm_calls}
    assert operations == {"GetParametersByPath", "PutParameter", "DeleteParameter"}
    used_actions: set[str] = set()
    for account, region, role, operation, params in ssm_calls:
        assert role in policies, f"{operation} in {account} as {role}, not as a publisher role"
        env = role.removeprefix("acme-lake-").removesuffix("-config-publisher")
        assert bigger.env(env).account == account
        action = f"ssm:{operation}"
        assert allows(policies[role], action, called_resource(account, region, operation, params)), params
        used_actions.add(action)
        if operation == "PutParameter":
            # a String parameter with no tags: no KMS key and no ssm:AddTagsToResource is involved
            assert params["Type"] == FACTS_PARAMETER_TYPE == "String"
            assert "KeyId" not in params and "Tags" not in params
    # and nothing granted goes unused
    granted = {a for policy in policies.values() for s in policy["Statement"] for a in _as_list(s["Action"])}
    assert granted == used_actions


def test_the_publisher_policy_allows_its_own_facts_and_nothing_else(example: LakeConfig) -> None:
    policy = publisher_policy(example, "dev")
    facts = "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake/dev/facts"
    assert policy == {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadFactsByPath", "Effect": "Allow", "Action": "ssm:GetParametersByPath", "Resource": facts},
            {
                "Sid": "WriteFacts",
                "Effect": "Allow",
                "Action": ["ssm:DeleteParameter", "ssm:PutParameter"],
                "Resource": f"{facts}/*",
            },
        ],
    }
    assert allows(policy, "ssm:GetParametersByPath", facts)
    for action in ("ssm:PutParameter", "ssm:DeleteParameter"):
        assert allows(policy, action, f"{facts}/account")
    refused = [
        ("ssm:GetParametersByPath", "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake/dev"),
        ("ssm:GetParametersByPath", "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake"),
        ("ssm:PutParameter", "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake/dev/contract/network/vpc-id"),
        ("ssm:PutParameter", "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake/dev/factsheet"),
        ("ssm:PutParameter", "arn:aws:ssm:eu-west-1:222222222222:parameter/acme-lake/test/facts/account"),
        ("ssm:PutParameter", "arn:aws:ssm:eu-west-2:222222222222:parameter/acme-lake/dev/facts/account"),
        ("ssm:PutParameter", "arn:aws:ssm:eu-west-1:333333333333:parameter/acme-lake/dev/facts/account"),
        ("ssm:GetParameter", f"{facts}/account"),
        ("ssm:AddTagsToResource", f"{facts}/account"),
        ("kms:Decrypt", "*"),
    ]
    assert [r for r in refused if allows(policy, *r)] == []


def test_the_publisher_policy_follows_the_partition(example: LakeConfig, variant: Variant) -> None:
    china = from_mapping(variant({"environments.dev.region": "cn-north-1"}))
    resources = [s["Resource"] for s in publisher_policy(china, "dev")["Statement"]]
    assert resources[0] == "arn:aws-cn:ssm:cn-north-1:222222222222:parameter/acme-lake/dev/facts"


def test_the_publisher_trust_admits_only_the_operator_of_the_deployment_account(example: LakeConfig) -> None:
    assert operator_principal(example) == "arn:aws:iam::111111111111:role/acme-lake-operator"  # the default
    trust = publisher_trust_policy(example)
    assert trust["Version"] == "2012-10-17"
    [statement] = trust["Statement"]
    assert statement == {
        "Sid": "DeploymentAccountOperator",
        "Effect": "Allow",
        # the account as principal, the operator by condition: see publisher_trust_policy for why
        "Principal": {"AWS": "arn:aws:iam::111111111111:root"},
        "Action": "sts:AssumeRole",  # not sts:TagSession, sts:SetSourceIdentity or sts:*
        "Condition": {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::111111111111:role/acme-lake-operator"}},
    }
    # every environment's role trusts the same operator
    assert {json.dumps(publisher_role(example, e).trust_policy) for e in example.environment_names} == {
        json.dumps(trust)
    }


def test_approvers_default_to_the_operator(example: LakeConfig, variant: Variant) -> None:
    assert approvers(example, "prod") == ["arn:aws:iam::111111111111:role/acme-lake-operator"]
    release = "arn:aws:iam::111111111111:role/release-managers"
    assert approvers(from_mapping(variant({"environments.prod.approvers": [release]})), "prod") == [release]


def test_the_operator_principal_comes_from_the_config(variant: Variant) -> None:
    sso = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_LakeOperator_*"
    config = from_mapping(variant({"deployment.operator_principal": sso}))
    condition = publisher_trust_policy(config)["Statement"][0]["Condition"]
    assert condition == {"ArnLike": {"aws:PrincipalArn": sso}}
    assert fnmatchcase(
        "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_LakeOperator_0123abcd", sso
    )


def test_publish_assumes_each_environments_publisher_role_and_no_other(
    deployment_stack: None, example: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    assumed: list[str] = []
    original = Sessions.for_account

    def recording(self: Sessions, account: str, region: str, role_name: str | None = None) -> Any:
        session = original(self, account, region, role_name)
        if session is not self.base:
            identity = self.client("sts", region=region, session=session).get_caller_identity()
            assumed.append(identity["Arn"])
        return session

    monkeypatch.setattr(Sessions, "for_account", recording)
    publish(example)
    assert sorted(set(assumed)) == [
        f"arn:aws:sts::{account}:assumed-role/acme-lake-{env}-config-publisher/lakeops"
        for env, account in (("dev", "222222222222"), ("test", "333333333333"), ("prod", "444444444444"))
    ]


def test_a_publisher_role_that_cannot_be_assumed_is_refused_with_what_to_do(
    deployment_stack: None, example: LakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Sessions.for_account

    def not_bootstrapped(self: Sessions, account: str, region: str, role_name: str | None = None) -> Any:
        if account == "333333333333":
            error = {"Error": {"Code": "AccessDenied", "Message": "is not authorized to perform: sts:AssumeRole"}}
            raise ClientError(error, "AssumeRole")
        return original(self, account, region, role_name)

    monkeypatch.setattr(Sessions, "for_account", not_bootstrapped)
    with pytest.raises(PublishError) as refused:
        plan_publish(example, Sessions(region=REGION))
    assert str(refused.value) == (
        "cannot assume the config publisher role acme-lake-test-config-publisher in account 333333333333 "
        "(environment test): is not authorized to perform: sts:AssumeRole; create it with `lakeops bootstrap "
        "apply`, and publish as the operator it trusts (arn:aws:iam::111111111111:role/acme-lake-operator)"
    )


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


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


def test_the_shared_aws_options_keep_assume_role_name_for_the_commands_that_name_a_role(aws: None) -> None:
    import argparse

    from datalake_config.cli import add_aws_options, sessions_from

    # `etl-jobs reprocess` declares the options this way: unchanged, with the same default
    parser = argparse.ArgumentParser()
    add_aws_options(parser)
    args = parser.parse_args([])
    assert args.assume_role_name == "OrganizationAccountAccessRole"
    assert sessions_from(args).assume_role_name == "OrganizationAccountAccessRole"
    assert sessions_from(parser.parse_args(["--assume-role-name", "ops"])).assume_role_name == "ops"
    identity = sessions_from(args).account_client("sts", "333333333333", REGION).get_caller_identity()
    assert ":assumed-role/OrganizationAccountAccessRole/lakeops" in identity["Arn"]
    # `lakeops config publish` names its roles itself: no option, and no role to fall back on
    publish = argparse.ArgumentParser()
    add_aws_options(publish, assume_role=False)
    assert not hasattr(publish.parse_args([]), "assume_role_name")
    assert sessions_from(publish.parse_args([])).assume_role_name is None


def test_validate_without_a_pulled_config_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datalake_config.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1
    assert "pull the published config with `lake-config pull`" in capsys.readouterr().err
