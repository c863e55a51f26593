"""The CloudFormation execution policy every target account's deployments run under, rendered for one target.

The policy ships as `policies/cfn-execution.json` with placeholders; bootstrap creates it as IAM managed
policies (split to fit IAM's size limit) and `cdk bootstrap --cloudformation-execution-policies` hands them
to the CloudFormation role. Apps check their own templates against it with `lake_pipelines.policy_coverage`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from datalake_config import LakeConfig, lake_names
from datalake_config.aws import partition_of

# IAM counts a managed policy's characters without white space.
MANAGED_POLICY_MAX_CHARS = 6144
POLICY_COMMENT = "Comment"
POLICY_FILE = "policies/cfn-execution.json"
BOUNDARY_FILE = "policies/stage-role-boundary.json"


class ExecutionPolicyError(ValueError):
    """The shipped policy cannot be rendered: an unknown placeholder or an oversized statement."""


@dataclass(frozen=True)
class PolicyPart:
    name: str
    document: dict[str, Any]
    description: str = "CloudFormation execution policy for CDK deployments of the data lake (lakeops bootstrap)"
    source: str = POLICY_FILE


def render(config: LakeConfig, account: str, region: str, policy_file: str = POLICY_FILE) -> dict[str, Any]:
    """A shipped policy document for one target, placeholders filled and comments dropped."""
    text = resources.files("lake_pipelines").joinpath(policy_file).read_text(encoding="utf-8")
    for placeholder, value in {
        "{prefix}": config.prefix,
        # Glue database names allow no hyphens (naming.glue_database_name)
        "{prefix_underscored}": config.prefix.replace("-", "_"),
        "{account}": account,
        "{region}": region,
        "{partition}": partition_of(region),
        "{stage_role_boundary}": lake_names(config).stage_role_boundary,
    }.items():
        text = text.replace(placeholder, value)
    document: dict[str, Any] = json.loads(text)
    # IAM accepts no comments: the file explains its statements in `Comment` keys, dropped here.
    document.pop(POLICY_COMMENT, None)
    for statement in document["Statement"]:
        statement.pop(POLICY_COMMENT, None)
    leftover = re.findall(r"\{[a-z_]+\}", json.dumps(document))
    if leftover:
        raise ExecutionPolicyError(f"{policy_file}: unknown placeholders {sorted(set(leftover))}")
    return document


def stage_role_boundary(config: LakeConfig, account: str, region: str) -> PolicyPart:
    """The permissions boundary of every role the stages create in one target (`lake_pipelines.role_boundary`)."""
    document = render(config, account, region, BOUNDARY_FILE)
    if _size(document) > MANAGED_POLICY_MAX_CHARS:
        raise ExecutionPolicyError(f"{BOUNDARY_FILE} exceeds the size of one managed policy")
    return PolicyPart(
        lake_names(config).stage_role_boundary,
        document,
        "Permissions boundary of every role the data lake's stacks create (lakeops bootstrap)",
        BOUNDARY_FILE,
    )


def execution_policy_parts(config: LakeConfig, account: str, region: str) -> tuple[PolicyPart, ...]:
    """The shipped least-privilege policy, filled for one target, split to fit IAM's managed-policy size.

    It lets CloudFormation create or change a role only with the stage-role boundary attached
    (`stage_role_boundary`), so no role a commit defines can hold more than the boundary allows.
    """
    document = render(config, account, region)
    parts: list[list[dict[str, Any]]] = [[]]
    for statement in document["Statement"]:
        if _size({"Version": document["Version"], "Statement": [*parts[-1], statement]}) > MANAGED_POLICY_MAX_CHARS:
            if not parts[-1]:
                raise ExecutionPolicyError(f"policy statement {statement.get('Sid')} alone exceeds a managed policy")
            parts.append([])
        parts[-1].append(statement)
    lake = lake_names(config)
    return tuple(
        PolicyPart(lake.cloudformation_execution_policy_part(i), {"Version": document["Version"], "Statement": s})
        for i, s in enumerate(parts, start=1)
    )


def _size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")))
