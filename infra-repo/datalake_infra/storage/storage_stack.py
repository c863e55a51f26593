"""The stateful data stack: data key, zone buckets, access-log bucket and alarm topic, plus their contract."""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_infra.contract import ContractValue
from datalake_infra.customer_key import CustomerKey
from datalake_infra.storage import lifecycle
from datalake_infra.storage.alarm_topic import AlarmTopic
from datalake_infra.storage.lake_bucket import LakeBucket
from lake_pipelines.key_policies import cloudwatch_logs_statement


class StorageStack(cdk.Stack):
    """Everything that holds the lake's data; retained and termination-protected where `retain_data` says so."""

    def __init__(
        self, scope: Construct, construct_id: str, *, config: LakeConfig, env_name: str, **kwargs: Any
    ) -> None:
        target = config.env(env_name)
        super().__init__(scope, construct_id, termination_protection=target.retain_data, **kwargs)
        names = names_for(config, env_name)
        retain = target.retain_data
        label = f"{config.prefix} {env_name}"

        self.data_key = CustomerKey(
            self,
            "DataKey",
            description=f"{label}: encrypts the lake's zone buckets, catalog and log groups",
            retain=retain,
            service_statements=[cloudwatch_logs_statement(self)],
        ).key
        self.access_logs = LakeBucket(
            self, "AccessLogs", lifecycle_rules=lifecycle.access_log_rules(target.lifecycle), retain=retain
        ).bucket
        self.zone_buckets = {
            zone: LakeBucket(
                self,
                f"{zone.capitalize()}Zone",
                lifecycle_rules=lifecycle.zone_rules(
                    target.lifecycle,
                    expire_after_days=target.lifecycle.raw_expiration_days if zone == config.raw_zone else None,
                ),
                retain=retain,
                encryption_key=self.data_key,
                access_logs=self.access_logs,
                access_logs_prefix=f"{zone}/",
                # ETL job groups start on `Object Created` events from the zone that receives incoming data.
                event_bridge=zone == config.raw_zone,
            ).bucket
            for zone in config.zones
        }
        alarms = AlarmTopic(
            self,
            "Alarms",
            display_name=f"{label} data lake alarms",
            emails=config.notification_emails(env_name),
            retain=retain,
        )
        self.alarm_topic = alarms.topic
        self.alarm_topic_key = alarms.key

        for zone, bucket in self.zone_buckets.items():
            ContractValue(
                self,
                f"{zone.capitalize()}BucketName",
                names=names,
                path=names.bucket_name(zone),
                value=bucket.bucket_name,
            )
            ContractValue(
                self, f"{zone.capitalize()}BucketArn", names=names, path=names.bucket_arn(zone), value=bucket.bucket_arn
            )
        ContractValue(self, "DataKeyArn", names=names, path=names.data_key_arn, value=self.data_key.key_arn)
        ContractValue(self, "AlarmTopicArn", names=names, path=names.alarm_topic_arn, value=self.alarm_topic.topic_arn)
        # Publishers with IAM roles (the ETL state machines) need this key as well as sns:Publish.
        ContractValue(
            self, "AlarmTopicKeyArn", names=names, path=names.alarm_topic_key_arn, value=self.alarm_topic_key.key_arn
        )
