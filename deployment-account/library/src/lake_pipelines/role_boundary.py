"""The permissions boundary every role the stages create carries: applied at synth, proven in each app's tests.

The execution policy lets CloudFormation create roles named after the lake and write their policies, so
without a boundary a commit could write `*:*` into a role's policy and use it. Every role of a stage
therefore carries the managed policy `<prefix>-stage-role-boundary` (`policies/stage-role-boundary.json`,
created in each target by `lakeops bootstrap`), and the execution policy allows CreateRole, PutRolePolicy,
AttachRolePolicy and PutRolePermissionsBoundary only with that boundary (`iam:PermissionsBoundary`), never
DeleteRolePermissionsBoundary nor a change to the boundary policy (`policy_coverage` checks both).

The boundary names the exact actions lake roles use, on every resource: each role's own policy scopes
resources (cdk-nag and the apps' tests review those); the boundary caps what any role could ever do. No IAM,
STS or Organizations action is in it, so no bounded role can make or assume a role. `boundary_problems`
proves, from the synthesized templates, that every role carries the boundary and that the boundary allows
every action the stage grants its roles, by identity policies and by resource policies naming them (IAM
limits the latter by the boundary too when they name the role's ARN: IAM User Guide, "Policy evaluation
logic", resource-based policies) — so a boundary too tight to run a job fails the tests, not a deployment.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, cast

import aws_cdk as cdk
import jsii
from aws_cdk import aws_iam as iam

from datalake_config import LakeConfig, lake_names
from datalake_config.aws import partition_of
from lake_pipelines import aws_data
from lake_pipelines.execution_policy import (
    BOUNDARY_FILE,
    PolicyPart,
    bootstrap_role_name,
    pipeline_role_boundary,
    stage_role_boundary,
)
from lake_pipelines.iam_eval import Request, arn_matches, evaluate
from lake_pipelines.policy_coverage import GENERATED, StackResolver, StackTemplate, Target

ROLE_TYPE = "AWS::IAM::Role"
# Identity policies that are resources of their own; their statements apply to the roles they name.
POLICY_TYPES = ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy")
# No bounded role may hold an action of these services: they would let it make, change or become a role.
FORBIDDEN_SERVICES = ("iam", "sts", "organizations", "account")
# What the AWS managed policies the stages attach allow, from the AWS Managed Policy Reference (the
# policy's current version). A role attaching any other managed policy fails `boundary_problems`, and the
# execution policy allows attaching only these (`AttachOnlyTheManagedPoliciesTheStacksUse`).
AWS_MANAGED_POLICIES: dict[str, list[dict[str, Any]]] = {
    "service-role/AWSLambdaBasicExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": "*",
        }
    ],
}


# A bounded pipeline role may use STS for these only: assume the deployment and lookup roles CDK bootstrap
# creates, the verify roles (each boundary statement names which), and log in to CodeArtifact.
PIPELINE_STS_ACTIONS = ("sts:AssumeRole", "sts:GetServiceBearerToken")
# The tag CDK's bootstrap template gives its roles (deploy, file-publishing, image-publishing, lookup).
BOOTSTRAP_ROLE_TAG = "iam:ResourceTag/aws-cdk:bootstrap-role"


def boundary_arn(config: LakeConfig) -> str:
    """The boundary's ARN as templates write it: each stack fills in its own partition and account."""
    return _policy_arn(lake_names(config).stage_role_boundary)


def _policy_arn(name: str) -> str:
    return f"arn:${{AWS::Partition}}:iam::${{AWS::AccountId}}:policy/{name}"


@jsii.implements(iam.IManagedPolicy)
class _Boundary:
    """The boundary policy by ARN, without a construct: a stage has no stack to import a policy into, and each
    stack that writes the ARN fills in its own partition and account (`Fn::Sub`). CDK's boundary aspect reads
    only `managedPolicyArn`; the construct members of IManagedPolicy (`node`, `env`, `managedPolicyRef`) are
    not implemented, which `_boundary` states to the type checker."""

    def __init__(self, arn: str) -> None:
        self._arn = cdk.Fn.sub(arn)

    @property
    def managed_policy_arn(self) -> str:
        return self._arn


