"""The environment's alarm topic: encrypted with its own key, TLS-only, e-mailing the configured people."""

from __future__ import annotations

from collections.abc import Sequence

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from datalake_infra.customer_key import CustomerKey
from lake_pipelines.key_policies import cloudwatch_alarms_publish_statement, eventbridge_publishes_statement

# CloudWatch alarms and EventBridge rules (e.g. Glue job state changes) of this account publish here.
PUBLISHING_SERVICES = ("cloudwatch.amazonaws.com", "events.amazonaws.com")


class AlarmTopic(Construct):
    """An SNS topic for the lake's alarms, with a key of its own so publishers never touch the data key."""

    def __init__(
        self, scope: Construct, construct_id: str, *, display_name: str, emails: Sequence[str], retain: bool
    ) -> None:
        super().__init__(scope, construct_id)
        account = cdk.Stack.of(self).account
        same_account = {"StringEquals": {"aws:SourceAccount": account}}
        self.key = CustomerKey(
            self,
            "Key",
            description=f"{display_name}: encrypts the alarm topic's messages",
            retain=retain,
            service_statements=[cloudwatch_alarms_publish_statement(), eventbridge_publishes_statement()],
        ).key
        self.topic = sns.Topic(self, "Topic", display_name=display_name, master_key=self.key, enforce_ssl=True)
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AlarmPublishersOfThisAccount",
                principals=[iam.ServicePrincipal(service) for service in PUBLISHING_SERVICES],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions=same_account,
            )
        )
        for email in emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
