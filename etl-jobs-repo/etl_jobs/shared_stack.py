"""What every job group shares: the ETL key, Glue security configuration and connections, audit table, verify role."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_ssm as ssm
from constructs import Construct

from datalake_config import LakeConfig, names_for
from etl_jobs.contract import DeployTimeContract
from etl_jobs.spec import Group
from etl_jobs.verify_role import VerifyRole
from lake_pipelines.key_policies import cloudwatch_logs_statement


class EtlSharedStack(cdk.Stack):
    """Stateful pieces of the ETL app; group stacks find them through SSM parameters and physical names."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        env_name: str,
        groups: list[Group],
        **kwargs: Any,
    ) -> None:
        environment = config.env(env_name)
        super().__init__(
            scope,
            construct_id,
            description=f"{config.prefix} {env_name} etl: shared key, security configuration, audit table",
            termination_protection=environment.retain_data,
            **kwargs,
        )
        names = names_for(config, env_name)
        contract = DeployTimeContract(self, names)
        removal_policy = cdk.RemovalPolicy.RETAIN if environment.retain_data else cdk.RemovalPolicy.DESTROY

        self.key = kms.Key(
            self,
            "EtlKey",
            description=f"{config.prefix} {env_name} etl: job logs, job bookmarks, audit table",
            enable_key_rotation=True,
            removal_policy=removal_policy,
        )
        # CloudWatch Logs encrypts the jobs' and state machines' log groups with this key, for this account only.
        self.key.add_to_resource_policy(cloudwatch_logs_statement(self))

        self.security_configuration = glue.SecurityConfiguration(
            self,
            "SecurityConfiguration",
            security_configuration_name=names.glue_security_configuration_name,
            s3_encryption=glue.S3Encryption.kms(contract.data_key(self)),
            cloud_watch_encryption=glue.CloudWatchEncryption.kms(self.key),
            job_bookmarks_encryption=glue.JobBookmarksEncryption.client_side_kms(self.key),
        )

        self.audit_table = dynamodb.Table(
            self,
            "AuditTable",
            partition_key=dynamodb.Attribute(name="job_name", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="run_id", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.CUSTOMER_MANAGED,
            encryption_key=self.key,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True
            ),
            deletion_protection=environment.retain_data,
            removal_policy=removal_policy,
        )

        # One NETWORK connection per private subnet (contract order), only when some job needs the VPC.
        self.connections: list[glue.CfnConnection] = []
        if any(job.needs_vpc for group in groups for job in group.jobs):
            for number in range(1, environment.max_azs + 1):
                self.connections.append(
                    glue.CfnConnection(
                        self,
                        f"PrivateConnection{number}",
                        catalog_id=self.account,
                        connection_input=glue.CfnConnection.ConnectionInputProperty(
                            name=names.glue_connection_name(number),
                            description=f"private subnet {number} of the lake VPC, for jobs declaring needs_vpc",
                            connection_type="NETWORK",
                            physical_connection_requirements=glue.CfnConnection.PhysicalConnectionRequirementsProperty(
                                subnet_id=cdk.Fn.select(number - 1, contract.private_subnet_ids),
                                availability_zone=cdk.Fn.select(number - 1, contract.subnet_availability_zones),
                                security_group_id_list=[contract.glue_security_group_id],
                            ),
                        ),
                    )
                )

        # Group stacks read these at deploy time (no cross-stack exports to lock this stack).
        self.parameters = [
            ssm.StringParameter(
                self, "KeyArnParameter", parameter_name=names.etl_key_arn, string_value=self.key.key_arn
            ),
            ssm.StringParameter(
                self,
                "AuditTableNameParameter",
                parameter_name=names.audit_table_name,
                string_value=self.audit_table.table_name,
            ),
            ssm.StringParameter(
                self,
                "AuditTableArnParameter",
                parameter_name=names.audit_table_arn,
                string_value=self.audit_table.table_arn,
            ),
        ]

        self.verify_role = VerifyRole(
            self, "Verify", config=config, env_name=env_name, groups=groups, contract=contract
        )
