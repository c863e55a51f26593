"""Values the infra app (and this app's shared stack) publish in SSM, read by CloudFormation at deploy time.

Every accessor returns a token backed by an `AWS::SSM::Parameter::Value<...>` template parameter of the
stack it is called for: no synth-time lookup, no export, and a changed value only needs a redeploy.
There is one template parameter per SSM name and stack, so calling an accessor twice is free.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from constructs import Construct

from datalake_config import EnvironmentNames


class DeployTimeContract:
    """Reads the SSM contract in one stack: bucket names/ARNs, keys, network, topic, audit table."""

    def __init__(self, stack: cdk.Stack, names: EnvironmentNames) -> None:
        self.stack = stack
        self.names = names

    def _parameter(self, path: str, type_: str) -> cdk.CfnParameter:
        # Short logical ids (`ContractBucketsRawArn`): every reference repeats the id, and at hundreds of
        # jobs per stack the template size, not the resource count, is the limit that binds first.
        words = re.split(r"[^A-Za-z0-9]+", path.removeprefix(self.names.parameter("")))
        logical_id = "".join(word[:1].upper() + word[1:] for word in words)
        existing = self.stack.node.try_find_child(logical_id)
        if isinstance(existing, cdk.CfnParameter):
            return existing
        return cdk.CfnParameter(self.stack, logical_id, type=type_, default=path, description=f"SSM: {path}")

    def _value(self, path: str) -> str:
        return self._parameter(path, "AWS::SSM::Parameter::Value<String>").value_as_string

    def _list(self, path: str) -> Sequence[str]:
        return self._parameter(path, "AWS::SSM::Parameter::Value<List<String>>").value_as_list

    def bucket_name(self, zone: str) -> str:
        return self._value(self.names.bucket_name(zone))

    def bucket_arn(self, zone: str) -> str:
        return self._value(self.names.bucket_arn(zone))

    def s3_url(self, zone: str, prefix: str) -> str:
        return f"s3://{self.bucket_name(zone)}/{prefix}"

    @property
    def data_key_arn(self) -> str:
        return self._value(self.names.data_key_arn)

    @property
    def alarm_topic_arn(self) -> str:
        return self._value(self.names.alarm_topic_arn)

    @property
    def alarm_topic_key_arn(self) -> str:
        return self._value(self.names.alarm_topic_key_arn)

    @property
    def private_subnet_ids(self) -> Sequence[str]:
        return self._list(self.names.private_subnet_ids)

    @property
    def subnet_availability_zones(self) -> Sequence[str]:
        return self._list(self.names.subnet_availability_zones)

    @property
    def glue_security_group_id(self) -> str:
        return self._value(self.names.glue_security_group_id)

    @property
    def etl_key_arn(self) -> str:
        return self._value(self.names.etl_key_arn)

    @property
    def audit_table_name(self) -> str:
        return self._value(self.names.audit_table_name)

    @property
    def audit_table_arn(self) -> str:
        return self._value(self.names.audit_table_arn)

    def data_key(self, scope: Construct) -> kms.IKey:
        return kms.Key.from_key_arn(scope, "DataKey", self.data_key_arn)

    def etl_key(self, scope: Construct) -> kms.IKey:
        return kms.Key.from_key_arn(scope, "EtlKey", self.etl_key_arn)

    def alarm_topic(self, scope: Construct) -> sns.ITopic:
        return sns.Topic.from_topic_arn(scope, "AlarmTopic", self.alarm_topic_arn)
