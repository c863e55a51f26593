"""Who the roles in a target account trust: named principals of the deployment account, never the whole account."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from datalake_config import LakeConfig, names_for


def verify_step_role_arn(scope: Construct, config: LakeConfig, env_name: str, repository: str) -> str:
    """The ARN of the role the environment's pipeline runs its Verify step with (lake_pipelines.pipeline)."""
    return cdk.Stack.of(scope).format_arn(
        service="iam",
        region="",
        account=config.deployment.account,
        resource="role",
        resource_name=names_for(config, env_name).verify_step_role_name(repository),
    )


def verify_step_principal(scope: Construct, config: LakeConfig, env_name: str, repository: str) -> iam.IPrincipal:
    """Only the Verify step of this repository's pipeline for this environment may assume the verify role.

    The deployment account as principal, narrowed by `aws:PrincipalArn` to the step's role (for an assumed-role
    session that key is the role's ARN; IAM User Guide, "AWS global condition context keys"). Not the role ARN as
    principal: IAM resolves such a principal to the role's unique id when the policy is saved, so it needs the role
    to exist first and silently stops matching once the pipeline stack recreates the role.
    """
    return iam.AccountPrincipal(config.deployment.account).with_conditions(
        {"ArnEquals": {"aws:PrincipalArn": verify_step_role_arn(scope, config, env_name, repository)}}
    )
