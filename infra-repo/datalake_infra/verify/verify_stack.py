"""The verify stack: the role the pipeline's post-deploy smoke check assumes from the deployment account."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_infra.contract import contract_reference
from lake_pipelines.checks import acknowledge
from lake_pipelines.trust import verify_step_principal

REPOSITORY = "infra"


class VerifyStack(cdk.Stack):
    """A read-only role that can see the contract and the resources it points at, and nothing else."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LakeConfig, env_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        names = names_for(config, env_name)
        self.role = iam.Role(
            self,
            "VerifyRole",
            # physical name: the deployment account's pipeline assumes it by ARN
            role_name=names.verify_role_name(REPOSITORY),
            assumed_by=verify_step_principal(self, config, env_name, REPOSITORY),
            description=f"{config.prefix} {env_name}: read-only post-deploy check of the infra contract",
            max_session_duration=cdk.Duration.hours(1),
        )
        contract_arns = [
            self.format_arn(service="ssm", resource="parameter", resource_name=entry.path.lstrip("/"))
            for entry in names.contract()
        ]
        read = {
            "ReadContract": (["ssm:GetParameter"], contract_arns),
            "SeeBuckets": (
                ["s3:ListBucket"],
                [contract_reference(self, names, names.bucket_arn(zone)) for zone in config.zones],
            ),
            "SeeDataKey": (["kms:DescribeKey"], [contract_reference(self, names, names.data_key_arn)]),
            "SeeAlarmTopic": (["sns:GetTopicAttributes"], [contract_reference(self, names, names.alarm_topic_arn)]),
            "SeeAlarmTopicKey": (["kms:DescribeKey"], [contract_reference(self, names, names.alarm_topic_key_arn)]),
            "SeeDatabases": (
                ["glue:GetDatabase"],
                [
                    self.format_arn(service="glue", resource="catalog"),
                    *(
                        self.format_arn(service="glue", resource="database", resource_name=names.glue_database_name(z))
                        for z in config.zones
                    ),
                ],
            ),
        }
        for sid, (actions, resources) in read.items():
            self.role.add_to_policy(iam.PolicyStatement(sid=sid, actions=actions, resources=resources))
        # the catalog is encrypted with the data key: reading a database's metadata decrypts it, through Glue only
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="DecryptCatalogMetadataThroughGlue",
                actions=["kms:Decrypt"],
                resources=[contract_reference(self, names, names.data_key_arn)],
                conditions={"StringEquals": {"kms:ViaService": f"glue.{self.region}.amazonaws.com"}},
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                sid="SeeNetwork",
                actions=["ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeVpcs"],
                resources=["*"],
            )
        )
        acknowledge(
            self.role,
            "AwsSolutions-IAM5[Resource::*]",
            "EC2 Describe calls support no resource-level permissions; these three only read network metadata.",
        )
