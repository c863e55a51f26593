"""The catalog stack: a Glue database per zone located in its bucket, and encryption of the whole catalog."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_infra.contract import ContractValue, contract_reference


class CatalogStack(cdk.Stack):
    """Glue databases (stateful: tables live in them) and the account's Data Catalog encryption settings."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LakeConfig, env_name: str, **kwargs: Any
    ) -> None:
        target = config.env(env_name)
        super().__init__(scope, construct_id, termination_protection=target.retain_data, **kwargs)
        names = names_for(config, env_name)
        removal = cdk.RemovalPolicy.RETAIN if target.retain_data else cdk.RemovalPolicy.DESTROY
        data_key_arn = contract_reference(self, names, names.data_key_arn)

        self.databases: dict[str, glue.CfnDatabase] = {}
        for zone in config.zones:
            bucket_name = contract_reference(self, names, names.bucket_name(zone))
            database = glue.CfnDatabase(
                self,
                f"{zone.capitalize()}Database",
                catalog_id=self.account,
                database_input=glue.CfnDatabase.DatabaseInputProperty(
                    name=names.glue_database_name(zone),
                    description=f"{config.prefix} {env_name}: tables of the {zone} zone",
                    location_uri=f"s3://{bucket_name}/",
                ),
            )
            database.apply_removal_policy(removal)
            self.databases[zone] = database
            ContractValue(
                self, f"{zone.capitalize()}DatabaseName", names=names, path=names.database(zone), value=database.ref
            )

        # One setting per account and region: the infra app owns this account's catalog, so it owns this too.
        self.encryption = glue.CfnDataCatalogEncryptionSettings(
            self,
            "CatalogEncryption",
            catalog_id=self.account,
            data_catalog_encryption_settings=glue.CfnDataCatalogEncryptionSettings.DataCatalogEncryptionSettingsProperty(
                encryption_at_rest=glue.CfnDataCatalogEncryptionSettings.EncryptionAtRestProperty(
                    catalog_encryption_mode="SSE-KMS", sse_aws_kms_key_id=data_key_arn
                ),
                connection_password_encryption=glue.CfnDataCatalogEncryptionSettings.ConnectionPasswordEncryptionProperty(
                    return_connection_password_encrypted=True, kms_key_id=data_key_arn
                ),
            ),
        )
