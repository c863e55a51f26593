"""Lifecycle rules of the lake's buckets, derived from an environment's `lifecycle` settings."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3

from datalake_config.model import Lifecycle
from datalake_config.naming import TRANSIENT_PREFIXES


def zone_rules(lifecycle: Lifecycle, *, expire_after_days: int | None) -> list[s3.LifecycleRule]:
    """Rules for a zone bucket; `expire_after_days` expires current objects (the raw zone's retention)."""
    rules = [_housekeeping(lifecycle), *_transient(lifecycle)]
    # moving objects to Infrequent Access only pays off if they live beyond the transition
    if expire_after_days is None or expire_after_days > lifecycle.infrequent_access_days:
        rules.append(
            s3.LifecycleRule(
                id="transition-to-infrequent-access",
                transitions=[
                    s3.Transition(
                        storage_class=s3.StorageClass.INFREQUENT_ACCESS,
                        transition_after=cdk.Duration.days(lifecycle.infrequent_access_days),
                    )
                ],
            )
        )
    if expire_after_days is not None:
        rules.append(s3.LifecycleRule(id="expire-objects", expiration=cdk.Duration.days(expire_after_days)))
    return rules


def access_log_rules(lifecycle: Lifecycle) -> list[s3.LifecycleRule]:
    """Server access logs are kept as long as the environment's other logs."""
    return [
        _housekeeping(lifecycle),
        s3.LifecycleRule(id="expire-objects", expiration=cdk.Duration.days(lifecycle.log_retention_days)),
    ]


def _housekeeping(lifecycle: Lifecycle) -> s3.LifecycleRule:
    return s3.LifecycleRule(
        id="expire-noncurrent-versions",
        noncurrent_version_expiration=cdk.Duration.days(lifecycle.noncurrent_version_days),
        abort_incomplete_multipart_upload_after=cdk.Duration.days(lifecycle.incomplete_upload_days),
        # once every noncurrent version is gone, the lone delete marker left behind is removed too
        expired_object_delete_marker=True,
    )


def _transient(lifecycle: Lifecycle) -> list[s3.LifecycleRule]:
    return [
        s3.LifecycleRule(
            id=f"expire-transient-{index}",
            prefix=prefix,
            expiration=cdk.Duration.days(lifecycle.staging_expiration_days),
        )
        for index, prefix in enumerate(TRANSIENT_PREFIXES, start=1)
    ]
