"""Publish the validated config: JSON to the global-config secret, environment facts to SSM in each target.

Every publish first computes a plan (what would change), shows it, and only then writes; a second
publish of the same config finds nothing to change. Secret contents are never printed: the plan
names the changed fields of the secret, not their values.

In each target account publish acts through that environment's config publisher role (`publisher_role`),
which `lakeops bootstrap` creates there with the account's own credentials: it trusts the operator in
the deployment account only and may touch `/<prefix>/<env>/facts` and nothing else.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config.aws import Sessions, partition_of
from datalake_config.loader import dumps_json, loads
from datalake_config.model import ACCOUNT_RE, LakeConfig
from datalake_config.naming import REPOSITORIES, EnvironmentNames, lake_names, names_for, tags

# Facts are plain `String` parameters (`_put`): no KMS key encrypts them, so neither writing nor reading them
# needs a KMS permission. Making them SecureString would need kms:Encrypt/kms:Decrypt on that key in the
# publisher policy (with the AWS managed key aws/ssm, kms:ViaService does not apply to cross-account roles).
FACTS_PARAMETER_TYPE = "String"
PUBLISHER_POLICY_NAME = "publish-environment-facts"


class PublishError(RuntimeError):
    """Publishing could not proceed; nothing further was written."""


# --- the config publisher role in each target account ---------------------------------------------------
@dataclass(frozen=True)
class PublisherRole:
    """The role `config publish` assumes in one environment's account, exactly as bootstrap creates it there."""

    env: str
    account: str
    region: str
    name: str
    trust_policy: dict[str, Any]
    policy_name: str
    policy: dict[str, Any]
    tags: tuple[tuple[str, str], ...] = ()


def operator_principal(config: LakeConfig) -> str:
    """The deployment-account role allowed to publish: `deployment.operator_principal`, or `<prefix>-operator`."""
    deployment = config.deployment
    if deployment.operator_principal:
        return deployment.operator_principal
    partition = partition_of(deployment.region)
    return f"arn:{partition}:iam::{deployment.account}:role/{lake_names(config).operator_role_name}"


def approvers(config: LakeConfig, env_name: str) -> list[str]:
    """The deployment-account roles that may approve `env_name`'s deployments: its `approvers`, or the operator."""
    return list(config.env(env_name).approvers or [operator_principal(config)])


def publisher_trust_policy(config: LakeConfig) -> dict[str, Any]:
    """Only the operator in the deployment account may assume a publisher role.

    The principal is the deployment account and the operator is matched by `aws:PrincipalArn` (for a role
    session: the role's ARN, path included; IAM global condition keys) rather than named as the principal:
    IAM refuses a trust policy naming a role that does not exist yet, stores a named role as its unique id (so
    a re-created operator role would silently lose access), and allows no wildcard in a principal, which
    IAM Identity Center roles (random name suffix) need. Cross-account, the operator's own identity policy
    must also allow sts:AssumeRole on the publisher roles: the deployment account decides who holds the
    operator role, this policy decides that nobody else in that account can publish.
    """
    deployment = config.deployment
    root = f"arn:{partition_of(deployment.region)}:iam::{deployment.account}:root"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "DeploymentAccountOperator",
                "Effect": "Allow",
                "Principal": {"AWS": root},
                "Action": "sts:AssumeRole",
                "Condition": {"ArnLike": {"aws:PrincipalArn": operator_principal(config)}},
            }
        ],
    }


def publisher_policy(config: LakeConfig, env: str) -> dict[str, Any]:
    """Exactly the calls `_plan_facts`/`_plan_removed_environments` make in the target, on its facts only.

    GetParametersByPath is authorized against the path in the request, not the parameters it returns
    (Parameter Store user guide, "How Parameter Store authorizes parameter retrieval"): the facts root itself.
    PutParameter and DeleteParameter are authorized against each parameter: everything below the root.
    Nothing else: `_put` passes no tags (no ssm:AddTagsToResource) and no KMS key (`FACTS_PARAMETER_TYPE`).
    """
    e = config.env(env)
    root = names_for(config, env).facts_root  # `/<prefix>/<env>/facts`; a parameter ARN drops the leading `/`
    arn = f"arn:{partition_of(e.region)}:ssm:{e.region}:{e.account}:parameter{root}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadFactsByPath", "Effect": "Allow", "Action": "ssm:GetParametersByPath", "Resource": arn},
            {
                "Sid": "WriteFacts",
                "Effect": "Allow",
                "Action": ["ssm:DeleteParameter", "ssm:PutParameter"],
                "Resource": f"{arn}/*",
            },
        ],
    }


