"""The CloudFormation execution policies the lake's deployments run under, and the boundaries of the roles they
create.

- Every target account: `policies/cfn-execution.json` with `policies/stage-role-boundary.json`, rendered for
  the target; apps check their own templates against them (`policy_coverage`, `role_boundary`).
- The deployment account: `policies/pipelines-cfn-execution.json` with `policies/pipeline-role-boundary.json`,
  for the deployment-account stack and the pipeline stacks (tests in deployment-account).

Bootstrap creates each as IAM managed policies (split to fit IAM's size limit) and
`cdk bootstrap --cloudformation-execution-policies` hands them to the account's CloudFormation role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

from datalake_config import LakeConfig, lake_names
from datalake_config.aws import partition_of
from datalake_config.model import CodeCommitSource, ConnectionSource
from datalake_config.naming import REPOSITORIES

# IAM counts a managed policy's characters without white space.
MANAGED_POLICY_MAX_CHARS = 6144
POLICY_COMMENT = "Comment"
POLICY_FILE = "policies/cfn-execution.json"
BOUNDARY_FILE = "policies/stage-role-boundary.json"
PIPELINES_POLICY_FILE = "policies/pipelines-cfn-execution.json"
PIPELINE_BOUNDARY_FILE = "policies/pipeline-role-boundary.json"
# CDK's default bootstrap qualifier (aws_cdk.DefaultStackSynthesizer.DEFAULT_QUALIFIER; a test keeps them
# equal): written out so that `lakeops`, which renders these policies, starts without loading aws_cdk.
CDK_QUALIFIER = "hnb659fds"


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
    # A list placeholder stands for a whole JSON value; a statement whose Resource list comes out empty is dropped.
    text = text.replace('"{codecommit_repositories}"', json.dumps(codecommit_repository_arns(config)))
    text = text.replace('"{assumable_roles}"', json.dumps(assumable_role_patterns(config)))
    text = text.replace('"{connection_arns}"', json.dumps(connection_arns(config)))
    for placeholder, value in {
        "{prefix}": config.prefix,
        # Glue database names allow no hyphens (naming.glue_database_name)
        "{prefix_underscored}": config.prefix.replace("-", "_"),
        "{account}": account,
        "{region}": region,
        "{partition}": partition_of(region),
        "{stage_role_boundary}": lake_names(config).stage_role_boundary,
        "{pipeline_role_boundary}": lake_names(config).pipeline_role_boundary,
    }.items():
        text = text.replace(placeholder, value)
    document: dict[str, Any] = json.loads(text)
    # IAM accepts no comments: the file explains its statements in `Comment` keys, dropped here.
    document.pop(POLICY_COMMENT, None)
    for statement in document["Statement"]:
        statement.pop(POLICY_COMMENT, None)
    document["Statement"] = [s for s in document["Statement"] if s.get("Resource") != []]
    leftover = re.findall(r"\{[a-z_]+\}", json.dumps(document))
    if leftover:
        raise ExecutionPolicyError(f"{policy_file}: unknown placeholders {sorted(set(leftover))}")
    return document


def codecommit_repository_arns(config: LakeConfig) -> list[str]:
    """The CodeCommit repositories the config names, in the deployment account and region."""
    deployment = config.deployment
    partition = partition_of(deployment.region)
    return [
        f"arn:{partition}:codecommit:{deployment.region}:{deployment.account}:{source.repository_name}"
        for kind in REPOSITORIES
        if isinstance(source := config.repository(kind).source, CodeCommitSource)
    ]


def connection_arns(config: LakeConfig) -> list[str]:
    """The CodeConnections connections the config's repositories use, each under both service prefixes.

    The service was renamed from CodeStar Connections; IAM matches an action only to an ARN of its own prefix,
    and CloudFormation's handler and CDK Pipelines still call under the old one, so each connection is named
    both ways (docs.aws.amazon.com/dtconsole/latest/userguide/rename.html).
    """
    arns = set()
    for kind in REPOSITORIES:
        source = config.repository(kind).source
        if isinstance(source, ConnectionSource):
            parts = source.connection_arn.split(":")
            arns |= {
                ":".join([*parts[:2], prefix, *parts[3:]]) for prefix in ("codestar-connections", "codeconnections")
            }
    return sorted(arns)


def bootstrap_role_name(kind: str, account: str, region: str) -> str:
    """A role of CDK's bootstrap stack (`deploy`, `lookup`, `file-publishing`, ...), default qualifier."""
    return f"cdk-{CDK_QUALIFIER}-{kind}-role-{account}-{region}"


