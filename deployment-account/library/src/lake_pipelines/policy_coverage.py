"""Does the shipped execution policy allow what CloudFormation will call for a stage's templates?

Each app's tests call `coverage_problems` on its own synthesized stage. Nothing here is our own list of
actions: for every resource in every template, the permissions CloudFormation's handlers (create, read,
update, delete, list) use come from the resource provider schemas cfn-lint ships, the resource types each
action acts on and its condition keys from the IAM action reference (`lake_pipelines.aws_data`). Every
permission is evaluated (`lake_pipelines.iam_eval`) against the rendered policy with the ARN the handler acts
on — built from the template's names, or CloudFormation's generated `<stack>-<logical id>-<suffix>` names —
and with the request context CloudFormation presents: the resource's tags, the stack tags CloudFormation
propagates, the service a role is passed to, the managed policies attached. A condition key the check cannot
know counts as not allowing. Permissions a handler lists only for a property the stages never set are
excluded in `policies/handler-exclusions.json`, each with the property and the reason; setting that property
makes the exclusion a problem.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any

import aws_cdk as cdk
import aws_cdk.cx_api as cxapi

from datalake_config import LakeConfig, lake_names
from datalake_config.aws import partition_of
from lake_pipelines import aws_data
from lake_pipelines.execution_policy import execution_policy_parts, pipelines_execution_policy_parts
from lake_pipelines.iam_eval import Request, arn_matches, evaluate

EXCLUSIONS_FILE = "policies/handler-exclusions.json"
SKIPPED_TYPES = ("AWS::CDK::Metadata",)
# CloudFormation sends a custom resource's events to its handler function (the ServiceToken).
CUSTOM_RESOURCE_ACTION = "lambda:InvokeFunction"
GENERATED = "GENERATED"  # stands for the random suffix or ID CloudFormation or the service chooses

# The service each resource type hands its role to (iam:PassedToService of CloudFormation's iam:PassRole).
PASSED_TO_SERVICE = {
    "AWS::Glue::Job": "glue.amazonaws.com",
    "AWS::Lambda::Function": "lambda.amazonaws.com",
    "AWS::StepFunctions::StateMachine": "states.amazonaws.com",
    "AWS::Events::Rule": "events.amazonaws.com",
    "AWS::EC2::FlowLog": "vpc-flow-logs.amazonaws.com",
    "AWS::CodeBuild::Project": "codebuild.amazonaws.com",
    "AWS::CodePipeline::Pipeline": "codepipeline.amazonaws.com",
}
# ec2:CreateAction of the ec2:CreateTags call that tags a resource while it is created.
EC2_CREATE_ACTION = {
    "AWS::EC2::VPC": "CreateVpc",
    "AWS::EC2::Subnet": "CreateSubnet",
    "AWS::EC2::RouteTable": "CreateRouteTable",
    "AWS::EC2::SecurityGroup": "CreateSecurityGroup",
    "AWS::EC2::VPCEndpoint": "CreateVpcEndpoint",
    "AWS::EC2::FlowLog": "CreateFlowLogs",
}
# The condition keys this check knows the value (or absence) of; any other key in the policy is undecidable.
_MODELED_KEYS = (
    "aws:requestedregion",
    "aws:tagkeys",
    "iam:passedtoservice",
    "codestar-connections:passedtoservice",
    "iam:policyarn",
    "iam:permissionsboundary",
    "ec2:createaction",
)
_MODELED_PREFIXES = ("aws:requesttag/", "aws:resourcetag/", "ec2:resourcetag/")


@dataclass(frozen=True)
class StackTemplate:
    name: str
    template: dict[str, Any]
    stack_tags: dict[str, str]  # CloudFormation propagates these to every resource that takes tags
    region: str | None = None  # where the stack deploys, when not the target's region (a cross-region support stack)

    def resources(self, *types: str) -> list[dict[str, Any]]:
        return [r for r in self.template.get("Resources", {}).values() if not types or r["Type"] in types]


def stage_templates(stage: cdk.Stage) -> list[StackTemplate]:
    """Every stack of a synthesized stage, with the tags CloudFormation will propagate."""
    return assembly_templates(stage.synth().stacks)


def assembly_templates(stacks: Iterable[cxapi.CloudFormationStackArtifact]) -> list[StackTemplate]:
    """Synthesized stacks with the tags CloudFormation will propagate and the region each deploys to."""
    return [StackTemplate(a.stack_name, a.template, dict(a.tags), a.environment.region) for a in stacks]


def policy_statements(config: LakeConfig, env_name: str) -> list[dict[str, Any]]:
    target = config.env(env_name)
    parts = execution_policy_parts(config, target.account, target.region)
    return [s for part in parts for s in part.document["Statement"]]


@dataclass(frozen=True)
class Exclusion:
    resource_type: str
    permission: str
    property: str | None  # dotted path under Properties that would need it; None: no property ever does
    reason: str


def exclusions() -> tuple[Exclusion, ...]:
    text = resources.files("lake_pipelines").joinpath(EXCLUSIONS_FILE).read_text(encoding="utf-8")
    return tuple(
        Exclusion(e["resource_type"], e["permission"], e.get("property"), e["reason"])
        for e in json.loads(text)["exclusions"]
    )


@dataclass
class CoverageReport:
    """What the oracle checked: every (resource type, handler permission) pair and its verdict."""

    resource_types: set[str] = field(default_factory=set)
    verdicts: dict[tuple[str, str], str] = field(default_factory=dict)  # allowed / excluded / missing
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        values = list(self.verdicts.values())
        return {
            "resource types": len(self.resource_types),
            "handler permissions": len(values),
            **{v: values.count(v) for v in ("allowed", "excluded", "missing")},
        }


def coverage_problems(stacks: list[StackTemplate], config: LakeConfig, env_name: str) -> list[str]:
    """Every way the stage's templates and the execution policy disagree; [] when the policy covers them."""
    return coverage_report(stacks, config, env_name).problems


