"""The security group of the lake's Glue connections: self-referencing, HTTPS out to S3 and the endpoints."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from constructs import Construct

HTTPS_PORT = 443


class GlueSecurityGroup(Construct):
    """Glue requires every port open between the workers of a job; anything else leaves only over HTTPS."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        endpoints: ec2.ISecurityGroup,
        s3_prefix_list_id: str,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Glue connections of the data lake: self-referencing, HTTPS to S3 and VPC endpoints",
            allow_all_outbound=False,
        )
        group = self.security_group
        # self-references cannot be inline (the group would refer to itself): separate rule resources
        group.add_ingress_rule(group, ec2.Port.all_tcp(), "Glue workers of one job reach each other")
        group.add_egress_rule(group, ec2.Port.all_tcp(), "Glue workers of one job reach each other")
        # The HTTPS rules are written inline on purpose: EC2 drops a new group's default allow-all egress
        # rule only when the group itself lists egress rules, not when rules are separate resources.
        resource = group.node.default_child
        if not isinstance(resource, ec2.CfnSecurityGroup):
            raise TypeError(f"expected the group's CfnSecurityGroup, got {type(resource).__name__}")
        resource.security_group_egress = [
            ec2.CfnSecurityGroup.EgressProperty(
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                destination_prefix_list_id=s3_prefix_list_id,
                description="S3 through the gateway endpoint",
            ),
            ec2.CfnSecurityGroup.EgressProperty(
                ip_protocol="tcp",
                from_port=HTTPS_PORT,
                to_port=HTTPS_PORT,
                destination_security_group_id=endpoints.security_group_id,
                description="AWS APIs through the interface endpoints",
            ),
        ]