def assumable_role_patterns(config: LakeConfig) -> list[str]:
    """The roles a pipeline role may assume: CDK's bootstrap roles and the lake's own, in the lake's accounts."""
    partition = partition_of(config.deployment.region)
    accounts = sorted({config.deployment.account, *(config.env(e).account for e in config.environment_names)})
    return [
        pattern
        for account in accounts
        for pattern in (
            f"arn:{partition}:iam::{account}:role/cdk-{CDK_QUALIFIER}-*",
            f"arn:{partition}:iam::{account}:role/{config.prefix}-*",
        )
    ]


def stage_role_boundary(config: LakeConfig, account: str, region: str) -> PolicyPart:
    """The permissions boundary of every role the stages create in one target (`lake_pipelines.role_boundary`)."""
    return _boundary(
        render(config, account, region, BOUNDARY_FILE),
        lake_names(config).stage_role_boundary,
        "Permissions boundary of every role the data lake's stacks create (lakeops bootstrap)",
        BOUNDARY_FILE,
    )


def pipeline_role_boundary(config: LakeConfig) -> PolicyPart:
    """The permissions boundary of every role the pipeline stacks create in the deployment account."""
    deployment = config.deployment
    return _boundary(
        render(config, deployment.account, deployment.region, PIPELINE_BOUNDARY_FILE),
        lake_names(config).pipeline_role_boundary,
        "Permissions boundary of every role the data lake's pipeline stacks create (lakeops bootstrap)",
        PIPELINE_BOUNDARY_FILE,
    )


def _boundary(document: dict[str, Any], name: str, description: str, source: str) -> PolicyPart:
    if _size(document) > MANAGED_POLICY_MAX_CHARS:
        raise ExecutionPolicyError(f"{source} exceeds the size of one managed policy")
    return PolicyPart(name, document, description, source)


def execution_policy_parts(config: LakeConfig, account: str, region: str) -> tuple[PolicyPart, ...]:
    """The shipped least-privilege policy, filled for one target, split to fit IAM's managed-policy size.

    It lets CloudFormation create or change a role only with the stage-role boundary attached
    (`stage_role_boundary`), so no role a commit defines can hold more than the boundary allows.
    """
    lake = lake_names(config)
    return _split(render(config, account, region), lake.cloudformation_execution_policy_part, POLICY_FILE)


def pipelines_execution_policy_parts(config: LakeConfig) -> tuple[PolicyPart, ...]:
    """The deployment account's least-privilege policy for the deployment-account and pipeline stacks.

    Rendered once for the account: the pipelines live in the deployment region and their cross-region support
    stacks in the target regions, so its ARNs name every region of the account (`*`) and scope by name.
    It lets CloudFormation create or change a role only with the pipeline-role boundary attached.
    """
    deployment = config.deployment
    document = render(config, deployment.account, deployment.region, PIPELINES_POLICY_FILE)
    parts = _split(document, lake_names(config).pipelines_execution_policy_part, PIPELINES_POLICY_FILE)
    description = "CloudFormation execution policy for the data lake's pipeline stacks (lakeops bootstrap)"
    return tuple(PolicyPart(p.name, p.document, description, PIPELINES_POLICY_FILE) for p in parts)


def _split(document: dict[str, Any], name: Callable[[int], str], source: str) -> tuple[PolicyPart, ...]:
    parts: list[list[dict[str, Any]]] = [[]]
    for statement in document["Statement"]:
        if _size({"Version": document["Version"], "Statement": [*parts[-1], statement]}) > MANAGED_POLICY_MAX_CHARS:
            if not parts[-1]:
                raise ExecutionPolicyError(f"{source}: statement {statement.get('Sid')} alone exceeds a managed policy")
            parts.append([])
        parts[-1].append(statement)
    return tuple(
        PolicyPart(name(i), {"Version": document["Version"], "Statement": s}, source=source)
        for i, s in enumerate(parts, start=1)
    )


def _size(document: Mapping[str, Any]) -> int:
    return len(json.dumps(document, separators=(",", ":")))