def coverage_report(stacks: list[StackTemplate], config: LakeConfig, env_name: str) -> CoverageReport:
    target_env = config.env(env_name)
    target = Target(config.prefix, target_env.account, target_env.region, partition_of(target_env.region))
    return policy_report(stacks, policy_statements(config, env_name), target, lake_names(config).stage_role_boundary)


def pipelines_coverage_report(stacks: list[StackTemplate], config: LakeConfig) -> CoverageReport:
    """The deployment-account stack and the pipeline stacks against `pipelines_execution_policy_parts`."""
    deployment = config.deployment
    target = Target(config.prefix, deployment.account, deployment.region, partition_of(deployment.region))
    policy = [s for part in pipelines_execution_policy_parts(config) for s in part.document["Statement"]]
    return policy_report(stacks, policy, target, lake_names(config).pipeline_role_boundary)


def policy_report(
    stacks: list[StackTemplate], policy: list[dict[str, Any]], target: Target, boundary_name: str
) -> CoverageReport:
    """What CloudFormation will call for `stacks` in `target`, evaluated against `policy`."""
    report = CoverageReport()
    excluded = {(e.resource_type, e.permission): e for e in exclusions()}
    failures: dict[tuple[str, str], str] = {}
    for stack in stacks:
        resolver = StackResolver(stack, target)
        for logical_id, resource in stack.template.get("Resources", {}).items():
            kind = resource["Type"]
            if kind in SKIPPED_TYPES:
                continue
            report.resource_types.add(kind)
            for handler, permission, requests in resolver.requests(logical_id, excluded):
                pair = (kind, permission)
                if isinstance(requests, _Excluded):
                    report.verdicts.setdefault(pair, "excluded")
                    continue
                report.verdicts.setdefault(pair, "allowed")
                for request in requests if isinstance(requests, list) else []:
                    outcome = evaluate(policy, request)
                    if not outcome.allowed and pair not in failures:
                        undecided = f"; undecidable: {', '.join(outcome.undecided)}" if outcome.undecided else ""
                        failures[pair] = (
                            f"the execution policy does not allow {request.action} on {request.resource} "
                            f"({kind} {handler} handler, {stack.name}/{logical_id}{undecided})"
                        )
                if isinstance(requests, str) and pair not in failures:
                    failures[pair] = f"{requests} ({kind} {handler} handler, {stack.name}/{logical_id})"
            report.problems += resolver.stale_exclusions(logical_id, excluded)
    for pair in failures:
        report.verdicts[pair] = "missing"
    report.problems = sorted(set(report.problems)) + [failures[p] for p in sorted(failures)]
    report.problems += _policy_shape_problems(policy, target)
    report.problems += boundary_guard_problems(policy, target, boundary_name)
    return report


# --- the target and one stack's resources ------------------------------------------------------------
@dataclass(frozen=True)
class Target:
    prefix: str
    account: str
    region: str
    partition: str


@dataclass(frozen=True)
class _Arn:
    service: str
    resource_type: str
    arn: str
    tags: Mapping[str, str]
    own: bool  # the resource the handler manages (not a resource it refers to)
    logical_id: str | None = None  # the template resource it is, when it is one


class _Excluded:
    pass


_EXCLUDED = _Excluded()
_Requests = list[Request] | str | _Excluded


