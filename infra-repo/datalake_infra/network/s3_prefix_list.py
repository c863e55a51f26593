"""The id of the region's AWS-managed S3 prefix list, from committed context (never looked up during synth)."""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_ec2 as ec2
from constructs import Construct

# cloud_assembly_schema.ContextProvider.CC_API_PROVIDER: jsii hands Python the member's name, not this value.
CC_API_PROVIDER = "cc-api-provider"
PREFIX_LIST_TYPE = "AWS::EC2::PrefixList"
# What `ec2.PrefixList.from_lookup` asks CDK's Cloud Control context provider for; the context key is derived
# from these, so they must stay exactly the lookup's (a test pins the key against the one CDK reports).
RETURNED_PROPERTY = "PrefixListId"
EXPECTED_MATCH_COUNT = "exactly-one"


class MissingPrefixListContext(ValueError):
    """cdk.context.json has no entry for the prefix list: synth refuses to go on with a dummy id."""


def s3_prefix_list_name(region: str) -> str:
    """The name AWS gives the prefix list of S3's public ranges in `region` (what the gateway endpoint routes)."""
    return f"com.amazonaws.{region}.s3"


def context_key(scope: Construct, *, prefix_list_name: str) -> str:
    """The cdk.context.json key under which `ec2.PrefixList.from_lookup` finds the list, for scope's account/region."""
    return cdk.ContextProvider.get_key(
        scope,
        provider=CC_API_PROVIDER,
        props={
            "typeName": PREFIX_LIST_TYPE,
            "propertyMatch": {"PrefixListName": prefix_list_name},
            "propertiesToReturn": [RETURNED_PROPERTY],
            "expectedMatchCount": EXPECTED_MATCH_COUNT,
        },
    ).key


def s3_prefix_list(scope: Construct, construct_id: str) -> ec2.IPrefixList:
    """The S3 prefix list of scope's region, resolved at synth from cdk.context.json (no custom resource).

    CloudFormation has no attribute for it (AWS::EC2::VPCEndpoint returns no prefix list id), which is why an
    AwsCustomResource used to call DescribeManagedPrefixLists at deploy time. AWS-managed prefix list ids are
    fixed per region, so a committed context entry is as good and keeps a Lambda out of the stack.
    """
    stack = cdk.Stack.of(scope)
    name = s3_prefix_list_name(stack.region)
    key = context_key(scope, prefix_list_name=name)
    recorded: Any = scope.node.try_get_context(key)
    if recorded is None:
        entry = json.dumps({key: [{RETURNED_PROPERTY: "<id>", "Identifier": "<id>"}]})
        # Failing here, not falling back to CDK's dummy `pl-xxxxxxxx`: a wrong id would deploy an egress rule to
        # nowhere, and synth must never reach out to an account to look it up.
        raise MissingPrefixListContext(
            f"cdk.context.json has no '{key}' (the {name} prefix list of account {stack.account}). Look it up with "
            f"`aws ec2 describe-managed-prefix-lists --region {stack.region} --filters "
            f"Name=prefix-list-name,Values={name} --query 'PrefixLists[0].PrefixListId' --output text` "
            f"(credentials of {stack.account}), then add {entry} with that id to the app's cdk.context.json "
            "and commit it."
        )
    if (
        not isinstance(recorded, list)
        or len(recorded) != 1
        or not isinstance(recorded[0], dict)
        or not str(recorded[0].get(RETURNED_PROPERTY, "")).startswith("pl-")
    ):
        raise MissingPrefixListContext(
            f"context '{key}' must be a one-element list like [{{'{RETURNED_PROPERTY}': 'pl-…'}}], got {recorded!r}"
        )
    return ec2.PrefixList.from_lookup(scope, construct_id, prefix_list_name=name)