def publisher_role(config: LakeConfig, env: str) -> PublisherRole:
    e = config.env(env)
    return PublisherRole(
        env=env,
        account=e.account,
        region=e.region,
        name=names_for(config, env).config_publisher_role_name,
        trust_policy=publisher_trust_policy(config),
        policy_name=PUBLISHER_POLICY_NAME,
        policy=publisher_policy(config, env),
        tags=tuple(tags(config, env).items()),
    )


def config_digest(config: LakeConfig) -> str:
    """A short fingerprint of the published config, stored beside the facts so drift is visible."""
    return hashlib.sha256(dumps_json(config).encode()).hexdigest()[:16]


def environment_facts(config: LakeConfig, env: str) -> dict[str, str]:
    """The SSM parameters (path → value) describing one environment in its own account."""
    names = names_for(config, env)
    e = config.env(env)
    facts = {
        "account": e.account,
        "region": e.region,
        "vpc-cidr": e.vpc_cidr,
        "nat-gateways": str(e.nat_gateways),
        "max-azs": str(e.max_azs),
        "require-approval": str(e.require_approval).lower(),
        "retain-data": str(e.retain_data).lower(),
        "zones": ",".join(config.zones),
        "deployment-account": config.deployment.account,
        "deployment-region": config.deployment.region,
        "config-digest": config_digest(config),
    }
    return {names.fact(key): value for key, value in facts.items()}


@dataclass
class Change:
    where: str  # "secret <name> in <account>" or "ssm <account>/<region>"
    name: str
    action: str  # create | update | delete
    detail: str = ""
    env: str | None = None  # the environment whose facts change; None for the lake-wide secret

    def __str__(self) -> str:
        detail = f"  {self.detail}" if self.detail else ""
        return f"{self.action:<7} {self.where}: {self.name}{detail}"


@dataclass
class Plan:
    changes: list[Change] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the plan could not cover, for the operator
    _apply: list[Callable[[], None]] = field(default_factory=list, repr=False)

    @property
    def empty(self) -> bool:
        return not self.changes

    def apply(self) -> None:
        for step in self._apply:
            step()


def pipelines_to_start(config: LakeConfig, plan: Plan) -> list[str]:
    """The pipelines whose inputs the plan changes: all of them when the secret changes (every synth step reads
    it), else those of each environment whose facts change. A removed environment has no pipeline left."""
    if any(change.env is None for change in plan.changes):
        envs = list(config.environment_names)
    else:
        envs = [e for e in config.environment_names if any(change.env == e for change in plan.changes)]
    return [names_for(config, env).pipeline_name(kind) for env in envs for kind in REPOSITORIES]


def plan_publish(config: LakeConfig, sessions: Sessions) -> Plan:
    """Compare the config with what is published; return the changes (nothing is written yet)."""
    plan = Plan()
    previous = _plan_secret(config, sessions, plan)
    for env in config.environment_names:
        _plan_facts(config, env, sessions, plan)
    _plan_removed_environments(previous, config, sessions, plan)
    return plan


def _plan_secret(config: LakeConfig, sessions: Sessions, plan: Plan) -> Any:
    """Plan the secret's new value; return the previously published config as plain data ({} if none)."""
    secret = lake_names(config).global_config_secret
    account, region = config.deployment.account, config.deployment.region
    client = sessions.account_client("secretsmanager", account, region)
    desired = dumps_json(config)
    try:
        current = client.get_secret_value(SecretId=secret)["SecretString"]
    except ClientError as exc:
        code = exc.response["Error"]["Code"]
        if code == "ResourceNotFoundException":
            if _secret_exists(client, secret):
                current = None  # created by the deployment-account stack, no value yet
            else:
                raise PublishError(
                    f"secret {secret!r} does not exist in the deployment account {account} ({region}): "
                    "deploy the deployment-account stack first (lakeops bootstrap apply)"
                ) from None
        else:
            raise
    previous = _json_or_empty(current)
    if current == desired:
        return previous
    changed = _changed_fields(previous, json.loads(desired))
    detail = f"fields changed: {', '.join(changed)}" if current is not None else "first value"
    plan.changes.append(Change(f"secret in {account}", secret, "update" if current else "create", detail))
    plan._apply.append(lambda: client.put_secret_value(SecretId=secret, SecretString=desired))
    return previous