def _name(property_name: str, *, lower: bool = False) -> Callable[[StackResolver, str], list[str | None]]:
    def physical_name(stack: StackResolver, logical_id: str) -> list[str | None]:
        return [stack.physical_name(logical_id, property_name, lower=lower)]

    return physical_name


def _generated_id(stack: StackResolver, logical_id: str) -> list[str | None]:
    return [f"{GENERATED}-{logical_id}".lower()]


def _name_with_path(property_name: str) -> Callable[[StackResolver, str], list[str | None]]:
    """An IAM role's or managed policy's name as its ARN carries it: after its path."""

    def name_with_path(stack: StackResolver, logical_id: str) -> list[str | None]:
        name = stack.physical_name(logical_id, property_name)
        path = stack.resolve(stack.properties(logical_id).get("Path", "/"))
        if name is None or path is None:
            return [None]
        return [f"{path.strip('/')}/{name}" if path.strip("/") else name]

    return name_with_path


def _glue_database(stack: StackResolver, logical_id: str) -> list[str | None]:
    return [stack.resolve(stack.properties(logical_id).get("DatabaseInput", {}).get("Name"))]


def _glue_table(stack: StackResolver, logical_id: str) -> list[str | None]:
    props = stack.properties(logical_id)
    return [stack.resolve(props.get("DatabaseName")), stack.resolve(props.get("TableInput", {}).get("Name"))]


def _parameter(stack: StackResolver, logical_id: str) -> list[str | None]:
    name = stack.physical_name(logical_id, "Name")
    return [name.lstrip("/") if name else None]


def _domain_and(property_name: str) -> Callable[[StackResolver, str], list[str | None]]:
    """A CodeArtifact repository or package group: its domain's name, then its own."""

    def values(stack: StackResolver, logical_id: str) -> list[str | None]:
        props = stack.properties(logical_id)
        return [stack.resolve(props.get("DomainName")), stack.resolve(props.get(property_name))]

    return values


def _secret(stack: StackResolver, logical_id: str) -> list[str | None]:
    # Secrets Manager appends `-` and six random characters to the name in the secret's ARN.
    name = stack.physical_name(logical_id, "Name")
    return [f"{name}-{GENERATED}" if name else None]


def _alias(stack: StackResolver, logical_id: str) -> list[str | None]:
    name = stack.physical_name(logical_id, "AliasName")
    return [name.removeprefix("alias/") if name else None]