def _boundary(arn: str) -> iam.IManagedPolicy:
    return cast(iam.IManagedPolicy, _Boundary(arn))


def bound_stage_roles(stage: cdk.Stage, config: LakeConfig) -> None:
    """Give every role of `stage` the lake's stage-role boundary (call it from the stage's constructor).

    CDK's own aspect (`iam.PermissionsBoundary`) sets it on every AWS::IAM::Role, the L2 roles and the L1 ones
    CDK's providers create. It runs inside the CDK process: an aspect written in Python is called back across
    the jsii bridge for every construct of the stage, which cost seconds per synth."""
    iam.PermissionsBoundary.of(stage).apply(_boundary(boundary_arn(config)))


def bound_pipeline_roles(stack: cdk.Stack, config: LakeConfig) -> None:
    """Give every role of a pipeline stack the pipeline-role boundary. Aspects stop at a Stage, so the stages the
    pipeline deploys keep their own boundary."""
    iam.PermissionsBoundary.of(stack).apply(_boundary(_policy_arn(lake_names(config).pipeline_role_boundary)))


def boundary_problems(stacks: list[StackTemplate], config: LakeConfig, env_name: str) -> list[str]:
    """Every way the stage's roles and the shipped boundary disagree; [] when every role fits inside it."""
    target_env = config.env(env_name)
    partition = partition_of(target_env.region)
    boundary = stage_role_boundary(config, target_env.account, target_env.region)
    target = Target(config.prefix, target_env.account, target_env.region, partition)
    return _problems(stacks, boundary, target, allowed_sts=())


def pipeline_boundary_problems(stacks: list[StackTemplate], config: LakeConfig) -> list[str]:
    """Every way the pipeline stacks' roles and the pipeline-role boundary disagree; [] when all fit inside it."""
    deployment = config.deployment
    target = Target(config.prefix, deployment.account, deployment.region, partition_of(deployment.region))
    return _problems(stacks, pipeline_role_boundary(config), target, allowed_sts=PIPELINE_STS_ACTIONS)


def _problems(
    stacks: list[StackTemplate], boundary: PolicyPart, target: Target, allowed_sts: tuple[str, ...]
) -> list[str]:
    partition = target.partition
    expected = f"arn:{partition}:iam::{target.account}:policy/{boundary.name}"
    statements = boundary.document["Statement"]
    problems = _boundary_shape_problems(statements, boundary.source, allowed_sts)
    for stack in stacks:
        resolver = StackResolver(stack, target)
        roles = {lid for lid, r in resolver.resources.items() if r["Type"] == ROLE_TYPE}
        for logical_id in sorted(roles):
            actual = resolver.resolve(resolver.properties(logical_id).get("PermissionsBoundary"))
            if actual != expected:
                problems.append(
                    f"{stack.name}/{logical_id}: the role's permissions boundary is {actual}, not {expected}"
                )
            for arn_value in resolver.properties(logical_id).get("ManagedPolicyArns", []):
                arn = resolver.resolve(arn_value) or "<unresolved>"
                if arn.removeprefix(f"arn:{partition}:iam::aws:policy/") not in AWS_MANAGED_POLICIES:
                    problems.append(
                        f"{stack.name}/{logical_id}: attaches {arn}, whose permissions the boundary check does not "
                        "know (lake_pipelines.role_boundary.AWS_MANAGED_POLICIES)"
                    )
        for origin, statement in _grants(resolver, roles, partition):
            problems += _grant_problems(statements, resolver, f"{stack.name}/{origin}", statement, boundary.source)
    return sorted(set(problems))


