"""Recognise the wildcard grants CDK pipelines generates, so each can be acknowledged with a specific reason.

cdk-nag's AwsSolutions-IAM5 names a finding after the wildcard action (`Action::kms:ReEncrypt*`) or the
flattened resource (`Resource::<Bucket.Arn>/*`); `flatten` reproduces that naming so the acknowledgement
matches exactly one finding on exactly one policy.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

ARTIFACT_OBJECTS = (
    "CDK pipelines grants its roles read/write on the objects of this pipeline's own artifact bucket only; "
    "the wildcards are the object keys and the S3 action families of that grant."
)
ARTIFACT_KEY = (
    "CDK pipelines grants its roles encrypt/decrypt with this pipeline's own artifact key only; "
    "ReEncrypt*/GenerateDataKey* are the KMS action families S3 server-side encryption needs."
)
BUILD_LOGS = "A CodeBuild project writes log streams (unknown names) into its own log group only."
BUILD_REPORTS = "A CodeBuild project creates report groups named after itself only (CDK's standard grant)."
SHARED_ASSET_ROLE = (
    "CDK pipelines shares one asset-publishing role among the asset projects it generates, one per asset; "
    "the role exists before those projects, so its CodeBuild, log and report grants cannot name them. "
    "It publishes to the target's bootstrap bucket through the file-publishing role it may assume."
)
GLOBAL_CONFIG_KEY = (
    "The global-config key's id is not known to this stack (no exports): the statement names it through "
    "its alias and allows decrypt only via Secrets Manager for the one global-config secret."
)
BOOTSTRAP_ROLES = (
    "Self-mutation and asset publishing assume only CDK bootstrap roles, selected by their "
    "aws-cdk:bootstrap-role tag; their names carry a qualifier and region the pipeline does not fix."
)
DESCRIBE_STACKS = "cdk deploy in the self-mutation step reads stack status; DescribeStacks has no narrower resource."
LIST_BUCKETS = (
    "cdk deploy in the self-mutation step locates the bootstrap asset bucket, whose name it learns at run time."
)
REPLICATION_OBJECTS = (
    "A pipeline deploying to another region keeps that region's artifacts in the replication bucket of its "
    "cross-region support stack; CDK pipelines grants read/write on that one bucket's objects."
)
REPLICATION_KEY = (
    "The replication bucket's key lives in the support stack of another region, so this stack cannot name its "
    "ARN and CDK pipelines grants the artifact encrypt/decrypt actions on `*`; the key's own policy admits only "
    "this account, and the statement is generated only for a pipeline with a cross-region support stack."
)
# The artifact actions CDK pipelines grants on a key (its own, or the cross-region one on `*`).
ARTIFACT_KEY_ACTIONS = ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
# The only actions CDK pipelines grants on `*`, and why.
UNSCOPED_ACTIONS = {
    "cloudformation:DescribeStacks": DESCRIBE_STACKS,
    "s3:ListBucket": LIST_BUCKETS,
    "codebuild:BatchGetBuilds": SHARED_ASSET_ROLE,
    "codebuild:StartBuild": SHARED_ASSET_ROLE,
    "codebuild:StopBuild": SHARED_ASSET_ROLE,
}
ASSET_BUCKETS = (
    "Asset publishing reads and writes the CDK bootstrap asset buckets (named cdk-<qualifier>-assets-...) "
    "of the target accounts; the pipelines module scopes them by that name pattern."
)


@dataclass(frozen=True)
class GeneratedGrants:
    """The shapes of generated grants in one pipeline stack, and why each wildcard in them is acceptable."""

    bucket_logical_id: str
    key_logical_id: str | None
    global_config_alias: str
    replication_buckets: tuple[str, ...] = ()  # flattened ARNs of the cross-region support stacks' buckets

    def reasons(self, document: Any) -> dict[str, str]:
        """Finding id (without the rule prefix) → reason, for every recognised wildcard in `document`."""
        found: dict[str, str] = {}
        for statement in _as_list(document.get("Statement")):
            if statement.get("Effect") != "Allow":
                continue
            actions = [str(a) for a in _as_list(statement.get("Action"))]
            resources = [flatten(r) for r in _as_list(statement.get("Resource"))]
            reason = self._reason(actions, resources, statement.get("Condition") or {})
            if reason is None:
                continue
            for finding in wildcard_findings(actions, resources):
                found.setdefault(finding, reason)
        return found

    def _reason(self, actions: list[str], resources: list[str], condition: dict[str, Any]) -> str | None:
        bucket_arn = f"<{self.bucket_logical_id}.Arn>"
        if resources and all(r in (bucket_arn, f"{bucket_arn}/*") for r in resources):
            return ARTIFACT_OBJECTS
        if self.key_logical_id and resources == [f"<{self.key_logical_id}.Arn>"]:
            return ARTIFACT_KEY
        replicated = {*self.replication_buckets, *(f"{b}/*" for b in self.replication_buckets)}
        if resources and replicated and all(r in replicated for r in resources):
            return REPLICATION_OBJECTS
        if self.replication_buckets and resources == ["*"] and actions == ARTIFACT_KEY_ACTIONS:
            return REPLICATION_KEY
        if resources and all(r.endswith(":log-group:/aws/codebuild/*") for r in resources):
            return SHARED_ASSET_ROLE
        if resources and all(r.endswith(":report-group/*") for r in resources):
            return SHARED_ASSET_ROLE
        if resources and all(re.search(r":log-group:/aws/codebuild/<\w+>(:\*)?$", r) for r in resources):
            return BUILD_LOGS
        if resources and all(re.search(r":report-group/<\w+>-\*$", r) for r in resources):
            return BUILD_REPORTS
        condition_text = json.dumps(condition)
        if (
            actions == ["kms:Decrypt"]
            and self.global_config_alias in condition_text
            and "kms:ViaService" in condition_text
        ):
            return GLOBAL_CONFIG_KEY
        if actions == ["sts:AssumeRole"] and "aws-cdk:bootstrap-role" in condition_text:
            return BOOTSTRAP_ROLES
        if resources == ["*"] and actions and all(a in UNSCOPED_ACTIONS for a in actions):
            # with @aws-cdk/aws-iam:minimizePolicies the generated `*` statements arrive merged
            return " ".join(dict.fromkeys(UNSCOPED_ACTIONS[a] for a in actions))
        if resources and all(":s3:::cdk-" in r and "-assets-" in r for r in resources):
            return ASSET_BUCKETS
        return None


def wildcard_findings(actions: list[str], resources: list[str]) -> list[str]:
    """The IAM5 finding ids cdk-nag reports for one Allow statement."""
    return [f"Action::{a}" for a in actions if "*" in a] + [f"Resource::{r}" for r in resources if "*" in r]


def flatten(reference: Any) -> str:
    """A CloudFormation value as the flat string cdk-nag uses in finding ids (`<Logical.Attr>`, joins)."""
    if reference is None:
        return ""
    if isinstance(reference, str):
        return reference.replace("${", "<").replace("}", ">")
    if isinstance(reference, dict):
        if "Fn::Join" in reference:
            delimiter, items = reference["Fn::Join"]
            return str(delimiter).join(flatten(item) for item in items)
        if "Fn::Sub" in reference:
            return flatten(reference["Fn::Sub"])
        if "Fn::GetAtt" in reference:
            resource, attribute = reference["Fn::GetAtt"]
            return f"<{flatten(resource)}.{flatten(attribute)}>"
        if "Ref" in reference:
            return f"<{flatten(reference['Ref'])}>"
    return json.dumps(reference, separators=(",", ":"))


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]
