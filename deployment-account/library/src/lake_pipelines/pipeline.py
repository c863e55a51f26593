"""The branch pipeline: one self-mutating CDK pipeline per repository branch, hosted in the deployment account."""

from __future__ import annotations

import json
from collections.abc import Callable

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codecommit as codecommit
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codestarnotifications as notifications
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from aws_cdk import aws_ssm as ssm
from aws_cdk import pipelines
from constructs import Construct, IConstruct

from datalake_config import LakeConfig, lake_names, names_for, tags
from datalake_config.model import CodeCommitSource, ConnectionSource
from datalake_config.publish import approvers
from lake_pipelines import buildspec
from lake_pipelines.checks import acknowledge, enable_nag
from lake_pipelines.execution_policy import bootstrap_role_name
from lake_pipelines.generated_grants import GeneratedGrants, flatten
from lake_pipelines.role_boundary import bound_pipeline_roles

StageFactory = Callable[[Construct, str, str], cdk.Stage]

# The CDK CLI the pipeline's self-mutation and asset steps install; package.json pins the same version
# for local use (a test keeps the two equal).
CDK_CLI_VERSION = "2.1148.1"

NOTIFIED_EVENTS = (
    "codepipeline-pipeline-pipeline-execution-failed",
    "codepipeline-pipeline-pipeline-execution-succeeded",
    "codepipeline-pipeline-manual-approval-needed",
)

# Glue 5.0 runs Python 3.11; the CDK CLI needs Node 20 or later.
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}

# `aws codeartifact login` gets its token through an STS bearer token minted for this service name.
CODEARTIFACT_SERVICE = "codeartifact.amazonaws.com"
CODEARTIFACT_LOGIN_REASON = (
    "sts:GetServiceBearerToken supports no resource type (IAM service authorization reference for STS), so "
    "its resource must be `*`; the statement allows it only for CodeArtifact (sts:AWSServiceName), which "
    "`aws codeartifact login` needs before pip can install from the team's package repository."
)


CODESTAR_USE_CONNECTION = "codestar-connections:UseConnection"

# Explicit step timeouts (CodeBuild's default is 60 minutes for every step). The verify role's credentials renew
# themselves (lake_pipelines.verify), so a check may outlast the one-hour cap of a chained role session.
SYNTH_TIMEOUT = cdk.Duration.minutes(60)
VERIFY_TIMEOUT = cdk.Duration.hours(3)
VERIFY_READ_ONLY_TIMEOUT = cdk.Duration.minutes(20)

# The ETL stacks read the SSM contract the infra stacks write: a verified infra deployment of an environment
# starts that environment's ETL pipeline, so a first ETL run that found no contract yet, or a contract value
# that changed, is deployed again without anyone pushing.
DOWNSTREAM = {"infra": "etl"}

# How long a superseded version of a pipeline artifact is kept.
ARTIFACT_NONCURRENT_DAYS = 30

# The manual approval's action name, in the stage named after the environment (`prod` → `Prod`).
APPROVAL_ACTION = "Approve"


def stage_name(environment: str) -> str:
    """The pipeline stage deploying an environment (CDK Pipelines names it after the Stage's construct id)."""
    return environment.capitalize()


def approval_action_arn(scope: Construct, config: LakeConfig, repository: str, environment: str) -> str:
    """The resource `codepipeline:PutApprovalResult` acts on: pipeline/stage/action (IAM service authorization
    reference for CodePipeline, resource type `action`)."""
    pipeline = names_for(config, environment).pipeline_name(repository)
    return cdk.Stack.of(scope).format_arn(
        service="codepipeline",
        region=config.deployment.region,
        account=config.deployment.account,
        resource=pipeline,
        resource_name=f"{stage_name(environment)}/{APPROVAL_ACTION}",
        arn_format=cdk.ArnFormat.SLASH_RESOURCE_NAME,
    )


def use_connection_action(connection_arn: str) -> str:
    """`UseConnection` under the connection ARN's own service prefix (codeconnections or codestar-connections)."""
    return f"{connection_arn.split(':')[2]}:UseConnection"


