"""Lint every IAM policy document of a stage, and the execution policy, with parliament.

parliament (duo-labs) checks statements against the IAM action reference: actions that do not exist,
actions scoped to resource types they do not support (silently never allowed), condition keys an action
does not take. Those findings are never acceptable here. Any other finding must be acknowledged in
`policies/lint-acknowledgements.json`, with the reason next to the policy it concerns.
"""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from datalake_config import LakeConfig
from datalake_config.aws import partition_of
from lake_pipelines.execution_policy import (
    pipeline_role_boundary,
    pipelines_execution_policy_parts,
    stage_role_boundary,
)
from lake_pipelines.policy_coverage import StackResolver, StackTemplate, Target, policy_statements

ACKNOWLEDGEMENTS_FILE = "policies/lint-acknowledgements.json"
# Findings no acknowledgement can excuse: the policy does not do what it says.
NEVER_ACCEPTED = frozenset(
    {
        "RESOURCE_MISMATCH",
        "UNKNOWN_ACTION",
        "UNKNOWN_PREFIX",
        "UNKNOWN_CONDITION_FOR_ACTION",
        "UNKNOWN_OPERATOR",
        "MISMATCHED_TYPE",
        "MALFORMED",
        "MALFORMED_JSON",
        "INVALID_ARN",
    }
)


@dataclass(frozen=True)
class LintFinding:
    where: str  # stack/logical id/path of the document, or the execution policy's name
    issue: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.issue} {self.detail}"


@cache
def _parliament() -> Any:
    """parliament 1.6.4, imported although setuptools (84) no longer ships `pkg_resources`.

    parliament's `__init__` uses only `pkg_resources.resource_filename` to find its two data files; a
    stand-in module is offered for that one import and removed again, so nothing else sees it.
    """
    if "pkg_resources" in sys.modules or importlib.util.find_spec("pkg_resources") is not None:
        return importlib.import_module("parliament")
    spec = importlib.util.find_spec("parliament")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("parliament is not installed")
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    shim = types.ModuleType("pkg_resources")
    shim.resource_filename = lambda package, name: str(package_dir / name)  # type: ignore[attr-defined]
    sys.modules["pkg_resources"] = shim
    try:
        return importlib.import_module("parliament")
    finally:
        del sys.modules["pkg_resources"]


def lint_document(document: Mapping[str, Any], where: str) -> list[LintFinding]:
    """parliament's findings for one policy document (its `Comment` keys removed, as IAM never sees them)."""
    parliament = _parliament()
    cleaned = {k: v for k, v in document.items() if k != "Comment"}
    cleaned["Statement"] = [
        {k: v for k, v in s.items() if k != "Comment"} for s in _listed(document.get("Statement", []))
    ]
    policy = parliament.analyze_policy_string(json.dumps(cleaned), include_community_auditors=False)
    return [LintFinding(where, f.issue, _detail(f)) for f in policy.findings]


def _detail(finding: Any) -> str:
    detail = finding.detail
    text = json.dumps(detail, sort_keys=True, default=str) if not isinstance(detail, str) else detail
    return text


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# Stands for an ARN only known at deploy time (a value read from an SSM parameter): any service, any type,
# so parliament neither reports a mismatch nor a `*` for it. Known ARNs are resolved and checked.
DEPLOY_TIME_ARN = "arn:aws:*:*:*:*"


def _resolved(value: Any, stack: StackResolver) -> Any:
    """A Resource value with the template's intrinsic functions resolved as far as the template allows."""
    if isinstance(value, list):
        return [_resolved(v, stack) for v in value]
    if isinstance(value, str):
        return value
    resolved = stack.resolve(value)
    if resolved is not None:
        return resolved
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        text = str(separator).join(stack.resolve(p) or "*" for p in parts)
        return text if text.count(":") >= 5 else DEPLOY_TIME_ARN
    return DEPLOY_TIME_ARN


