"""A customer-managed KMS key with rotation whose policy names every principal that may use it."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

# The account keeps full administration through IAM (so the key can never become unmanageable), spelled
# out instead of `kms:*` so a new KMS action is not granted before anyone has looked at it.
ADMIN_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:CreateGrant",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
USE_ACTIONS = (
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
)
# Keys of non-retained environments are deleted with their stack after the shortest waiting period.
SHORT_PENDING_WINDOW_DAYS = 7
LONG_PENDING_WINDOW_DAYS = 30


class CustomerKey(Construct):
    """A rotating KMS key: the account administers it through IAM, listed services may use it."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        description: str,
        retain: bool,
        service_statements: Sequence[iam.PolicyStatement] = (),
    ) -> None:
        super().__init__(scope, construct_id)
        account_statement = iam.PolicyStatement(
            sid="AccountAdministersAndDelegatesUseThroughIam",
            principals=[iam.AccountRootPrincipal()],
            actions=[*ADMIN_ACTIONS, *USE_ACTIONS],
            # in a key policy `*` means "this key"
            resources=["*"],
        )
        self.key = kms.Key(
            self,
            "Key",
            description=description,
            enable_key_rotation=True,
            policy=iam.PolicyDocument(statements=[account_statement, *service_statements]),
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            pending_window=cdk.Duration.days(LONG_PENDING_WINDOW_DAYS if retain else SHORT_PENDING_WINDOW_DAYS),
        )
