"""Rules that span several fields: they read the raw mapping so they run even when other fields are invalid."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

# Well-known environment names must keep their promotion order; other names (e.g. `staging`) may sit between.
CANONICAL_ORDER = ("dev", "test", "prod")


def cross_field_problems(raw: Mapping[str, Any]) -> list[tuple[str, str]]:
    """Every cross-field problem as (field path, message)."""
    envs = _mapping(raw, "environments")
    return [
        *_environment_order(envs),
        *_duplicate_accounts(raw, envs),
        *_overlapping_cidrs(envs),
        *_branch_collisions(raw, envs),
        *_approval_needs_notification(raw, envs),
        *_unknown_environment_references(raw, envs),
        *_duplicate_zones(raw),
        *_operator_outside_the_deployment_account(raw),
        *_approvers_without_approval_or_outside(raw, envs),
    ]


def _environment_order(envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    names = list(envs)
    known = [n for n in names if n in CANONICAL_ORDER]
    expected = [n for n in CANONICAL_ORDER if n in known]
    if known != expected:
        yield "environments", f"must be in promotion order dev → test → prod, got {' → '.join(names)}"
    if "prod" in names and names[-1] != "prod":
        yield "environments", f"prod must be the last environment, got {' → '.join(names)}"
    if names and _get(envs[names[0]], "require_approval") is True:
        yield (
            f"environments.{names[0]}.require_approval",
            "the first environment receives every merge; it cannot require approval",
        )


def _duplicate_accounts(raw: Mapping[str, Any], envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    deployment = _mapping(raw, "deployment")
    deployment_account = _get(deployment, "account")
    allowed = _get(deployment, "allow_as_target_for") or []
    seen: dict[str, str] = {}
    for name, env in envs.items():
        account = _get(env, "account")
        if not isinstance(account, str):
            continue
        if account == deployment_account and name not in allowed:
            yield (
                f"environments.{name}.account",
                f"{account!r} is the deployment account; list {name!r} in deployment.allow_as_target_for to allow it",
            )
        if account in seen:
            yield (
                f"environments.{name}.account",
                f"{account!r} is already used by environment {seen[account]!r}; each environment needs its own account",
            )
        else:
            seen[account] = name


def _overlapping_cidrs(envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    networks: list[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network]] = []
    for name, env in envs.items():
        try:
            network = ipaddress.ip_network(str(_get(env, "vpc_cidr")), strict=True)
        except ValueError:
            continue  # reported by the field rule
        for other, other_network in networks:
            if network.overlaps(other_network):
                yield (
                    f"environments.{name}.vpc_cidr",
                    f"{network} overlaps {other_network} of environment {other!r}",
                )
        networks.append((name, network))


def _branch_collisions(raw: Mapping[str, Any], envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    repos = _mapping(raw, "repositories")
    reported: set[tuple[str, str]] = set()
    for repo_name in ("infra", "etl"):
        repo = _mapping(repos, repo_name)
        overrides = _get(repo, "branches") or {}
        owner: dict[str, tuple[str, str]] = {}  # branch → (environment, field that set it)
        for env_name, env in envs.items():
            branch = overrides.get(env_name) if isinstance(overrides, Mapping) else None
            field = f"repositories.{repo_name}.branches.{env_name}"
            if branch is None:
                branch, field = _get(env, "branch"), f"environments.{env_name}.branch"
            if not isinstance(branch, str):
                continue
            if branch not in owner:
                owner[branch] = (env_name, field)
                continue
            first_env, first_field = owner[branch]
            # Blame the override when one is involved: that is the line to change.
            if first_field.startswith("repositories.") and not field.startswith("repositories."):
                field = first_field
            problem = (field, f"branch {branch!r} would deploy both {first_env!r} and {env_name!r}")
            if field.startswith("repositories."):
                problem = (field, f"{problem[1]} in repository {repo_name!r}")
            if problem not in reported:  # an environment-level clash is the same for every repository
                reported.add(problem)
                yield problem


def _approval_needs_notification(raw: Mapping[str, Any], envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    notifications = _mapping(raw, "notifications")
    default = _get(notifications, "emails") or []
    for name, env in envs.items():
        if _get(env, "require_approval") is not True:
            continue
        own = _get(env, "notification_emails")
        if not (own if own is not None else default):
            yield (
                f"environments.{name}.notification_emails",
                "an environment that requires approval needs a notification address "
                "(here or in notifications.emails) so approvers hear about pending deployments",
            )


def _unknown_environment_references(raw: Mapping[str, Any], envs: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    deployment = _mapping(raw, "deployment")
    for name in _get(deployment, "allow_as_target_for") or []:
        if name not in envs:
            yield "deployment.allow_as_target_for", f"names unknown environment {name!r}"
    repos = _mapping(raw, "repositories")
    for repo_name, repo in repos.items():
        overrides = _get(repo, "branches") or {}
        for name in overrides if isinstance(overrides, Mapping) else []:
            if name not in envs:
                yield f"repositories.{repo_name}.branches", f"names unknown environment {name!r}"


def _duplicate_zones(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    zones = raw.get("zones")
    if isinstance(zones, list):
        duplicates = sorted({z for z in zones if isinstance(z, str) and zones.count(z) > 1})
        if duplicates:
            yield "zones", f"lists {', '.join(duplicates)} more than once"


def _operator_outside_the_deployment_account(raw: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    # The publisher roles trust the deployment account only: an operator elsewhere could never assume them.
    deployment = _mapping(raw, "deployment")
    yield from _outside_the_deployment_account(
        "deployment.operator_principal", _get(deployment, "operator_principal"), _get(deployment, "account"), "operator"
    )


def _approvers_without_approval_or_outside(
    raw: Mapping[str, Any], envs: Mapping[str, Any]
) -> Iterator[tuple[str, str]]:
    # Approvals are given in the deployment account, where the pipelines are: CodePipeline has no resource policy,
    # so a role of another account can never approve.
    account = _get(_mapping(raw, "deployment"), "account")
    for name, env in envs.items():
        approvers = _get(env, "approvers")
        if approvers is None:
            continue
        if _get(env, "require_approval") is not True:
            yield f"environments.{name}.approvers", "names approvers, but require_approval is not true"
        for index, arn in enumerate(approvers if isinstance(approvers, list) else []):
            yield from _outside_the_deployment_account(
                f"environments.{name}.approvers.{index}", arn, account, "approver"
            )


def _outside_the_deployment_account(field: str, arn: Any, account: Any, who: str) -> Iterator[tuple[str, str]]:
    found = re.match(r"^arn:[^:]+:iam::(\d{12}):", arn) if isinstance(arn, str) else None
    if found and isinstance(account, str) and found.group(1) != account:
        yield field, f"names account {found.group(1)}; the {who} must be a role in the deployment account {account}"


def _mapping(parent: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = parent.get(key)
    return value if isinstance(value, Mapping) else {}


def _get(mapping: Any, key: str) -> Any:
    return mapping.get(key) if isinstance(mapping, Mapping) else None