# CloudFormation type → the IAM resource type of the resource it manages, and that ARN's variables.
# A name the template leaves out is CloudFormation's generated `<stack>-<logical id>-<suffix>`; an ID the
# service assigns (a key ID, a VPC ID) is GENERATED.
OWN_RESOURCE: dict[str, tuple[str, str, Callable[[StackResolver, str], list[str | None]]]] = {
    "AWS::KMS::Key": ("kms", "key", _generated_id),
    "AWS::S3::Bucket": ("s3", "bucket", _name("BucketName", lower=True)),
    "AWS::IAM::Role": ("iam", "role", _name_with_path("RoleName")),
    "AWS::Lambda::Function": ("lambda", "function", _name("FunctionName")),
    "AWS::SNS::Topic": ("sns", "topic", _name("TopicName")),
    "AWS::Logs::LogGroup": ("logs", "log-group", _name("LogGroupName")),
    "AWS::Events::Rule": ("events", "rule-on-default-event-bus", _name("Name")),
    "AWS::StepFunctions::StateMachine": ("states", "statemachine", _name("StateMachineName")),
    "AWS::CloudWatch::Alarm": ("cloudwatch", "alarm", _name("AlarmName")),
    "AWS::DynamoDB::Table": ("dynamodb", "table", _name("TableName")),
    "AWS::Glue::Job": ("glue", "job", _name("Name")),
    "AWS::Glue::Database": ("glue", "database", _glue_database),
    "AWS::Glue::Table": ("glue", "table", _glue_table),
    "AWS::Glue::Connection": (
        "glue",
        "connection",
        lambda s, i: [s.resolve(s.properties(i)["ConnectionInput"]["Name"])],
    ),
    "AWS::SSM::Parameter": ("ssm", "parameter", _parameter),
    "AWS::EC2::VPC": ("ec2", "vpc", _generated_id),
    "AWS::EC2::Subnet": ("ec2", "subnet", _generated_id),
    "AWS::EC2::RouteTable": ("ec2", "route-table", _generated_id),
    "AWS::EC2::SecurityGroup": ("ec2", "security-group", _generated_id),
    "AWS::EC2::VPCEndpoint": ("ec2", "vpc-endpoint", _generated_id),
    "AWS::EC2::FlowLog": ("ec2", "vpc-flow-log", _generated_id),
    "AWS::EC2::SecurityGroupIngress": ("ec2", "security-group-rule", _generated_id),
    "AWS::EC2::SecurityGroupEgress": ("ec2", "security-group-rule", _generated_id),
    # the deployment account's stacks
    "AWS::CodeBuild::Project": ("codebuild", "project", _name("Name")),
    "AWS::CodePipeline::Pipeline": ("codepipeline", "pipeline", _name("Name")),
    "AWS::CodeCommit::Repository": ("codecommit", "repository", _name("RepositoryName")),
    "AWS::CodeArtifact::Domain": ("codeartifact", "domain", _name("DomainName")),
    "AWS::CodeArtifact::Repository": ("codeartifact", "repository", _domain_and("RepositoryName")),
    "AWS::CodeArtifact::PackageGroup": ("codeartifact", "package-group", _domain_and("Pattern")),
    "AWS::CodeStarNotifications::NotificationRule": ("codestar-notifications", "notificationrule", _generated_id),
    "AWS::SecretsManager::Secret": ("secretsmanager", "Secret", _secret),
    "AWS::KMS::Alias": ("kms", "alias", _alias),
    "AWS::IAM::ManagedPolicy": ("iam", "policy", _name_with_path("ManagedPolicyName")),
}
# Resources a handler acts on only when a property names one: a role passed, a code object in S3.
# The property names (suffixes) through which a template names each of them.
NAMED_BY_A_PROPERTY = {
    ("iam", "role"): ("RoleArn", "Role"),
    ("s3", "object"): ("S3Bucket", "S3Key"),
    ("kms", "key"): ("KmsKeyId", "KmsKeyArn", "KMSMasterKeyId", "KmsMasterKeyId"),
    ("iam", "group"): ("Groups",),
    ("iam", "user"): ("Users",),
    ("codepipeline", "stage"): ("Stages",),
    ("codestar-connections", "Connection"): ("ConnectionArn",),
}
# The IAM reference stars both of these for DynamoDB's resource-policy actions: a request names one of them.
ALTERNATIVE_TYPES = (("dynamodb", "stream"),)
# Resource types whose Ref is the ARN (for the rest Ref is the name or ID, the last ARN variable).
REF_IS_ARN = (
    "AWS::SNS::Topic",
    "AWS::StepFunctions::StateMachine",
    "AWS::SecretsManager::Secret",
    "AWS::IAM::ManagedPolicy",
    "AWS::CodeArtifact::Domain",
    "AWS::CodeArtifact::Repository",
    "AWS::CodeArtifact::PackageGroup",
    "AWS::CodeStarNotifications::NotificationRule",
)