def _plan_facts(config: LakeConfig, env: str, sessions: Sessions, plan: Plan) -> None:
    e = config.env(env)
    role = names_for(config, env).config_publisher_role_name
    try:
        client = sessions.account_client("ssm", e.account, e.region, role)
    except ClientError as exc:
        if exc.operation_name != "AssumeRole":
            raise
        raise PublishError(
            f"cannot assume the config publisher role {role} in account {e.account} (environment {env}): "
            f"{exc.response['Error'].get('Message')}; create it with `lakeops bootstrap apply`, and publish "
            f"as the operator it trusts ({operator_principal(config)})"
        ) from None
    desired = environment_facts(config, env)
    root = names_for(config, env).facts_root
    current = _parameters_under(client, root)
    where = f"ssm {env} ({e.account}/{e.region})"
    for name, value in desired.items():
        if current.get(name) == value:
            continue
        action = "update" if name in current else "create"
        detail = f"{current[name]!r} → {value!r}" if name in current else repr(value)
        plan.changes.append(Change(where, name, action, detail, env))
        plan._apply.append(_put(client, name, value))
    for name in sorted(set(current) - set(desired)):
        plan.changes.append(Change(where, name, "delete", "no longer in the config", env))
        plan._apply.append(_delete(client, name))


def _plan_removed_environments(previous: Any, config: LakeConfig, sessions: Sessions, plan: Plan) -> None:
    """Delete the facts of environments the previously published config had and this one drops."""
    envs = previous.get("environments") if isinstance(previous, dict) else None
    prefix = previous.get("prefix") if isinstance(previous, dict) else None
    if not isinstance(envs, dict) or not isinstance(prefix, str):
        return
    kept = {(e.account, e.region, names_for(config, n).facts_root) for n, e in config.environments.items()}
    for name, env in envs.items():
        account, region = _get(env, "account"), _get(env, "region")
        if not (isinstance(account, str) and ACCOUNT_RE.match(account) and isinstance(region, str)):
            continue
        # The removed environment's publisher role, named from the previous config (bootstrap created it
        # under that prefix and environment name, and nothing deletes it when the environment goes).
        names = EnvironmentNames(prefix=prefix, env=str(name), zones=())
        root, role = names.facts_root, names.config_publisher_role_name
        if (account, region, root) in kept:
            continue
        try:
            client = sessions.account_client("ssm", account, region, role)
            stale = _parameters_under(client, root)
        except (ClientError, BotoCoreError) as exc:
            plan.notes.append(
                f"could not read the facts of removed environment {name!r} ({account}/{region}) under {root} "
                f"as role {role}: {exc}; delete them there by hand"
            )
            continue
        where = f"ssm {name} ({account}/{region})"
        for parameter in sorted(stale):
            plan.changes.append(Change(where, parameter, "delete", "environment no longer in the config", str(name)))
            plan._apply.append(_delete(client, parameter))


def _parameters_under(client: Any, root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    for page in client.get_paginator("get_parameters_by_path").paginate(Path=root, Recursive=True):
        found.update({p["Name"]: p["Value"] for p in page["Parameters"]})
    return found


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, dict) else None


def _put(client: Any, name: str, value: str) -> Callable[[], None]:
    return lambda: client.put_parameter(
        Name=name,
        Value=value,
        Type=FACTS_PARAMETER_TYPE,
        Overwrite=True,
        Description="published by lakeops config publish",
    )


def _delete(client: Any, name: str) -> Callable[[], None]:
    return lambda: client.delete_parameter(Name=name)


def pull(config_secret: str, sessions: Sessions, out: Path, *, region: str | None = None) -> LakeConfig:
    """Read the published config back into `out` for synth; an invalid published value is refused."""
    client = sessions.client("secretsmanager", region=region)
    try:
        text = client.get_secret_value(SecretId=config_secret)["SecretString"]
    except ClientError as exc:
        raise PublishError(f"cannot read secret {config_secret!r}: {exc.response['Error']['Message']}") from None
    config = loads(text, source=f"secret {config_secret}")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(dumps_json(config), encoding="utf-8")
    return config


def _secret_exists(client: Any, secret: str) -> bool:
    try:
        client.describe_secret(SecretId=secret)
    except ClientError:
        return False
    return True


def _json_or_empty(text: str | None) -> Any:
    try:
        return json.loads(text) if text else {}
    except json.JSONDecodeError:
        return {}


def _changed_fields(old: Any, new: Any, path: str = "") -> list[str]:
    """Paths of the fields that differ, without their values."""
    if isinstance(old, dict) and isinstance(new, dict):
        result: list[str] = []
        for key in list(new) + [k for k in old if k not in new]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in old or key not in new:
                result.append(sub)
            else:
                result.extend(_changed_fields(old[key], new[key], sub))
        return result
    return [] if old == new else [path or "(whole value)"]
