"""The network stack: the lake VPC, its endpoints and flow logs, the Glue security group, and their contract."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_infra.contract import ContractValue, contract_reference
from datalake_infra.network.availability_zones import zones_from_context
from datalake_infra.network.glue_security_group import GlueSecurityGroup
from datalake_infra.network.lake_vpc import LakeVpc
from datalake_infra.network.s3_prefix_list import s3_prefix_list


class NetworkStack(cdk.Stack):
    """The environment's VPC and what Glue needs to run inside it; reads the data key from the contract."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LakeConfig, env_name: str, **kwargs: Any
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        target = config.env(env_name)
        names = names_for(config, env_name)
        # set before anything asks the stack for its zones: the VPC reads them through the property below
        self._zones = zones_from_context(self, account=target.account, region=target.region)

        data_key = kms.Key.from_key_arn(self, "DataKey", contract_reference(self, names, names.data_key_arn))
        self.network = LakeVpc(
            self,
            "Network",
            cidr=target.vpc_cidr,
            max_azs=target.max_azs,
            nat_gateways=target.nat_gateways,
            flow_log_key=data_key,
            log_retention_days=target.lifecycle.log_retention_days,
            retain=target.retain_data,
        )
        self.glue_security_group = GlueSecurityGroup(
            self,
            "GlueConnections",
            vpc=self.network.vpc,
            endpoints=self.network.endpoint_security_group,
            s3_prefix_list_id=s3_prefix_list(self, "S3PrefixList").prefix_list_id,
        ).security_group

        subnets = self.network.private_subnets
        ContractValue(self, "VpcId", names=names, path=names.vpc_id, value=self.network.vpc.vpc_id)
        ContractValue(
            self, "PrivateSubnetIds", names=names, path=names.private_subnet_ids, value=[s.subnet_id for s in subnets]
        )
        ContractValue(
            self,
            "PrivateSubnetAzs",
            names=names,
            path=names.subnet_availability_zones,
            value=[s.availability_zone for s in subnets],
        )
        ContractValue(
            self,
            "GlueSecurityGroupId",
            names=names,
            path=names.glue_security_group_id,
            value=self.glue_security_group.security_group_id,
        )

    @property
    def availability_zones(self) -> list[str]:
        """The zones from committed context (see `zones_from_context`), so synth never looks them up."""
        return list(self._zones)
