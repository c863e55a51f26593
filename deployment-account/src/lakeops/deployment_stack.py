"""The deployment-account stack: source repositories, the global-config secret and the pipeline topic."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from datalake_config import LakeConfig, lake_names, tags
from datalake_config.model import CodeCommitSource
from datalake_config.naming import REPOSITORIES
from lakeops.checks import acknowledge

CODESTAR_NOTIFICATIONS = "codestar-notifications.amazonaws.com"


class DeploymentAccountStack(cdk.Stack):
    """What every pipeline in the deployment account shares: repositories, global-config secret, topic."""

    def __init__(self, scope: Construct, construct_id: str, *, config: LakeConfig, **kwargs: object) -> None:
        deployment = config.deployment
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=deployment.account, region=deployment.region),
            description=f"{config.prefix}: repositories, global-config secret and pipeline topic",
            # the secret and the repositories outlive any mistaken `cdk destroy`
            termination_protection=True,
            tags=tags(config),
            **kwargs,  # type: ignore[arg-type]
        )
        lake = lake_names(config)

        # CodeCommit creates a repository without branches: the first push of each environment branch
        # (`git push origin dev test prod`) creates them, and only then can its pipeline start.
        self.repositories: dict[str, codecommit.Repository] = {}
        for kind in REPOSITORIES:
            source = config.repository(kind).source
            if isinstance(source, CodeCommitSource):
                repository = codecommit.Repository(
                    self,
                    f"{kind.capitalize()}Repository",
                    repository_name=source.repository_name,  # the pipelines find it by this name
                    description=f"{config.organisation}: data lake {kind} repository "
                    f"(branches {', '.join(config.branch_for(kind, e) for e in config.environment_names)})",
                )
                repository.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
                self.repositories[kind] = repository

        self.config_key = kms.Key(
            self,
            "GlobalConfigKey",
            description=f"{config.prefix}: encrypts the global-config secret",
            enable_key_rotation=True,
            alias=lake.global_config_key_alias,  # the synth roles may decrypt through this alias only
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # L1 on purpose: the L2 Secret generates a random value when given none, and the value must come
        # from `lakeops config publish` only, never from the template.
        self.config_secret = secretsmanager.CfnSecret(
            self,
            "GlobalConfigSecret",
            name=lake.global_config_secret,  # the pipelines' synth step reads it by this name
            description=f"{config.prefix}: the validated shared config (JSON), written by lakeops config publish",
            kms_key_id=self.config_key.key_arn,
        )
        self.config_secret.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        acknowledge(
            self.config_secret,
            "AwsSolutions-SMG4",
            "The secret holds the published shared configuration, not a credential; a new value comes from "
            "`lakeops config publish`, so there is nothing for a rotation function to rotate.",
        )

        self.topic_key = kms.Key(
            self,
            "PipelineTopicKey",
            description=f"{config.prefix}: encrypts the pipeline notification topic",
            enable_key_rotation=True,
            alias=lake.pipeline_topic_key_alias,
        )
        # CodeStar Notifications publishes into the encrypted topic and so needs the key, through SNS only.
        self.topic_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CodeStarNotificationsPublishThroughSns",
                principals=[iam.ServicePrincipal(CODESTAR_NOTIFICATIONS)],
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=["*"],  # in a key policy `*` means this key
                conditions={
                    "StringEquals": {
                        "kms:ViaService": f"sns.{deployment.region}.amazonaws.com",
                        "aws:SourceAccount": deployment.account,
                    }
                },
            )
        )
        self.topic = sns.Topic(
            self,
            "PipelineTopic",
            topic_name=lake.pipeline_topic,  # the pipeline stacks address it by name (no exports)
            display_name=f"{config.prefix} pipelines",
            master_key=self.topic_key,
            enforce_ssl=True,
        )
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CodeStarNotificationsFromThisAccount",
                principals=[iam.ServicePrincipal(CODESTAR_NOTIFICATIONS)],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": deployment.account}},
            )
        )
        for email in config.notifications.emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))

        cdk.CfnOutput(self, "GlobalConfigSecretName", value=lake.global_config_secret)
        cdk.CfnOutput(self, "PipelineTopicArn", value=self.topic.topic_arn)
