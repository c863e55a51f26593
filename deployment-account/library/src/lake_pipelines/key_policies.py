"""Key-policy statements both apps need, written once."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam


def cloudwatch_logs_statement(stack: cdk.Stack) -> iam.PolicyStatement:
    """CloudWatch Logs may use the key for this account's log groups only (flow logs, job and state-machine logs)."""
    return iam.PolicyStatement(
        sid="CloudWatchLogsEncryptsThisAccountsLogGroups",
        principals=[iam.ServicePrincipal(f"logs.{stack.region}.amazonaws.com")],
        actions=[
            "kms:Decrypt",
            "kms:DescribeKey",
            "kms:Encrypt",
            "kms:GenerateDataKey",
            "kms:GenerateDataKeyWithoutPlaintext",
            "kms:ReEncryptFrom",
            "kms:ReEncryptTo",
        ],
        resources=["*"],
        conditions={
            "ArnLike": {
                "kms:EncryptionContext:aws:logs:arn": stack.format_arn(
                    service="logs",
                    resource="log-group",
                    resource_name="*",
                    arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                )
            }
        },
    )