class StackResolver:
    def __init__(self, stack: StackTemplate, target: Target) -> None:
        self.stack = stack
        self.target = replace(target, region=stack.region) if stack.region else target
        self.resources: dict[str, dict[str, Any]] = stack.template.get("Resources", {})
        self._arns: dict[str, _Arn | None] = {}

    def properties(self, logical_id: str) -> dict[str, Any]:
        props: dict[str, Any] = self.resources[logical_id].get("Properties", {})
        return props

    def physical_name(self, logical_id: str, property_name: str, *, lower: bool = False) -> str | None:
        value = self.properties(logical_id).get(property_name)
        if value is None:
            generated = f"{self.stack.name}-{logical_id}-{GENERATED}"
            return generated.lower() if lower else generated
        return self.resolve(value)

    # --- intrinsic functions ---------------------------------------------------------------------------
    def resolve(self, value: Any) -> str | None:
        """The string a value has at deploy time, or None when the template cannot say (a parameter)."""
        pseudo = {
            "AWS::Partition": self.target.partition,
            "AWS::AccountId": self.target.account,
            "AWS::Region": self.target.region,
            "AWS::StackName": self.stack.name,
            "AWS::URLSuffix": "amazonaws.com",
        }
        if isinstance(value, str):
            return value
        if not isinstance(value, dict) or len(value) != 1:
            return None
        ((function, argument),) = value.items()
        if function == "Ref":
            if argument in pseudo:
                return pseudo[argument]
            return self._ref(argument)
        if function == "Fn::GetAtt":
            logical_id, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            own = self.own_arn(logical_id) if logical_id in self.resources else None
            if own is not None and attribute == "Name":  # a CodeArtifact domain's or repository's name
                return self._own_values(logical_id)[-1]
            if own is None or attribute != "Arn":
                return None
            # A log group's Arn attribute ends in ":*" (its streams), unlike the ARN IAM names it by.
            return f"{own.arn}:*" if self.resources[logical_id]["Type"] == "AWS::Logs::LogGroup" else own.arn
        if function == "Fn::Join":
            separator, parts = argument
            resolved = [self.resolve(p) for p in parts]
            return None if any(p is None for p in resolved) else str(separator).join(str(p) for p in resolved)
        if function == "Fn::Sub":
            template, variables = (argument, {}) if isinstance(argument, str) else argument
            failed = False

            def substitute(match: re.Match[str]) -> str:
                nonlocal failed
                name = match.group(1)
                if name in variables:
                    resolved = self.resolve(variables[name])
                elif "." in name:
                    resolved = self.resolve({"Fn::GetAtt": name.split(".", 1)})
                else:
                    resolved = self.resolve({"Ref": name})
                failed = failed or resolved is None
                return resolved or ""

            text = re.sub(r"\$\{([^}!]+)\}", substitute, template)
            return None if failed else text
        if function == "Fn::Select":
            index, items = argument
            resolved_items = items if isinstance(items, list) else None
            return self.resolve(resolved_items[int(index)]) if resolved_items else None
        return None

    def _ref(self, logical_id: str) -> str | None:
        own = self.own_arn(logical_id) if logical_id in self.resources else None
        if own is None:
            return None
        if self.resources[logical_id]["Type"] in REF_IS_ARN:
            return own.arn
        if self.resources[logical_id]["Type"] == "AWS::SSM::Parameter":
            return self.physical_name(logical_id, "Name")
        return self._own_values(logical_id)[-1]

    # --- ARNs and tags ---------------------------------------------------------------------------------
    def _own_values(self, logical_id: str) -> list[str | None]:
        kind = self.resources[logical_id]["Type"]
        return OWN_RESOURCE[kind][2](self, logical_id) if kind in OWN_RESOURCE else [None]

    def own_arn(self, logical_id: str) -> _Arn | None:
        if logical_id not in self._arns:
            self._arns[logical_id] = None  # a reference cycle resolves to "unknown"
            self._arns[logical_id] = self._build_own_arn(logical_id)
        return self._arns[logical_id]

    def _build_own_arn(self, logical_id: str) -> _Arn | None:
        kind = self.resources[logical_id]["Type"]
        if kind not in OWN_RESOURCE:
            return None
        service, resource_type, _ = OWN_RESOURCE[kind]
        values = self._own_values(logical_id)
        pattern = _arn_pattern(service, resource_type)
        if pattern is None or any(v is None for v in values):
            return None
        t = self.target
        arn = aws_data.fill_arn(pattern, t.partition, t.region, t.account, [str(v) for v in values])
        return _Arn(service, resource_type, arn, self.tags(logical_id), own=True, logical_id=logical_id)

    def tags(self, logical_id: str) -> dict[str, str]:
        """The resource's tags: its own, over the stack's where CloudFormation propagates them."""
        kind = self.resources[logical_id]["Type"]
        tags: dict[str, str] = {}
        if kind.startswith("AWS::") and aws_data.is_taggable(kind, self.target.region):
            tags.update(self.stack.stack_tags)
        own = self.properties(logical_id).get("Tags", [])
        pairs = own.items() if isinstance(own, dict) else ((t.get("Key"), t.get("Value")) for t in own)
        for key, value in pairs:
            tags[str(self.resolve(key))] = self.resolve(value) or "<unresolved>"
        return tags

    def involved(self, logical_id: str) -> list[_Arn]:
        """The resource's own ARN and those of the template's resources its properties refer to."""
        arns: list[_Arn] = []
        own = self.own_arn(logical_id)
        if own:
            arns.append(own)
        for referenced in sorted(_references(self.properties(logical_id))):
            if referenced in self.resources and referenced != logical_id:
                other = self.own_arn(referenced)
                if other:
                    arns.append(_Arn(other.service, other.resource_type, other.arn, other.tags, False, referenced))
        kind = self.resources[logical_id]["Type"]
        t = self.target
        for value in _values_of(self.properties(logical_id), NAMED_BY_A_PROPERTY[("iam", "role")]):
            name = self.resolve(value)
            if name and not _references(value):
                arn = name if name.startswith("arn:") else f"arn:{t.partition}:iam::{t.account}:role/{name}"
                arns.append(_Arn("iam", "role", arn, {}, own=False))
        if kind == "AWS::Lambda::Function":
            # Lambda reads the code object from the asset bucket with the caller's (CloudFormation's) credentials.
            code = self.properties(logical_id).get("Code", {})
            bucket, key = self.resolve(code.get("S3Bucket")), self.resolve(code.get("S3Key"))
            if bucket and key:
                arns.append(_Arn("s3", "object", f"arn:{t.partition}:s3:::{bucket}/{key}", {}, own=False))
        if kind == "AWS::Glue::Database":
            # Deleting a database deletes its tables: IAM checks DeleteDatabase against them too.
            database = _glue_database(self, logical_id)[0]
            pattern = _arn_pattern("glue", "table")
            if database and pattern:
                arn = aws_data.fill_arn(pattern, t.partition, t.region, t.account, [database, GENERATED])
                arns.append(_Arn("glue", "table", arn, {}, own=False))
            pattern = _arn_pattern("glue", "userdefinedfunction")
            if database and pattern:
                arn = aws_data.fill_arn(pattern, t.partition, t.region, t.account, [database, GENERATED])
                arns.append(_Arn("glue", "userdefinedfunction", arn, {}, own=False))
        if kind == "AWS::CodePipeline::Pipeline":
            props = self.properties(logical_id)
            pipeline = self.resolve(props.get("Name"))
            pattern = _arn_pattern("codepipeline", "stage")
            for stage in props.get("Stages", []):
                name = self.resolve(stage.get("Name"))
                if pipeline and name and pattern:
                    arn = aws_data.fill_arn(pattern, t.partition, t.region, t.account, [pipeline, name])
                    arns.append(_Arn("codepipeline", "stage", arn, {}, own=False))
                for action in stage.get("Actions", []):
                    connection = self.resolve(action.get("Configuration", {}).get("ConnectionArn"))
                    if connection:  # PassConnection is authorized under the codestar-connections prefix
                        arns.append(_Arn("codestar-connections", "Connection", connection, {}, own=False))
        if kind == "AWS::Glue::Table":
            database = self.resolve(self.properties(logical_id).get("DatabaseName"))
            pattern = _arn_pattern("glue", "database")
            if database and pattern:
                t = self.target
                arn = aws_data.fill_arn(pattern, t.partition, t.region, t.account, [database])
                arns.append(_Arn("glue", "database", arn, {}, own=False))
        return arns

    # --- the requests each handler permission makes ---------------------------------------------------
    def requests(
        self, logical_id: str, excluded: Mapping[tuple[str, str], Exclusion]
    ) -> Iterator[tuple[str, str, _Requests]]:
        kind = self.resources[logical_id]["Type"]
        if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource":
            token = self.resolve(self.properties(logical_id).get("ServiceToken"))
            if token is None:
                yield "create", CUSTOM_RESOURCE_ACTION, f"cannot resolve the ServiceToken of {logical_id}"
            else:
                yield "create", CUSTOM_RESOURCE_ACTION, [Request(CUSTOM_RESOURCE_ACTION, token, _region(self))]
            return
        try:
            handlers = aws_data.handler_permissions(kind, self.target.region)
        except aws_data.AwsDataError as error:
            yield "create", "(schema)", str(error)
            return
        involved = self.involved(logical_id)
        for handler, permissions in handlers.items():
            for permission in permissions:
                if (kind, permission) in excluded:
                    yield handler, permission, _EXCLUDED
                    continue
                yield handler, permission, self._requests_for(kind, logical_id, handler, permission, involved)

    def _requests_for(
        self, kind: str, logical_id: str, handler: str, permission: str, involved: list[_Arn]
    ) -> _Requests:
        if not aws_data.is_known_action(permission):
            return f"{permission} is not in the IAM action reference"
        action = aws_data.iam_action(permission)
        targets: list[tuple[_Arn, bool] | None] = []  # each ARN, and whether this action creates it
        named = [t for t in action.resource_types if t.arn]
        for resource_type in named:
            found = [a for a in involved if (a.service, a.resource_type) == (resource_type.service, resource_type.name)]
            if not found and resource_type.required and not aws_data.arn_variables(resource_type.arn):
                t = self.target
                arn = aws_data.fill_arn(resource_type.arn, t.partition, t.region, t.account, [])
                found = [_Arn(resource_type.service, resource_type.name, arn, {}, own=False)]
            if found:
                targets += [(a, resource_type.is_created()) for a in found]
            elif not resource_type.required or (resource_type.service, resource_type.name) in ALTERNATIVE_TYPES:
                continue
            elif not _sets_any(self.properties(logical_id), NAMED_BY_A_PROPERTY.get(key_of(resource_type), ("*",))):
                # The template names no such resource (no role to pass, inline code, the AWS owned key): no call.
                return []
            else:
                return f"cannot name the {resource_type.service} {resource_type.name} that {permission} acts on"
        if not named or not targets:
            targets = [None]  # no resource-level permissions: IAM checks the action against "*"
        requests = []
        base = self._request_context(kind, logical_id, handler, action)
        undecidable = _undecidable_in(handler, action)
        for entry in targets:
            target = entry[0] if entry else None
            # A resource this call creates, or tags as it is created, has no tags yet; any other exists with its own.
            if action.access_level == "Tagging":  # tags added as a resource is created; removing needs it to exist
                being_created = not action.name.startswith(("Untag", "Delete", "Remove"))
            else:
                being_created = bool(entry and entry[1])
            context = dict(base)
            if target is not None and not (target.own and handler == "create" and being_created):
                for key, value in target.tags.items():
                    context[f"aws:ResourceTag/{key}"] = [value]
                    context[f"ec2:ResourceTag/{key}"] = [value]
            if target is not None and target.logical_id and (target.service, target.resource_type) == ("iam", "role"):
                # IAM compares iam:PermissionsBoundary with the boundary the role has (or is created with).
                boundary = self.resolve(self.properties(target.logical_id).get("PermissionsBoundary"))
                if boundary is not None:
                    context["iam:PermissionsBoundary"] = [boundary]
            resource = target.arn if target else "*"
            if action.full_name.lower() in ("iam:attachrolepolicy", "iam:detachrolepolicy"):
                for policy_arn in self._managed_policies(logical_id):
                    requests.append(
                        Request(permission, resource, {**context, "iam:PolicyARN": [policy_arn]}, undecidable)
                    )
            else:
                requests.append(Request(permission, resource, context, undecidable))
        return requests

    def _request_context(
        self, kind: str, logical_id: str, handler: str, action: aws_data.Action
    ) -> dict[str, list[str]]:
        context: dict[str, list[str]] = {"aws:RequestedRegion": [self.target.region]}
        tags = self.tags(logical_id)
        if action.supports_request_tags() and handler == "create" and tags:
            # CloudFormation passes every tag (the stack's included) with the create request.
            context.update({f"aws:RequestTag/{k}": [v] for k, v in tags.items()})
            context["aws:TagKeys"] = sorted(tags)
        if action.full_name.lower() == "iam:passrole" and kind in PASSED_TO_SERVICE:
            context["iam:PassedToService"] = [PASSED_TO_SERVICE[kind]]
        if action.full_name.lower() == "codestar-connections:passconnection" and kind in PASSED_TO_SERVICE:
            context["codestar-connections:PassedToService"] = [PASSED_TO_SERVICE[kind]]
        if action.full_name.lower() == "ec2:createtags" and handler == "create" and kind in EC2_CREATE_ACTION:
            context["ec2:CreateAction"] = [EC2_CREATE_ACTION[kind]]
        return context

    def _managed_policies(self, logical_id: str) -> list[str]:
        arns = self.properties(logical_id).get("ManagedPolicyArns", [])
        return [self.resolve(a) or "<unresolved>" for a in arns]

    def stale_exclusions(self, logical_id: str, excluded: Mapping[tuple[str, str], Exclusion]) -> list[str]:
        kind = self.resources[logical_id]["Type"]
        return [
            f"{self.stack.name}/{logical_id} sets {e.property}, so {kind} needs {e.permission}: "
            f"remove its entry from lake_pipelines/{EXCLUSIONS_FILE}"
            for (t, _), e in excluded.items()
            if t == kind and e.property and _has_path(self.properties(logical_id), e.property)
        ]


