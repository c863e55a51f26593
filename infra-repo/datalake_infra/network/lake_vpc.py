"""The lake's VPC: private subnets, endpoints for every AWS service the jobs call, encrypted flow logs."""

from __future__ import annotations

import ipaddress

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from lake_pipelines.checks import acknowledge

PRIVATE = "private"
PUBLIC = "public"
GATEWAY_SERVICES = {
    "S3": ec2.GatewayVpcEndpointAwsService.S3,
    "DynamoDb": ec2.GatewayVpcEndpointAwsService.DYNAMODB,
}
INTERFACE_SERVICES = {
    "Glue": ec2.InterfaceVpcEndpointAwsService.GLUE,
    "Kms": ec2.InterfaceVpcEndpointAwsService.KMS,
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "StepFunctions": ec2.InterfaceVpcEndpointAwsService.STEP_FUNCTIONS,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Sts": ec2.InterfaceVpcEndpointAwsService.STS,
}
# Private subnets get a quarter of the VPC each and public ones a sixteenth, so three AZs of both fit
# with room left, and the sizes do not change when the NAT count (and with it the public tier) does.
PRIVATE_MASK_BITS = 2
PUBLIC_MASK_BITS = 4
# The acknowledgment every helper Lambda of the infra stage carries (the stage test lists the functions and
# requires it on each): CDK adds such functions for custom resources, and each must have a stated reason.
HELPER_LAMBDA_RULE = "Lake-HelperLambda"
# Where CDK puts the default-security-group custom resource (under the VPC) and its provider (under the stack).
RESTRICT_DEFAULT_SG_RESOURCE = "RestrictDefaultSecurityGroupCustomResource"
RESTRICT_DEFAULT_SG_PROVIDER = "Custom::VpcRestrictDefaultSGCustomResourceProvider"
RESTRICT_DEFAULT_SG_REASON = (
    "Kept on purpose: CloudFormation cannot remove the rules of a VPC's default security group (AWS::EC2::VPC "
    "only returns its id as DefaultSecurityGroup; SecurityGroupIngress/Egress resources can only add rules), "
    "and a default group that allows all traffic between its members and all egress fails AWS Foundational "
    "Security Best Practices EC2.2. The handler only revokes those two rules on create (and restores them on "
    "delete); its role may change rules of that one group only."
)


class LakeVpc(Construct):
    """A VPC whose private subnets reach AWS through endpoints; with NAT gateways, the internet too."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        cidr: str,
        max_azs: int,
        nat_gateways: int,
        flow_log_key: kms.IKey,
        log_retention_days: int,
        retain: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix_length = ipaddress.ip_network(cidr).prefixlen
        isolated = nat_gateways == 0
        subnets = [
            ec2.SubnetConfiguration(
                name=PRIVATE,
                subnet_type=ec2.SubnetType.PRIVATE_ISOLATED if isolated else ec2.SubnetType.PRIVATE_WITH_EGRESS,
                cidr_mask=prefix_length + PRIVATE_MASK_BITS,
            )
        ]
        if not isolated:
            subnets.append(
                ec2.SubnetConfiguration(
                    name=PUBLIC,
                    subnet_type=ec2.SubnetType.PUBLIC,
                    cidr_mask=prefix_length + PUBLIC_MASK_BITS,
                    map_public_ip_on_launch=False,
                )
            )
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            max_azs=max_azs,
            nat_gateways=nat_gateways,
            subnet_configuration=subnets,
            # deploys CDK's one helper Lambda of the stage: see RESTRICT_DEFAULT_SG_REASON
            restrict_default_security_group=True,
        )
        self._acknowledge_default_security_group_handler()
        for subnet in [*self.vpc.isolated_subnets, *self.vpc.private_subnets, *self.vpc.public_subnets]:
            acknowledge(
                subnet,
                "CloudFormation-Validate::W3010",
                "Zones are pinned on purpose: they come from the committed cdk.context.json and are published "
                "in the contract, so synth never looks them up and the ETL side gets the same list.",
            )
        self.private_subnets = self.vpc.select_subnets(subnet_group_name=PRIVATE).subnets
        private = ec2.SubnetSelection(subnet_group_name=PRIVATE)

        for name, gateway_service in GATEWAY_SERVICES.items():
            self.vpc.add_gateway_endpoint(name, service=gateway_service, subnets=[private])

        self.endpoint_security_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="Interface endpoints of the data lake: HTTPS from inside the VPC",
            allow_all_outbound=False,
        )
        self.endpoint_security_group.add_ingress_rule(ec2.Peer.ipv4(cidr), ec2.Port.tcp(443), "HTTPS from the VPC")
        self.interface_endpoints = {
            name: self.vpc.add_interface_endpoint(
                name,
                service=interface_service,
                private_dns_enabled=True,
                subnets=private,
                security_groups=[self.endpoint_security_group],
                open=False,
            )
            for name, interface_service in INTERFACE_SERVICES.items()
        }

        self.flow_log_group = logs.LogGroup(
            self,
            "FlowLogGroup",
            encryption_key=flow_log_key,
            removal_policy=cdk.RemovalPolicy.RETAIN if retain else cdk.RemovalPolicy.DESTROY,
        )
        # the L2 only knows retention periods as enum members; the config holds the number of days
        log_group_resource = self.flow_log_group.node.default_child
        if not isinstance(log_group_resource, logs.CfnLogGroup):
            raise TypeError(f"expected the log group's CfnLogGroup, got {type(log_group_resource).__name__}")
        log_group_resource.retention_in_days = log_retention_days
        self.flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(self.flow_log_group),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )

    def _acknowledge_default_security_group_handler(self) -> None:
        """The custom resource, its provider's role and its Lambda carry the reason, for reviewers and the tests."""
        provider = cdk.Stack.of(self).node.try_find_child(RESTRICT_DEFAULT_SG_PROVIDER)
        resource = self.vpc.node.try_find_child(RESTRICT_DEFAULT_SG_RESOURCE)
        if provider is None or resource is None:
            raise LookupError(
                f"CDK no longer adds {RESTRICT_DEFAULT_SG_PROVIDER} / {RESTRICT_DEFAULT_SG_RESOURCE} where "
                "LakeVpc expects them: check how restrict_default_security_group is implemented now"
            )
        for construct in (resource, provider):
            acknowledge(construct, HELPER_LAMBDA_RULE, RESTRICT_DEFAULT_SG_REASON)
