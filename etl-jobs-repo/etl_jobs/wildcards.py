"""Acknowledge cdk-nag IAM5 wildcard findings one by one, each with the reason that wildcard is needed.

cdk-nag names a finding after the wildcard action or the flattened resource (`Resource::<Param>/prefix/*`)
and reports it on the role's generated policy; acknowledging the exact finding ids keeps any new,
unexplained wildcard failing synthesis.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam

from lake_pipelines.checks import acknowledge
from lake_pipelines.generated_grants import flatten, wildcard_findings

Explain = Callable[[list[str], list[str]], "str | None"]


def acknowledge_role_wildcards(role: iam.Role, explain: Explain) -> list[str]:
    """Acknowledge every IAM5 finding of `role`'s policies that `explain(actions, resources)` gives a reason for.

    Returns the findings left unexplained (they stay unacknowledged, so cdk-nag reports them).
    """
    stack = cdk.Stack.of(role)
    unexplained: list[str] = []
    for construct in role.node.find_all():
        if not isinstance(construct, iam.CfnPolicy):
            continue
        document: dict[str, Any] = stack.resolve(construct.policy_document)
        for statement in _as_list(document.get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            resources = [flatten(r) for r in _as_list(statement.get("Resource"))]
            findings = wildcard_findings(actions, resources)
            if not findings:
                continue
            reason = explain(actions, resources)
            if reason is None:
                unexplained += findings
                continue
            for finding in findings:
                acknowledge(construct, f"AwsSolutions-IAM5[{finding}]", reason)
    return unexplained


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