def _region(stack: StackResolver) -> dict[str, list[str]]:
    return {"aws:RequestedRegion": [stack.target.region]}


def _undecidable_in(handler: str, action: aws_data.Action) -> Callable[[str], bool]:
    # On update, which tags a tagging call carries depends on the change: the request tags are unknowable.
    unknown_request_tags = handler == "update" and action.supports_request_tags()

    def undecidable(key: str) -> bool:
        lowered = key.lower()
        if unknown_request_tags and (lowered.startswith("aws:requesttag/") or lowered == "aws:tagkeys"):
            return True
        return not (lowered in _MODELED_KEYS or lowered.startswith(_MODELED_PREFIXES))

    return undecidable


def _arn_pattern(service: str, resource_type: str) -> str | None:
    return aws_data.resource_arn(service, resource_type)


def _references(value: Any) -> set[str]:
    """The logical IDs a property value refers to through Ref, Fn::GetAtt or Fn::Sub."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                template = inner if isinstance(inner, str) else inner[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", template)}
                if isinstance(inner, list):
                    found |= _references(inner[1])
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def key_of(resource_type: aws_data.ResourceType) -> tuple[str, str]:
    return (resource_type.service, resource_type.name)


def _sets_any(value: Any, names: tuple[str, ...]) -> bool:
    """Whether any property (at any depth) is one of `names`: "*" stands for "cannot tell", which is True."""
    if "*" in names:
        return True
    if isinstance(value, dict):
        return any(
            (isinstance(k, str) and k in names and v is not None) or _sets_any(v, names) for k, v in value.items()
        )
    if isinstance(value, list):
        return any(_sets_any(v, names) for v in value)
    return False


def _values_of(value: Any, names: tuple[str, ...]) -> list[Any]:
    """Every value of a property (at any depth) named one of `names`."""
    if isinstance(value, dict):
        return [v for k, v in value.items() if k in names] + [x for v in value.values() for x in _values_of(v, names)]
    if isinstance(value, list):
        return [x for v in value for x in _values_of(v, names)]
    return []


def _has_path(properties: Mapping[str, Any], path: str) -> bool:
    value: Any = properties
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return False
        value = value[part]
    return value is not None


# --- the policy's own shape ------------------------------------------------------------------------
def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _policy_shape_problems(policy: list[dict[str, Any]], target: Target) -> list[str]:
    """Guards the evaluation cannot express: what the policy must never allow, whatever the stages need."""
    problems = []
    for statement in policy:
        actions = [a.lower() for a in _listed(statement.get("Action", []))]
        sid = statement.get("Sid", "?")
        if {"iam:attachrolepolicy", "iam:detachrolepolicy"} & set(actions):
            policy_arns = statement.get("Condition", {}).get("ArnEquals", {}).get("iam:PolicyARN")
            if policy_arns is None:
                problems.append(f"{sid}: attaching managed policies must be limited by an iam:PolicyARN condition")
            problems += [
                f"{sid}: names {arn}, which is not an AWS managed policy"
                for arn in _listed(policy_arns or [])
                if not arn_matches(f"arn:{target.partition}:iam::aws:policy/*", arn)
            ]
        if statement.get("Effect") != "Allow" or not any(a.startswith("ec2:") for a in actions):
            continue
        if _listed(statement.get("Resource")) == ["*"]:
            if not all(a.startswith(("ec2:describe", "ec2:get")) for a in actions):
                problems.append(f"{sid}: only ec2:Describe*/Get* actions may apply to every resource")
            continue
        condition = statement.get("Condition", {})
        conditions = {**condition.get("StringEquals", {}), **condition.get("StringEqualsIfExists", {})}
        if not {"aws:RequestTag/lake:prefix", "aws:ResourceTag/lake:prefix"} & set(conditions) or (
            target.prefix not in conditions.values()
        ):
            problems.append(f"{sid}: EC2 changes must be conditioned on the lake:prefix tag")
    return problems


def boundary_guard_problems(policy: list[dict[str, Any]], target: Target, boundary_name: str) -> list[str]:
    """Requests that would let a commit escape the stage-role boundary: each must be denied."""
    t = target
    boundary = f"arn:{t.partition}:iam::{t.account}:policy/{boundary_name}"
    other = f"arn:{t.partition}:iam::{t.account}:policy/{t.prefix}-anything-else"
    role = f"arn:{t.partition}:iam::{t.account}:role/{t.prefix}-a-new-role"
    basic = f"arn:{t.partition}:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    escapes = [
        ("a role without the boundary", Request("iam:CreateRole", role)),
        ("a role with another boundary", Request("iam:CreateRole", role, {"iam:PermissionsBoundary": [other]})),
        ("an inline policy on a role without the boundary", Request("iam:PutRolePolicy", role)),
        (
            "a managed policy on a role without the boundary",
            Request("iam:AttachRolePolicy", role, {"iam:PolicyARN": [basic]}),
        ),
        (
            "swapping the boundary",
            Request("iam:PutRolePermissionsBoundary", role, {"iam:PermissionsBoundary": [other]}),
        ),
        (
            "removing the boundary",
            Request("iam:DeleteRolePermissionsBoundary", role, {"iam:PermissionsBoundary": [boundary]}),
        ),
        *(
            ("changing the boundary policy itself", Request(action, boundary))
            for action in (
                "iam:CreatePolicyVersion",
                "iam:SetDefaultPolicyVersion",
                "iam:DeletePolicyVersion",
                "iam:DeletePolicy",
            )
        ),
    ]
    return [
        f"the execution policy allows {what} ({request.action} on {request.resource}): "
        f"every role the stacks create must keep the boundary {boundary}"
        for what, request in escapes
        if evaluate(policy, request).allowed
    ]