def _grants(resolver: StackResolver, roles: set[str], partition: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, Allow statement) for every permission the stage grants a role."""
    managed_prefix = f"arn:{partition}:iam::aws:policy/"
    for logical_id, resource in resolver.resources.items():
        props = resource.get("Properties", {})
        if resource["Type"] == ROLE_TYPE:
            for policy in props.get("Policies", []):
                yield from ((logical_id, s) for s in _allows(policy.get("PolicyDocument", {})))
            for arn_value in props.get("ManagedPolicyArns", []):
                arn = resolver.resolve(arn_value) or "<unresolved>"
                name = arn.removeprefix(managed_prefix)
                known = AWS_MANAGED_POLICIES.get(name, []) if arn.startswith(managed_prefix) else []
                yield from ((f"{logical_id} ({name})", s) for s in known)
        elif resource["Type"] in POLICY_TYPES:
            yield from ((logical_id, s) for s in _allows(props.get("PolicyDocument", {})))
        else:  # a resource policy (bucket, key, topic, ...) that names one of the stage's roles
            for document in _documents(props):
                for statement in _allows(document):
                    if _names_a_role(statement.get("Principal"), roles):
                        yield logical_id, statement


def _grant_problems(
    boundary: list[dict[str, Any]], resolver: StackResolver, origin: str, statement: dict[str, Any], source: str
) -> list[str]:
    if "NotAction" in statement:
        return [f"{origin}: grants {statement['NotAction']!r}, which no boundary check can bound (NotAction)"]
    problems = []
    named = _bootstrap_roles(statement, resolver) or [
        resolver.resolve(r) for r in _listed(statement.get("Resource", "*"))
    ]
    for pattern in _listed(statement.get("Action", [])):
        actions = aws_data.actions_matching(pattern)
        if not actions:
            problems.append(f"{origin}: grants {pattern}, which is not in the IAM action reference")
        for action in actions:
            # `*` or a value known only at deploy time: the boundary must allow the action on the lake's own.
            resources = [
                r
                for n in named
                for r in ([_narrowed(n, resolver)] if n not in (None, "*") else _lake_resources(action, resolver))
            ]
            for resource in resources:
                if not _acts_on(action, resource):
                    continue  # a wildcard grants, on a named resource, only the actions that act on its type
                if not evaluate(boundary, Request(action, resource)).allowed:
                    problems.append(
                        f"{origin}: grants {action} on {resource}, which the role boundary does not allow "
                        f"(add it to lake_pipelines/{source} if the lake needs it)"
                    )
    return problems


def _narrowed(resource: str, resolver: StackResolver) -> str:
    """A grant on a pattern (`log-group:/aws/codebuild/*`) is, like a grant of `*`, what the boundary narrows
    to the lake's resources: a lake-named resource stands in for each wildcard of the ARN's resource part."""
    parts = resource.split(":", 5)
    if len(parts) < 6 or "*" not in parts[5]:
        return resource
    stand_in = f"{resolver.target.prefix}-{GENERATED}".lower()
    return ":".join([*parts[:5], parts[5].replace("*", stand_in)])


def _bootstrap_roles(statement: dict[str, Any], resolver: StackResolver) -> list[str | None]:
    """The roles a statement names by CDK's bootstrap-role tag (the self-mutation step's `role/*` grant).

    IAM allows such a grant only on roles carrying `aws-cdk:bootstrap-role` with one of the listed values:
    those are the bootstrap stack's roles `cdk-<qualifier>-<value>-role-<account>-<region>`, which stand in.
    """
    kinds: list[str] = []
    for values in statement.get("Condition", {}).values():
        if isinstance(values, dict) and BOOTSTRAP_ROLE_TAG in values:
            kinds += [str(k) for k in _listed(values[BOOTSTRAP_ROLE_TAG])]
    if not kinds:
        return []
    t = resolver.target
    accounts = {
        m.group(1)
        for r in _listed(statement.get("Resource", []))
        if (m := re.match(r"^arn:[^:]+:iam::(\d{12}):role/", resolver.resolve(r) or ""))
    }
    return [
        f"arn:{t.partition}:iam::{account}:role/{bootstrap_role_name(kind, account, t.region)}"
        for account in sorted(accounts)
        for kind in kinds
    ]


def _lake_resources(action: str, resolver: StackResolver) -> list[str]:
    """The resources a grant of `*`, or of a deploy-time parameter (the SSM contract), stands for here.

    A grant of `*` is what the boundary narrows to the lake's resources; a parameter's value is a resource of
    the lake in this account and region, named after the prefix the way CloudFormation names what the stacks
    leave unnamed (`<stack>-<logical id>-<suffix>`, every stack named `<prefix>-...`). So the check stands one
    in, named after the prefix, for each resource type the action acts on; an action with none is checked
    against `*`.
    """
    t = resolver.target
    patterns = [rt.arn for rt in aws_data.iam_action(action).resource_types if rt.arn]
    filled = []
    for pattern in patterns:
        values = [f"{t.prefix}-{GENERATED}".lower() for _ in aws_data.arn_variables(pattern)]
        filled.append(aws_data.fill_arn(pattern, t.partition, t.region, t.account, values))
    return filled or ["*"]


def _acts_on(action: str, resource: str) -> bool:
    """Whether a statement naming `resource` can grant `action` at all (IAM reference resource types)."""
    if resource == "*":
        return True
    patterns = [t.arn for t in aws_data.iam_action(action).resource_types if t.arn]
    return any(arn_matches(re.sub(r"\$\{[^}]+\}", "*", p), resource) for p in patterns)


def _boundary_shape_problems(
    statements: list[dict[str, Any]], source: str = BOUNDARY_FILE, allowed_sts: tuple[str, ...] = ()
) -> list[str]:
    """The boundary lists exact actions, none of them able to make or change a role, nor to assume one beyond
    `allowed_sts` (which the boundary must then scope to named roles, never `*`)."""
    problems = []
    for statement in statements:
        sid = statement.get("Sid", "?")
        if statement.get("Effect") != "Allow" or "NotAction" in statement or "NotResource" in statement:
            problems.append(f"{source} {sid}: only Allow statements with Action and Resource")
        for action in _listed(statement.get("Action", [])):
            if "*" in action or "?" in action:
                problems.append(f"{source} {sid}: {action} is a wildcard; name each action")
            elif not aws_data.is_known_action(action):
                problems.append(f"{source} {sid}: {action} is not in the IAM action reference")
            if action in allowed_sts:
                if action == "sts:AssumeRole" and "*" in _listed(statement.get("Resource")):
                    problems.append(f"{source} {sid}: sts:AssumeRole on `*`; name the roles")
            elif action.split(":")[0].lower() in FORBIDDEN_SERVICES:
                problems.append(f"{source} {sid}: {action} would let a bounded role act on roles")
    return problems


def _allows(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return [s for s in _listed(statements) if isinstance(s, dict) and s.get("Effect") == "Allow"]


def _documents(value: Any) -> Iterator[dict[str, Any]]:
    """Every policy document (a mapping with a Statement list) anywhere in a resource's properties."""
    if isinstance(value, dict):
        if isinstance(value.get("Statement"), list):
            yield value
        else:
            for inner in value.values():
                yield from _documents(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _documents(inner)


def _names_a_role(principal: Any, roles: set[str]) -> bool:
    """Whether a statement's Principal refers (Ref, GetAtt, Sub) to one of the template's roles."""
    aws = principal.get("AWS") if isinstance(principal, dict) else None
    return any(_refers_to(value, roles) for value in _listed(aws or []))


def _refers_to(value: Any, roles: set[str]) -> bool:
    if isinstance(value, dict):
        if value.get("Ref") in roles:
            return True
        attribute = value.get("Fn::GetAtt")
        if isinstance(attribute, list) and attribute and attribute[0] in roles:
            return True
        return any(_refers_to(inner, roles) for inner in value.values())
    if isinstance(value, list):
        return any(_refers_to(inner, roles) for inner in value)
    return False


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]
