"""A lake bucket with every control the lake requires: encrypted, versioned, private, TLS-only, logged."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct


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
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=not retain,
            event_bridge_enabled=event_bridge,
        )
