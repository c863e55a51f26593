"""The id of the region's AWS-managed S3 prefix list, looked up at deploy time (never at synth time)."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import custom_resources as cr
from constructs import Construct

from lake_pipelines.checks import acknowledge

RESPONSE_FIELD = "PrefixLists.0.PrefixListId"


class S3PrefixList(Construct):
    """Resolves `com.amazonaws.<region>.s3` to its `pl-…` id, which differs per region and has no CFN attribute."""

    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        region = cdk.Stack.of(self).region
        call = cr.AwsSdkCall(
            service="EC2",
            action="describeManagedPrefixLists",
            parameters={"Filters": [{"Name": "prefix-list-name", "Values": [f"com.amazonaws.{region}.s3"]}]},
            physical_resource_id=cr.PhysicalResourceId.from_response(RESPONSE_FIELD),
            output_paths=[RESPONSE_FIELD],
        )
        self.lookup = cr.AwsCustomResource(
            self,
            "Lookup",
            on_create=call,
            on_update=call,
            policy=cr.AwsCustomResourcePolicy.from_statements(
                [iam.PolicyStatement(actions=["ec2:DescribeManagedPrefixLists"], resources=["*"])]
            ),
            install_latest_aws_sdk=False,
        )
        acknowledge(
            self.lookup,
            "AwsSolutions-IAM5[Resource::*]",
            "ec2:DescribeManagedPrefixLists supports no resource-level permissions; the call only reads.",
        )
        lookup_role = self.lookup.grant_principal
        if not isinstance(lookup_role, iam.Role):
            raise TypeError(f"expected the lookup function's role, got {type(lookup_role).__name__}")
        acknowledge(
            lookup_role,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "The lookup function's role only writes its own logs through the AWS basic execution policy.",
        )
        self.prefix_list_id = self.lookup.get_response_field(RESPONSE_FIELD)
