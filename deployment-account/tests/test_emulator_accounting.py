"""The emulator's CloudFormation leaves no supported resource of our templates' kinds without a physical id,
and every physical id it gives is one the existence checks find (moto server with the emulator's patches)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from lakeops.emulator.process import Emulator
from lakeops.rehearsal import report
from lakeops.rehearsal.report import Category

ACCOUNT, REGION = "111111111111", "eu-west-1"


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(tmp_path_factory.mktemp("emulator"), default_account=ACCOUNT, region=REGION) as emu:
        yield emu


def client_of(emu: Emulator) -> Any:
    env = emu.client_env()
    session = boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"], aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"]
    )
    return lambda service: session.client(
        service, region_name=REGION, endpoint_url=emu.endpoint_url, verify=str(emu.cert)
    )


GROUP_ID = {"Fn::GetAtt": ["Group", "GroupId"]}
# What the infra Network stack holds: Glue workers of one job reach each other through their own group.
NETWORK = {
    "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": "10.42.0.0/16"}},
    "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {"VpcId": {"Ref": "Vpc"}, "CidrBlock": "10.42.1.0/24"}},
    "Routes": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
    "Group": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "glue", "VpcId": {"Ref": "Vpc"}}},
    "SelfIngress": {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": GROUP_ID,
            "SourceSecurityGroupId": GROUP_ID,
            "IpProtocol": "tcp",
            "FromPort": 0,
            "ToPort": 65535,
            "Description": "Glue workers of one job reach each other",
        },
    },
    "SelfEgress": {
        "Type": "AWS::EC2::SecurityGroupEgress",
        "Properties": {
            "GroupId": GROUP_ID,
            "DestinationSecurityGroupId": GROUP_ID,
            "IpProtocol": "tcp",
            "FromPort": 0,
            "ToPort": 65535,
        },
    },
    # a Ref to the ingress resolves to its rule id, which the contract could publish
    "IngressRule": {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": "/lake/ingress-rule", "Type": "String", "Value": {"Ref": "SelfIngress"}},
    },
}
KEY_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "kms:*", "Resource": "*"}
    ],
}
STORAGE = {
    "Metadata": {"Type": "AWS::CDK::Metadata", "Properties": {"Analytics": "v2:deflate64:x"}},
    "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": KEY_POLICY}},
    "Raw": {"Type": "AWS::S3::Bucket"},
    "RawPolicy": {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {
            "Bucket": {"Ref": "Raw"},
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": {"AWS": "*"},
                        "Action": "s3:*",
                        "Resource": "*",
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    }
                ],
            },
        },
    },
    "RawName": {
        "Type": "AWS::SSM::Parameter",
        "Properties": {"Name": "/lake/raw", "Type": "String", "Value": {"Ref": "Raw"}, "Tags": {"lake": "dev"}},
    },
    "JobRole": {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}
                ],
            }
        },
    },
    "Database": {
        "Type": "AWS::Glue::Database",
        "Properties": {"CatalogId": ACCOUNT, "DatabaseInput": {"Name": "lake_raw"}},
    },
    "Secret": {"Type": "AWS::SecretsManager::Secret", "Properties": {"Name": "lake/global-config"}},
    "AutoDelete": {
        "Type": "Custom::S3AutoDeleteObjects",
        "Properties": {"ServiceToken": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:absent", "BucketName": "x"},
    },
    "Notifications": {
        "Type": "AWS::CodeStarNotifications::NotificationRule",
        "Properties": {"Name": "n", "DetailType": "FULL", "EventTypeIds": [], "Resource": "r", "Targets": []},
    },
}


def _deploy(cloudformation: Any, stack: str, resources: dict[str, Any], folder: Path) -> Path:
    template = {"Resources": resources}
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))
    for _ in range(50):
        status = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
        if not status.endswith("IN_PROGRESS"):
            break
        time.sleep(0.2)
    assert status == "CREATE_COMPLETE"
    template_file = folder / f"{stack}.template.json"
    template_file.write_text(json.dumps(template))
    return template_file


def test_the_security_group_ingress_is_created_with_its_rule_id(emulator: Emulator, tmp_path: Path) -> None:
    client = client_of(emulator)
    cloudformation = client("cloudformation")
    stack = report.stack_report(
        _deploy(cloudformation, "network", NETWORK, tmp_path), "network", ACCOUNT, cloudformation, client
    )
    ingress = next(r for r in stack.resources if r.logical_id == "SelfIngress")
    assert ingress.category is Category.CREATED
    assert ingress.physical_id.startswith("sgr-")
    assert ingress.checked_by == "ec2 describe_security_group_rules"
    rules = client("ec2").describe_security_group_rules(SecurityGroupRuleIds=[ingress.physical_id])
    assert rules["SecurityGroupRules"][0]["IsEgress"] is False
    assert client("ssm").get_parameter(Name="/lake/ingress-rule")["Parameter"]["Value"] == ingress.physical_id
    assert stack.created == stack.in_template == len(NETWORK)


def test_every_kind_of_resource_is_accounted_for(emulator: Emulator, tmp_path: Path) -> None:
    client = client_of(emulator)
    cloudformation = client("cloudformation")
    stack = report.stack_report(
        _deploy(cloudformation, "storage", STORAGE, tmp_path), "storage", ACCOUNT, cloudformation, client
    )
    categories = {r.logical_id: r.category for r in stack.resources}
    assert categories.pop("AutoDelete") is Category.HANDLER_NOT_RUN
    assert categories.pop("Notifications") is Category.NOT_EMULATED
    assert set(categories.values()) == {Category.CREATED}
    # every created resource of a type with a check was found by it, through the emulator's own API
    checked = {r.logical_id for r in stack.resources if r.checked_by}
    assert checked == {"Key", "Raw", "RawPolicy", "RawName", "JobRole", "Database", "Secret"}
    assert stack.metadata == 1
