"""What replaced the stage's helper Lambdas (issue 14): a committed S3 prefix list, the bucket's own EventBridge
configuration, and a guard against CDK's notifications Lambda coming back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_sns as sns

from datalake_infra.network.s3_prefix_list import (
    MissingPrefixListContext,
    context_key,
    s3_prefix_list,
    s3_prefix_list_name,
)
from datalake_infra.storage.lake_bucket import LakeBucket
from lake_pipelines.checks import lake_app

ACCOUNT = "666666666666"  # in no committed context on purpose
REGION = "eu-west-1"


def _stack(context: dict[str, Any] | None = None, outdir: Path | None = None) -> cdk.Stack:
    app = lake_app(context=context or {}, outdir=str(outdir) if outdir else None)
    return cdk.Stack(app, "S", env=cdk.Environment(account=ACCOUNT, region=REGION))


def test_the_context_key_is_the_one_cdks_prefix_list_lookup_asks_for(tmp_path: Path) -> None:
    stack = _stack(outdir=tmp_path)
    sns.Topic(stack, "Something")  # a stack needs a resource to synthesize
    ec2.PrefixList.from_lookup(stack, "Lookup", prefix_list_name=s3_prefix_list_name(REGION))
    stack.node.root.synth()  # type: ignore[attr-defined]
    missing = json.loads((tmp_path / "manifest.json").read_text())["missing"]
    assert [m["key"] for m in missing] == [context_key(stack, prefix_list_name=s3_prefix_list_name(REGION))]


def test_a_recorded_prefix_list_is_used_without_any_resource(s3_prefix_list_entry: Any) -> None:
    stack = _stack(s3_prefix_list_entry(ACCOUNT, REGION))
    prefix_list = s3_prefix_list(stack, "S3")
    assert stack.resolve(prefix_list.prefix_list_id) == "pl-6da54004"


def test_a_missing_entry_fails_synth_naming_the_key_and_the_command_to_run() -> None:
    stack = _stack()
    key = context_key(stack, prefix_list_name="com.amazonaws.eu-west-1.s3")
    with pytest.raises(MissingPrefixListContext) as raised:
        s3_prefix_list(stack, "S3")
    message = str(raised.value)
    assert key in message and ACCOUNT in message
    assert "aws ec2 describe-managed-prefix-lists --region eu-west-1" in message
    assert "Values=com.amazonaws.eu-west-1.s3" in message and "cdk.context.json" in message


@pytest.mark.parametrize(
    "recorded",
    [[], [{"PrefixListId": "pl-xxxxxxxx"}, {"PrefixListId": "pl-2"}], [{"Identifier": "x"}], "pl-6da54004"],
)
def test_a_malformed_entry_is_refused(recorded: Any) -> None:
    stack = _stack()
    key = context_key(stack, prefix_list_name=s3_prefix_list_name(REGION))
    stack = _stack({key: recorded})
    with pytest.raises(MissingPrefixListContext, match="must be a one-element list"):
        s3_prefix_list(stack, "S3")


def _bucket(event_bridge: bool) -> tuple[cdk.Stack, LakeBucket]:
    stack = _stack()
    return stack, LakeBucket(stack, "Zone", lifecycle_rules=[], retain=False, event_bridge=event_bridge)


def test_eventbridge_is_the_buckets_own_property_and_no_bucket_empties_itself() -> None:
    stack, bucket = _bucket(event_bridge=True)
    assert bucket.node.validate() == []  # the guard lets the L1 property through
    template: dict[str, Any] = cdk.assertions.Template.from_stack(stack).to_json()
    kinds = sorted(r["Type"] for r in template["Resources"].values())
    assert kinds == ["AWS::S3::Bucket", "AWS::S3::BucketPolicy"]  # no custom resource, no Lambda, no role
    (bucket,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::S3::Bucket"]
    assert bucket["Properties"]["NotificationConfiguration"] == {
        "EventBridgeConfiguration": {"EventBridgeEnabled": True}
    }
    assert bucket["DeletionPolicy"] == "Delete"


def test_notifications_added_through_the_l2_bucket_fail_synth() -> None:
    stack, bucket = _bucket(event_bridge=False)
    bucket.bucket.enable_event_bridge_notification()
    with pytest.raises(RuntimeError, match="Custom::S3BucketNotifications Lambda"):
        stack.node.root.synth()  # type: ignore[attr-defined]
