"""A lake bucket with every control the lake requires: encrypted, versioned, private, TLS-only, logged."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
import jsii
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct, IValidation

# The child the L2 bucket creates on its first `add_event_notification` / `enable_event_bridge_notification`:
# a Custom::S3BucketNotifications resource and CDK's notifications Lambda.
L2_NOTIFICATIONS_CHILD = "Notifications"


class LakeBucket(Construct):
    """A versioned, private, TLS-only bucket: KMS-encrypted with `encryption_key`, else S3-managed."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lifecycle_rules: Sequence[s3.LifecycleRule],
        retain: bool,
        encryption_key: kms.IKey | None = None,
        access_logs: s3.IBucket | None = None,
        access_logs_prefix: str | None = None,
        event_bridge: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            encryption=s3.BucketEncryption.KMS if encryption_key else s3.BucketEncryption.S3_MANAGED,
            encryption_key=encryption_key,
            # one data key per bucket instead of one KMS call per object
            bucket_key_enabled=encryption_key is not None,
            versioned=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            server_access_logs_bucket=access_logs,
            server_access_logs_prefix=access_logs_prefix,
            lifecycle_rules=list(lifecycle_rules),
            # No auto_delete_objects: it deploys a Lambda holding s3:DeleteObject* on the bucket to empty it when
            # the stack deletes it. Neither the rehearsal (it resets the emulator) nor `lakeops prune` (it deletes
            # only stacks no app synthesizes; a stage always synthesizes its storage stack) needs that, so deleting
            # a non-retained environment's stack now fails on a bucket that still holds objects instead of
            # silently emptying it: emptying lake data is a person's decision.
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )
        if event_bridge:
            # S3 sends every event of the bucket to EventBridge through the bucket's own notification
            # configuration: AWS::S3::Bucket NotificationConfiguration.EventBridgeConfiguration (CloudFormation
            # resource reference, aws-properties-s3-bucket-eventbridgeconfiguration). The L2's
            # `event_bridge_enabled` would set it through a Custom::S3BucketNotifications Lambda instead.
            resource = self.bucket.node.default_child
            if not isinstance(resource, s3.CfnBucket):
                raise TypeError(f"expected the bucket's CfnBucket, got {type(resource).__name__}")
            resource.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
                event_bridge_configuration=s3.CfnBucket.EventBridgeConfigurationProperty(event_bridge_enabled=True)
            )
        self.node.add_validation(_NoL2Notifications(self.bucket))


@jsii.implements(IValidation)
class _NoL2Notifications:
    """Fails synthesis when something adds notifications through the L2 bucket.

    CDK's notifications Lambda would deploy, and its PutBucketNotificationConfiguration replaces the whole
    configuration, EventBridge included. Set notifications on the CfnBucket's NotificationConfiguration.
    """

    def __init__(self, bucket: s3.Bucket) -> None:
        self.bucket = bucket

    def validate(self) -> list[str]:
        if self.bucket.node.try_find_child(L2_NOTIFICATIONS_CHILD) is None:
            return []
        return [
            f"{self.bucket.node.path}: bucket notifications were added through the L2 bucket "
            "(add_event_notification / enable_event_bridge_notification), which deploys CDK's "
            "Custom::S3BucketNotifications Lambda; set them on the CfnBucket's NotificationConfiguration instead"
        ]
