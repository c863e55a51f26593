"""Glue code from a local file, granting the job role `s3:GetObject` on that one object only."""

from __future__ import annotations

import hashlib
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_assets as s3_assets
from constructs import Construct


class ObjectAssetCode(glue.Code):
    """Like `glue.Code.from_asset`, but the grant is one GetObject on the asset object (no `s3:List*`)."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        if not path.is_file():
            raise FileNotFoundError(f"Glue code {path}: not a file")
        self.path = path

    def bind(self, scope: Construct, grantable: iam.IGrantable) -> glue.CodeConfig:
        # Content-addressed id: the same bytes bound twice in one scope (e.g. script and library) are one S3
        # object anyway, so they share one asset instead of clashing on the construct id.
        digest = hashlib.sha256(self.path.read_bytes()).hexdigest()[:12]
        existing = scope.node.try_find_child(f"Code{digest}")
        asset = (
            existing
            if isinstance(existing, s3_assets.Asset)
            else s3_assets.Asset(scope, f"Code{digest}", path=str(self.path))
        )
        object_arn = cdk.Stack.of(scope).format_arn(
            service="s3",
            region="",
            account="",
            resource=asset.s3_bucket_name,
            resource_name=asset.s3_object_key,
        )
        grantable.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(actions=["s3:GetObject"], resources=[object_arn])
        )
        return glue.CodeConfig(
            s3_location=s3.Location(bucket_name=asset.s3_bucket_name, object_key=asset.s3_object_key)
        )