class BranchPipelineStack(cdk.Stack):
    """A pipeline in the deployment account deploying one repository branch to its environment's account."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        repository: str,
        environment: str,
        stage_factory: StageFactory,
        verify_module: str,
        **kwargs: object,
    ) -> None:
        config.repository(repository)  # KeyError naming the known repositories
        config.env(environment)  # KeyError naming the configured environments
        deployment = config.deployment
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=deployment.account, region=deployment.region),
            description=f"{config.prefix}: {repository} pipeline for the {environment} branch",
            tags=tags(config, environment, repository),
            **kwargs,  # type: ignore[arg-type]
        )
        self.config = config
        self.repository_kind = repository
        self.environment_name = environment
        names = names_for(config, environment)
        lake = lake_names(config)
        target = config.env(environment)
        branch = config.branch_for(repository, environment)

        self.source = self._source(branch)
        # Both steps that install the repository's Python requirements log in to the team's package index first.
        index_login = buildspec.index_login_commands(
            lake.package_domain, deployment.account, lake.package_repository, deployment.region
        )
        # The promotion guard is the synth step's first command: a commit that did not go through the previous
        # environment stops before it can change anything, its own pipeline (self-mutation) included.
        previous = config.previous_environment(environment)
        guard = (
            buildspec.promotion_guard_commands(
                names_for(config, previous).pipeline_name(repository), previous, environment, deployment.region
            )
            if previous is not None
            else []
        )
        self.synth_step = pipelines.CodeBuildStep(
            "Synth",
            input=self.source,
            env={buildspec.SOURCE_COMMIT_VARIABLE: self.source.source_attribute("CommitId")},
            install_commands=[*guard, *buildspec.install_commands(index_login=index_login)],
            commands=[
                *buildspec.pull_config_commands(lake.global_config_secret, deployment.region),
                *buildspec.check_commands(),
                *buildspec.synth_commands(),
            ],
            primary_output_directory=buildspec.CDK_OUT,
            timeout=SYNTH_TIMEOUT,
            role_policy_statements=[
                *self._global_config_read_statements(),
                *self._package_index_read_statements(),
                *self._promotion_guard_statements(previous),
            ],
        )
        # The pulled config travels to the verify step as an artifact, so only the synth role reads the secret.
        self.config_output = self.synth_step.add_output_directory(buildspec.CONFIG_DIRECTORY)

        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=names.pipeline_name(repository),
            pipeline_type=codepipeline.PipelineType.V2,
            synth=self.synth_step,
            cross_account_keys=True,
            enable_key_rotation=True,
            self_mutation=True,
            # One CodeBuild project publishes every file asset: one project per asset would put hundreds of
            # projects (and their role grants) into this stack once a repository holds hundreds of Glue scripts.
            publish_assets_in_parallel=False,
            cli_version=CDK_CLI_VERSION,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=codebuild.LinuxBuildImage.STANDARD_7_0),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
        )

        self.stage = stage_factory(self, stage_name(environment), environment)
        enable_nag(self.stage)
        self.pre_steps: list[pipelines.Step] = []
        self.contract_check_step = self._contract_check_step(target.account, target.region)
        if self.contract_check_step is not None:
            self.pre_steps.append(self.contract_check_step)
        self.approval_step: pipelines.ManualApprovalStep | None = None
        if target.require_approval:
            # Nobody is asked to approve a commit the guard refused: the guard ran in synth, before this.
            self.approval_step = pipelines.ManualApprovalStep(
                APPROVAL_ACTION,
                comment=f"Deploy {repository} commit to {environment} (account {target.account})? "
                f"Approvers: {', '.join(approvers(config, environment))}",
            )
            if self.contract_check_step is not None:
                self.approval_step.add_step_dependency(self.contract_check_step)
            self.pre_steps.append(self.approval_step)

        self.verify_role_arn = self.format_arn(
            service="iam",
            region="",
            account=target.account,
            resource="role",
            resource_name=names.verify_role_name(repository),
        )
        # Named: the verify role in the target trusts this role alone (lake_pipelines.trust). In the pipeline's
        # scope, where CDK Pipelines puts the roles it creates, so its generated grants are acknowledged alike.
        self.verify_step_role = iam.Role(
            self.pipeline,
            "VerifyStepRole",
            role_name=names.verify_step_role_name(repository),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"{config.prefix}: the {repository} pipeline's Verify step in {environment}",
        )
        self.verify_step = pipelines.CodeBuildStep(
            "Verify",
            role=self.verify_step_role,
            input=self.source,
            additional_inputs={buildspec.CONFIG_DIRECTORY: self.config_output},
            install_commands=buildspec.python_install_commands(index_login=index_login),
            commands=buildspec.verify_commands(verify_module, environment, self.verify_role_arn, target.region),
            # where data is retained the checks only read; elsewhere they run every job of the environment
            timeout=VERIFY_READ_ONLY_TIMEOUT if target.retain_data else VERIFY_TIMEOUT,
            role_policy_statements=[
                iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[self.verify_role_arn]),
                *self._package_index_read_statements(),
            ],
        )
        self.protect_step = self._termination_protection_step(target.account, target.region)
        post = [self.verify_step]
        if self.protect_step is not None:
            self.verify_step.add_step_dependency(self.protect_step)
            post.insert(0, self.protect_step)
        self.downstream_step = self._start_downstream_step(environment)
        if self.downstream_step is not None:
            self.downstream_step.add_step_dependency(self.verify_step)
            post.append(self.downstream_step)
        self.pipeline.add_stage(self.stage, pre=self.pre_steps, post=post)

        self.pipeline.build_pipeline()
        self._version_the_artifact_bucket()
        self._name_the_build_projects(names.pipeline_name(repository))
        # What the pipeline's roles may do is capped like the stages' roles: the deployment account's execution
        # policy creates a role only with this boundary (policies/pipeline-role-boundary.json).
        bound_pipeline_roles(self, config)
        self.topic = sns.Topic.from_topic_arn(
            self,
            "PipelineTopic",
            self.format_arn(service="sns", resource=lake.pipeline_topic, arn_format=cdk.ArnFormat.NO_RESOURCE_NAME),
        )
        self.notification_rule = notifications.NotificationRule(
            self,
            "Notifications",
            source=self.pipeline.pipeline,
            events=list(NOTIFIED_EVENTS),
            targets=[self.topic],
            detail_type=notifications.DetailType.BASIC,
        )
        self._use_connection_with_its_own_prefix()
        self._acknowledge_generated()
        for step in (self.synth_step, self.verify_step):
            self._acknowledge_bearer_token(step)

    # --- source -----------------------------------------------------------------------------------
    def _source(self, branch: str) -> pipelines.CodePipelineSource:
        source = self.config.repository(self.repository_kind).source
        if isinstance(source, CodeCommitSource):
            self.codecommit_repository: codecommit.IRepository | None = codecommit.Repository.from_repository_name(
                self, "SourceRepository", source.repository_name
            )
            # A zip of the commit, not a clone: no step needs git (the guard asks CodePipeline), so no build role
            # needs git or connection permissions; only the source action reads the repository.
            return pipelines.CodePipelineSource.code_commit(self.codecommit_repository, branch)
        self.codecommit_repository = None
        return pipelines.CodePipelineSource.connection(
            f"{source.owner}/{source.repository_name}", branch, connection_arn=source.connection_arn
        )

    # --- permissions ------------------------------------------------------------------------------
    def _global_config_read_statements(self) -> list[iam.PolicyStatement]:
        lake = lake_names(self.config)
        # Secrets Manager appends a random 6-character suffix to every secret ARN.
        secret_arn = self.format_arn(
            service="secretsmanager",
            resource="secret",
            resource_name=f"{lake.global_config_secret}-??????",
            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
        )
        return [
            iam.PolicyStatement(
                sid="ReadGlobalConfigSecret",
                actions=["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                resources=[secret_arn],
            ),
            # The key lives in the deployment-account stack and its id is not known here (no exports), so the
            # statement names the key by its alias and only lets it decrypt on behalf of Secrets Manager, for
            # this one secret (Secrets Manager puts the secret ARN in the encryption context).
            iam.PolicyStatement(
                sid="DecryptGlobalConfigSecretOnly",
                actions=["kms:Decrypt"],
                resources=[self.format_arn(service="kms", resource="key", resource_name="*")],
                conditions={
                    "StringEquals": {"kms:ViaService": f"secretsmanager.{self.region}.amazonaws.com"},
                    "ForAnyValue:StringEquals": {"kms:ResourceAliases": lake.global_config_key_alias},
                    "StringLike": {"kms:EncryptionContext:SecretARN": secret_arn},
                },
            ),
        ]

    def _package_index_read_statements(self) -> list[iam.PolicyStatement]:
        """What `aws codeartifact login --tool pip` and `pip install` from the team's repository need.

        Checked against the IAM service authorization reference (CodeArtifact, STS) and AWS's CodeBuild
        example (docs.aws.amazon.com/codeartifact/latest/ug/using-python-packages-in-codebuild.html):
        GetAuthorizationToken acts on the domain, GetRepositoryEndpoint and ReadFromRepository on a
        repository, and GetServiceBearerToken on no resource type, only the sts:AWSServiceName condition.
        """
        lake = lake_names(self.config)
        # The domain is in this (the deployment) account and region: `--domain-owner` is this account.
        domain_arn = self.format_arn(service="codeartifact", resource="domain", resource_name=lake.package_domain)
        repository_arn = self.format_arn(
            service="codeartifact",
            resource="repository",
            resource_name=f"{lake.package_domain}/{lake.package_repository}",
        )
        return [
            iam.PolicyStatement(
                sid="PackageIndexToken", actions=["codeartifact:GetAuthorizationToken"], resources=[domain_arn]
            ),
            # pip reads through the team repository only. A package manager connected to a repository gets its
            # upstream's packages, and those of the upstream's public connection, through that one endpoint
            # (docs.aws.amazon.com/codeartifact/latest/ug/repos-upstream.html), and a read is authorized against
            # the repository it is made to, so the upstream needs no grant and its own endpoint stays closed to
            # the pipelines. Not provable offline: a test pins this reading.
            iam.PolicyStatement(
                sid="PackageIndexRead",
                actions=["codeartifact:GetRepositoryEndpoint", "codeartifact:ReadFromRepository"],
                resources=[repository_arn],
            ),
            # No kms:Decrypt on the domain key: CodeArtifact decrypts assets through the grant it created with
            # the domain, and AWS's key policy for a domain key grants principals only CreateGrant/DescribeKey
            # via CodeArtifact (docs.aws.amazon.com/codeartifact/latest/ug/domain-create.html).
            iam.PolicyStatement(
                sid="PackageIndexBearerToken",
                actions=["sts:GetServiceBearerToken"],
                resources=["*"],  # the action has no resource type: `*` is the only resource it accepts
                conditions={"StringEquals": {"sts:AWSServiceName": CODEARTIFACT_SERVICE}},
            ),
        ]

    def _promotion_guard_statements(self, previous: str | None) -> list[iam.PolicyStatement]:
        """The guard reads the previous environment's pipeline executions: that pipeline, in this account."""
        if previous is None:
            return []
        name = names_for(self.config, previous).pipeline_name(self.repository_kind)
        return [
            iam.PolicyStatement(
                sid="PromotionGuardReadsThePreviousPipeline",
                actions=["codepipeline:ListPipelineExecutions"],
                resources=[self.format_arn(service="codepipeline", resource=name)],
            )
        ]

    def _start_downstream_step(self, environment: str) -> pipelines.CodeBuildStep | None:
        """After a verified deployment, start the pipeline of the same environment that reads this one's output."""
        downstream = DOWNSTREAM.get(self.repository_kind)
        if downstream is None:
            return None
        name = names_for(self.config, environment).pipeline_name(downstream)
        return pipelines.CodeBuildStep(
            "StartDownstream",
            commands=buildspec.start_pipeline_commands(name, self.config.deployment.region),
            role_policy_statements=[
                iam.PolicyStatement(
                    actions=["codepipeline:StartPipelineExecution"],
                    resources=[self.format_arn(service="codepipeline", resource=name)],
                )
            ],
            timeout=cdk.Duration.minutes(5),
        )

    def _contract_check_step(self, account: str, region: str) -> pipelines.CodeBuildStep | None:
        """Before anyone approves or anything deploys: every SSM parameter the stage reads and does not write exists.

        The names come from the stage itself (its `AWS::SSM::Parameter::Value` template parameters, less the
        parameters its own stacks write), so the check covers exactly what CloudFormation will resolve.
        """
        parameters = stage_reads_from_outside(self.stage)
        if not parameters:
            return None
        upstream = [kind for kind, downstream in DOWNSTREAM.items() if downstream == self.repository_kind]
        writers = (
            f"the {upstream[0]} pipeline of {self.environment_name} writes them and starts this one when it succeeds"
            if upstream
            else "deploy the stacks that write them first"
        )
        return self._step_as_bootstrap_role(
            "ContractCheck",
            "lookup",
            account,
            region,
            lambda role_arn: buildspec.contract_check_commands(role_arn, region, parameters, writers),
            minutes=5,
        )

    def _termination_protection_step(self, account: str, region: str) -> pipelines.CodeBuildStep | None:
        """Termination protection for the stage's stacks that ask for it (where the environment retains data).

        CDK Pipelines deploys with CloudFormation change-set actions, which never apply a stack's
        `termination_protection` (aws-cdk issues 17871, 30405; aws-cdk-lib 2.275's pipelines and
        codepipeline-actions modules do not read it), unlike `cdk deploy`. This step turns it on after every
        deployment, with the target's CDK deploy role, before the Verify step.
        """
        protected = [s for s in self.stage.node.children if isinstance(s, cdk.Stack) and s.termination_protection]
        if not protected:
            return None
        stacks = [s.stack_name for s in protected]
        return self._step_as_bootstrap_role(
            "TerminationProtection",
            "deploy",
            account,
            region,
            lambda role_arn: buildspec.termination_protection_commands(role_arn, region, stacks),
            minutes=10,
        )

    def _step_as_bootstrap_role(
        self,
        step_id: str,
        role_kind: str,
        account: str,
        region: str,
        commands: Callable[[str], list[str]],
        *,
        minutes: int,
    ) -> pipelines.CodeBuildStep:
        """A step whose commands act in the target as one of its CDK bootstrap roles, the only role it may assume."""
        role_arn = self.format_arn(
            service="iam",
            region="",
            account=account,
            resource="role",
            resource_name=bootstrap_role_name(role_kind, account, region),
        )
        return pipelines.CodeBuildStep(
            step_id,
            commands=commands(role_arn),
            role_policy_statements=[iam.PolicyStatement(actions=["sts:AssumeRole"], resources=[role_arn])],
            timeout=cdk.Duration.minutes(minutes),
        )

    def _use_connection_with_its_own_prefix(self) -> None:
        """CDK Pipelines grants `codestar-connections:UseConnection` to the source action and to every step
        cloning the source. IAM matches an action to a resource only under the resource's own service prefix,
        and a connection created since the CodeConnections rename has an `arn:aws:codeconnections:` ARN
        (docs.aws.amazon.com/dtconsole/latest/userguide/rename.html), so each of those grants gets the action
        of the connection's own prefix beside it."""
        source = self.config.repository(self.repository_kind).source
        if not isinstance(source, ConnectionSource):
            return
        own = use_connection_action(source.connection_arn)
        if own == CODESTAR_USE_CONNECTION:
            return
        for policy in self.pipeline.node.find_all():
            if isinstance(policy, iam.Policy) and CODESTAR_USE_CONNECTION in json.dumps(
                self.resolve(policy.document.to_json())
            ):
                policy.add_statements(iam.PolicyStatement(actions=[own], resources=[source.connection_arn]))

    def _name_the_build_projects(self, pipeline_name: str) -> None:
        """`<pipeline>-<stage>-<step>` for every CodeBuild project CDK Pipelines leaves unnamed, so the deployment
        account's execution policy can name the projects it manages (`project/<prefix>-*`) and a console reader
        sees whose build it is."""
        base = self.pipeline.node.path
        for construct in self.pipeline.node.find_all():
            # an unnamed project's name is a token that resolves to nothing (CDK's lazy physical name)
            if isinstance(construct, codebuild.CfnProject) and self.resolve(construct.name) is None:
                parts: list[str] = []
                for part in construct.node.path.removeprefix(f"{base}/").split("/"):
                    if part not in ("Pipeline", "CdkBuildProject", "Resource") and part not in parts[-1:]:
                        parts.append(part)
                construct.name = "-".join([pipeline_name, *parts]).lower()

    def _version_the_artifact_bucket(self) -> None:
        """Versioning on the artifact bucket CDK Pipelines creates (it sets none): an overwritten or deleted
        artifact of a past execution can be recovered while anyone investigates it, for a bounded time."""
        bucket = self.pipeline.pipeline.artifact_bucket.node.default_child
        assert isinstance(bucket, s3.CfnBucket)
        bucket.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
        bucket.lifecycle_configuration = s3.CfnBucket.LifecycleConfigurationProperty(
            rules=[
                s3.CfnBucket.RuleProperty(
                    id="ExpireSupersededArtifacts",
                    status="Enabled",
                    noncurrent_version_expiration=s3.CfnBucket.NoncurrentVersionExpirationProperty(
                        noncurrent_days=ARTIFACT_NONCURRENT_DAYS
                    ),
                    abort_incomplete_multipart_upload=s3.CfnBucket.AbortIncompleteMultipartUploadProperty(
                        days_after_initiation=1
                    ),
                )
            ]
        )

    # --- findings on resources the pipelines module generates ------------------------------------------
    def _acknowledge_generated(self) -> None:
        """Acknowledge, policy by policy, the wildcard findings of the roles CDK pipelines generates.

        Each statement is matched against the few shapes the pipelines module is known to generate; a
        statement of any other shape stays unacknowledged, so a new kind of grant fails cdk-nag.
        """
        pipeline = self.pipeline.pipeline
        bucket = pipeline.artifact_bucket
        key = bucket.encryption_key
        # A target in another region: CDK pipelines adds a support stack there, with a replication bucket.
        supports = list(pipeline.cross_region_support.values())
        known = GeneratedGrants(
            bucket_logical_id=self._logical_id(bucket),
            key_logical_id=self._logical_id(key) if key is not None else None,
            global_config_alias=lake_names(self.config).global_config_key_alias,
            replication_buckets=tuple(flatten(self.resolve(s.replication_bucket.bucket_arn)) for s in supports),
        )
        for support in supports:
            # The support stack is CDK's, outside this stack: it gets the pipeline's tags, which the deployment
            # account's execution policy requires of the keys it manages.
            for tag, value in tags(self.config, self.environment_name, self.repository_kind).items():
                cdk.Tags.of(support.stack).add(tag, value)
            acknowledge(
                support.replication_bucket,
                "AwsSolutions-S1",
                "The replication bucket holds transient pipeline artifacts for another region; CloudTrail records "
                "access to it.",
            )
        for construct in self.pipeline.node.find_all():
            if isinstance(construct, iam.CfnPolicy):
                document = self.resolve(construct.policy_document)
                for finding, reason in known.reasons(document).items():
                    acknowledge(construct, f"AwsSolutions-IAM5[{finding}]", reason)
        acknowledge(
            bucket,
            "AwsSolutions-S1",
            "The artifact bucket holds transient pipeline artifacts only; CloudTrail records access to it.",
        )

    def _acknowledge_bearer_token(self, step: pipelines.CodeBuildStep) -> None:
        """Acknowledge the `*` of the bearer-token statement on the role policy of a step that installs packages.

        Only when it is the policy's one statement on `*`: another grant on `*` would share the finding id, so it
        stays unacknowledged and fails cdk-nag.
        """
        role = step.project.role
        policy = role.node.try_find_child("DefaultPolicy") if role is not None else None
        cfn_policy = policy.node.default_child if policy is not None else None
        assert isinstance(cfn_policy, iam.CfnPolicy), f"{step.id}: no role policy found"
        document = self.resolve(cfn_policy.policy_document)
        on_everything = [s for s in document["Statement"] if "*" in _as_list(s.get("Resource"))]
        if [s.get("Sid") for s in on_everything] == ["PackageIndexBearerToken"]:
            acknowledge(cfn_policy, "AwsSolutions-IAM5[Resource::*]", CODEARTIFACT_LOGIN_REASON)

    def _logical_id(self, construct: IConstruct) -> str:
        child = construct.node.default_child
        assert isinstance(child, cdk.CfnElement)
        return self.get_logical_id(child)


def stage_reads_from_outside(stage: cdk.Stage) -> list[str]:
    """The SSM parameters the stage's templates resolve at deploy time and none of its stacks writes, sorted.

    CDK's own bootstrap-version parameter is left out: CloudFormation's bootstrap-version rule already names it.
    """
    read: set[str] = set()
    written: set[str] = set()
    for construct in stage.node.find_all():
        if isinstance(construct, cdk.CfnParameter) and construct.type.startswith("AWS::SSM::Parameter::Value"):
            default = construct.default
            if isinstance(default, str) and not cdk.Token.is_unresolved(default):
                read.add(default)
        elif isinstance(construct, ssm.CfnParameter):
            name = construct.name
            if isinstance(name, str) and not cdk.Token.is_unresolved(name):
                written.add(name)
    return sorted(p for p in read - written if not p.startswith("/cdk-bootstrap/"))


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]
