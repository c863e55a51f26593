"""The deployment-account stack: source repositories, the global-config secret, the pipeline topic and the
team's package index."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_codeartifact as codeartifact
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from datalake_config import LakeConfig, lake_names, tags
from datalake_config.model import CodeCommitSource
from datalake_config.naming import PUBLIC_PYPI_CONNECTION, REPOSITORIES, TEAM_PACKAGE_GROUP
from datalake_config.publish import approvers
from lake_pipelines.checks import acknowledge
from lake_pipelines.key_policies import codestar_notifications_statement
from lake_pipelines.pipeline import approval_action_arn, stage_name

CODESTAR_NOTIFICATIONS = "codestar-notifications.amazonaws.com"


class DeploymentAccountStack(cdk.Stack):
    """What every pipeline in the deployment account shares: repositories, config secret, topic, package index."""

    def __init__(self, scope: Construct, construct_id: str, *, config: LakeConfig, **kwargs: object) -> None:
        deployment = config.deployment
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=deployment.account, region=deployment.region),
            description=f"{config.prefix}: repositories, global-config secret, pipeline topic and package index",
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
        self.branch_protection = self._branch_protection(config)
        self.approval_restriction = self._approval_restriction(config)

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
        self.topic_key.add_to_resource_policy(codestar_notifications_statement(deployment.region))
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

        self._package_index(config)

        cdk.CfnOutput(self, "GlobalConfigSecretName", value=lake.global_config_secret)
        cdk.CfnOutput(self, "PipelineTopicArn", value=self.topic.topic_arn)
        cdk.CfnOutput(self, "PackageDomainName", value=lake.package_domain)
        cdk.CfnOutput(self, "PackageRepositoryName", value=lake.package_repository)

    def _branch_protection(self, config: LakeConfig) -> iam.ManagedPolicy | None:
        """A managed policy denying direct pushes, merges and deletes on every environment branch but the first.

        CodeCommit has no repository policy, so protection is an identity policy: attach it to the developers'
        roles or groups (everyone but whoever runs `lakeops promote --push`). It is the CodeCommit User Guide's
        "limit pushes and merges to branches" statement (`codecommit:References`, with the Null condition so a
        call that names no reference is not let through). The promotion guard holds even without it.
        """
        if not self.repositories:
            return None
        protected = {
            f"refs/heads/{config.branch_for(kind, env)}"
            for kind in self.repositories
            for env in config.environment_names[1:]
        }
        policy = iam.ManagedPolicy(
            self,
            "EnvironmentBranchProtection",
            managed_policy_name=f"{config.prefix}-environment-branch-protection",
            description="Attach to developers: environment branches after the first move only by lakeops promote",
            statements=[
                iam.PolicyStatement(
                    sid="OnlyPromotionsMoveEnvironmentBranches",
                    effect=iam.Effect.DENY,
                    actions=[
                        "codecommit:GitPush",
                        "codecommit:DeleteBranch",
                        "codecommit:PutFile",
                        "codecommit:MergeBranchesByFastForward",
                        "codecommit:MergeBranchesBySquash",
                        "codecommit:MergeBranchesByThreeWay",
                        "codecommit:MergePullRequestByFastForward",
                        "codecommit:MergePullRequestBySquash",
                        "codecommit:MergePullRequestByThreeWay",
                    ],
                    resources=[r.repository_arn for r in self.repositories.values()],
                    conditions={
                        "StringEqualsIfExists": {"codecommit:References": sorted(protected)},
                        "Null": {"codecommit:References": "false"},
                    },
                )
            ],
        )
        cdk.CfnOutput(self, "EnvironmentBranchProtectionPolicy", value=policy.managed_policy_arn)
        return policy

    def _approval_restriction(self, config: LakeConfig) -> iam.ManagedPolicy | None:
        """A managed policy denying the approval of an environment's deployments to all but its approvers.

        CodePipeline has no resource policy, so who may call `codepipeline:PutApprovalResult` is decided by
        identity policies in this account: attach this one to every role or group that can use the pipelines
        (or put the same statement in a service control policy). One statement per environment that requires
        approval, on its approval actions (resource type `action`: pipeline/stage/action, IAM service
        authorization reference for CodePipeline), with `ArnNotLike aws:PrincipalArn` on its approvers (the
        role's ARN for an assumed-role session, so an approver's own sessions are let through).
        """
        statements = []
        for env in config.environment_names:
            if not config.env(env).require_approval:
                continue
            statements.append(
                iam.PolicyStatement(
                    sid=f"OnlyApproversApprove{stage_name(env)}",
                    effect=iam.Effect.DENY,
                    actions=["codepipeline:PutApprovalResult"],
                    resources=[approval_action_arn(self, config, kind, env) for kind in REPOSITORIES],
                    conditions={"ArnNotLike": {"aws:PrincipalArn": approvers(config, env)}},
                )
            )
        if not statements:
            return None
        policy = iam.ManagedPolicy(
            self,
            "ApprovalRestriction",
            managed_policy_name=f"{config.prefix}-approval-restriction",
            description="Attach to everyone who uses the pipelines: only the configured approvers approve",
            statements=statements,
        )
        cdk.CfnOutput(self, "ApprovalRestrictionPolicy", value=policy.managed_policy_arn)
        return policy

    def _package_index(self, config: LakeConfig) -> None:
        """The CodeArtifact domain the pipelines install the team's packages from, the public index as upstream."""
        lake = lake_names(config)
        deployment = config.deployment
        # The domain cannot change its key (EncryptionKey is create-only) and its assets stay encrypted with
        # it, so the key outlives the stack like the domain does.
        self.package_key = kms.Key(
            self,
            "PackageIndexKey",
            description=f"{config.prefix}: encrypts the package index (CodeArtifact domain {lake.package_domain})",
            enable_key_rotation=True,
            alias=lake.package_key_alias,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        # AWS's key policy for a CodeArtifact domain key ("Example AWS KMS key policy" in
        # https://docs.aws.amazon.com/codeartifact/latest/ug/domain-create.html): CodeArtifact creates a
        # grant on the key when the domain is created and uses that grant to encrypt and decrypt assets, so the
        # principals of this account need only CreateGrant and DescribeKey, and only through CodeArtifact.
        # Readers and publishers are never granted kms:Decrypt: the service decrypts through its grant.
        self.package_key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CodeArtifactDomainOfThisAccount",
                principals=[iam.AnyPrincipal()],
                actions=["kms:CreateGrant", "kms:DescribeKey"],
                resources=["*"],  # in a key policy `*` means this key
                conditions={
                    "StringEquals": {
                        "kms:CallerAccount": deployment.account,
                        "kms:ViaService": f"codeartifact.{deployment.region}.amazonaws.com",
                    }
                },
            )
        )
        self.package_domain = codeartifact.CfnDomain(
            self,
            "PackageDomain",
            domain_name=lake.package_domain,  # the pipelines log in to it by this name
            encryption_key=self.package_key.key_arn,
        )
        # Two repositories: CodeArtifact keeps every version fetched through an external connection in the
        # repository holding the connection, so the upstream is the record of everything ever taken from the
        # public index, kept apart from what the team publishes; the team repository reaches public packages
        # through it (docs.aws.amazon.com/codeartifact/latest/ug/repo-upstream-behavior.html).
        self.package_upstream_repository = codeartifact.CfnRepository(
            self,
            "PackageUpstreamRepository",
            domain_name=self.package_domain.attr_name,
            repository_name=lake.package_upstream_repository,
            description=f"{config.prefix}: packages from the public Python index, as first requested",
            external_connections=[PUBLIC_PYPI_CONNECTION],
        )
        self.package_repository = codeartifact.CfnRepository(
            self,
            "PackageRepository",
            domain_name=self.package_domain.attr_name,
            repository_name=lake.package_repository,
            description=f"{config.prefix}: the team's Python packages; public packages through its upstream",
            upstreams=[self.package_upstream_repository.attr_name],
        )
        # Origin controls against dependency confusion, for every repository of the domain: a version of a
        # gluelake-* package enters only by being published to the domain (Publish ALLOW); the public index is
        # never asked for one (ExternalUpstream BLOCK), even when a name is missing here, so a public package
        # of that name can never be installed instead; and a repository may still take the team's versions
        # from an upstream of the same domain (InternalUpstream ALLOW), which holds nothing the external
        # connection brought in, since that path is blocked for these names.
        allow = codeartifact.CfnPackageGroup.RestrictionTypeProperty(restriction_mode="ALLOW")
        self.team_package_group = codeartifact.CfnPackageGroup(
            self,
            "TeamPackageGroup",
            domain_name=self.package_domain.attr_name,
            pattern=TEAM_PACKAGE_GROUP,
            description=f"{config.prefix}: the team's own packages, never taken from the public index",
            origin_configuration=codeartifact.CfnPackageGroup.OriginConfigurationProperty(
                restrictions=codeartifact.CfnPackageGroup.RestrictionsProperty(
                    publish=allow,
                    external_upstream=codeartifact.CfnPackageGroup.RestrictionTypeProperty(restriction_mode="BLOCK"),
                    internal_upstream=allow,
                )
            ),
        )
        # The domain and the repositories hold every published version of the team's packages: a stack
        # deletion or replacement must not take them along.
        for resource in (self.package_domain, self.package_upstream_repository, self.package_repository):
            resource.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
