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


# Services that publish into an SNS topic encrypted with a customer managed key need the key, and AWS documents
# the exact key-policy statement for each. They are used as documented, without extra conditions: KMS receives
# these calls from SNS on the publisher's behalf, and a condition key the call does not carry would drop every
# notification without an error anyone sees. The topic policies keep the same-account conditions.
def eventbridge_publishes_statement() -> iam.PolicyStatement:
    """EventBridge rules publishing to the encrypted topic (EventBridge User Guide, "Amazon SNS permissions":
    the statement "Allow CWE to use the key")."""
    return iam.PolicyStatement(
        sid="EventBridgeRulesPublishToTheEncryptedTopic",
        principals=[iam.ServicePrincipal("events.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey"],
        resources=["*"],  # in a key policy `*` means this key
    )


def cloudwatch_alarms_publish_statement() -> iam.PolicyStatement:
    """CloudWatch alarm actions publishing to the encrypted topic (CloudWatch User Guide, alarm actions with an
    encrypted SNS topic)."""
    return iam.PolicyStatement(
        sid="CloudWatchAlarmsPublishToTheEncryptedTopic",
        principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
        actions=["kms:Decrypt", "kms:GenerateDataKey*"],
        resources=["*"],
    )


def codestar_notifications_statement(region: str) -> iam.PolicyStatement:
    """CodeStar Notifications rules publishing to the encrypted topic, through SNS only (Developer Tools
    console User Guide, "Configure Amazon SNS topics for notifications", the key policy statement)."""
    return iam.PolicyStatement(
        sid="CodeStarNotificationsPublishThroughSns",
        principals=[iam.ServicePrincipal("codestar-notifications.amazonaws.com")],
        actions=["kms:GenerateDataKey*", "kms:Decrypt"],
        resources=["*"],
        conditions={"StringEquals": {"kms:ViaService": f"sns.{region}.amazonaws.com"}},
    )