def _with_resources_resolved(document: Mapping[str, Any], stack: StackResolver) -> dict[str, Any]:
    statements = []
    for statement in _listed(document.get("Statement", [])):
        statement = dict(statement)
        for key in ("Resource", "NotResource"):
            if key in statement:
                statement[key] = _resolved(statement[key], stack)
        statements.append(statement)
    return {**document, "Statement": statements}


def template_policies(
    stack: StackTemplate, config: LakeConfig | None = None, env_name: str | None = None
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every identity policy document in a template: AWS::IAM::Policy/ManagedPolicy and role inline policies.

    Resource policies (key policies, bucket and topic policies, trust policies) are not linted: parliament
    checks identity-policy semantics (a Principal makes it reject or mis-read the statement).
    """
    target = _target_of(config, env_name)
    resolver = StackResolver(stack, target)
    for logical_id, resource in stack.template.get("Resources", {}).items():
        props = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            yield f"{stack.name}/{logical_id}", _with_resources_resolved(props["PolicyDocument"], resolver)
        elif kind == "AWS::IAM::Role":
            for policy in props.get("Policies", []):
                where = f"{stack.name}/{logical_id}/{policy.get('PolicyName')}"
                yield where, _with_resources_resolved(policy["PolicyDocument"], resolver)


def _target_of(config: LakeConfig | None, env_name: str | None) -> Target:
    if config is None or env_name is None:
        # Account and Region only fill ARNs; any valid values lint the same.
        return Target("lake", "123456789012", "us-east-1", "aws")
    target = config.env(env_name)
    return Target(config.prefix, target.account, target.region, partition_of(target.region))


@dataclass(frozen=True)
class Acknowledgement:
    issue: str
    where: str  # a prefix of LintFinding.where; "*" for every document
    detail: str  # a substring of the finding's detail; "" for any
    reason: str


def acknowledgements() -> tuple[Acknowledgement, ...]:
    text = resources.files("lake_pipelines").joinpath(ACKNOWLEDGEMENTS_FILE).read_text(encoding="utf-8")
    return tuple(
        Acknowledgement(a["issue"], a["where"], a.get("detail", ""), a["reason"])
        for a in json.loads(text)["acknowledgements"]
    )


def _acknowledged(finding: LintFinding, acks: tuple[Acknowledgement, ...]) -> bool:
    return finding.issue not in NEVER_ACCEPTED and any(
        a.issue == finding.issue
        and (a.where == "*" or finding.where.startswith(a.where))
        and a.detail in finding.detail
        for a in acks
    )


def lint_findings(documents: list[tuple[str, Mapping[str, Any]]]) -> list[LintFinding]:
    """Every finding parliament has for these documents, acknowledged or not."""
    return [f for where, document in documents for f in lint_document(document, where)]


def lint_problems_of(documents: list[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """The findings that fail the build: the never-accepted kinds, and any other not acknowledged."""
    acks = acknowledgements()
    return sorted(str(f) for f in lint_findings(documents) if not _acknowledged(f, acks))


def lint_problems(
    stacks: list[StackTemplate], config: LakeConfig | None = None, env_name: str | None = None
) -> list[str]:
    """What the apps' tests call on their synthesized stage: [] when every policy document lints clean."""
    return lint_problems_of([doc for stack in stacks for doc in template_policies(stack, config, env_name)])


def execution_policy_lint_problems(config: LakeConfig, env_name: str) -> list[str]:
    """The same lint over the shipped execution policy and stage-role boundary, rendered for one environment."""
    document = {"Version": "2012-10-17", "Statement": policy_statements(config, env_name)}
    target = config.env(env_name)
    boundary = stage_role_boundary(config, target.account, target.region)
    return lint_problems_of([("execution policy", document), ("stage-role boundary", boundary.document)])


def pipelines_policy_lint_problems(config: LakeConfig) -> list[str]:
    """The same lint over the deployment account's execution policy and pipeline-role boundary."""
    statements = [s for part in pipelines_execution_policy_parts(config) for s in part.document["Statement"]]
    document = {"Version": "2012-10-17", "Statement": statements}
    boundary = pipeline_role_boundary(config)
    return lint_problems_of([("pipelines execution policy", document), ("pipeline-role boundary", boundary.document)])
