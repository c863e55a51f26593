"""Every shared name, produced once: SSM paths, the global-config secret, stack names and tags.

The infra → ETL contract lives here and nowhere else: the infra app writes the parameters listed by
`EnvironmentNames.contract()`, the ETL app reads the same paths at deploy time, and the smoke check
verifies them. Renaming a parameter is a change to this file only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from datalake_config.model import LakeConfig

REPOSITORIES = ("infra", "etl")
# Glue's --TempDir lives under this prefix of a zone bucket.
STAGING_PREFIX = "staging/"
# Key prefixes for scratch output (Glue's --TempDir, Spark committer leftovers written at a bucket's root).
# Every zone bucket expires them after `lifecycle.staging_expiration_days`, so jobs must never keep data there.
TRANSIENT_PREFIXES = (STAGING_PREFIX, "_temporary/", ".spark-staging")
DEPLOYMENT_STACK = "deployment"
# The distribution names of the team's own packages (gluelake-config: `datalake_config`, gluelake-pipelines:
# `lake_pipelines`, gluelake-ops: `lakeops`). They are chosen to be absent from the public index, and they
# come only from the team's package index: its origin controls cover every name under the prefix, so a
# package someone later publishes on the public index under one of these names (dependency confusion) can
# never stand in for ours.
TEAM_PACKAGE_PREFIX = "gluelake-"
TEAM_PACKAGES = ("gluelake-config", "gluelake-pipelines", "gluelake-ops")
# The CodeArtifact package group holding them: Python names have no namespace (the empty segment), and a
# trailing `~` matches a name prefix (CodeArtifact's package group definition syntax).
TEAM_PACKAGE_GROUP = f"/pypi//{TEAM_PACKAGE_PREFIX}~"
# The external connection of the repository that mirrors the public Python index.
PUBLIC_PYPI_CONNECTION = "public:pypi"


class Kind(StrEnum):
    """What a contract parameter points at, so a smoke check knows how to verify it exists."""

    BUCKET_NAME = "bucket-name"
    BUCKET_ARN = "bucket-arn"
    KMS_KEY_ARN = "kms-key-arn"
    VPC_ID = "vpc-id"
    SUBNET_IDS = "subnet-ids"
    AVAILABILITY_ZONES = "availability-zones"
    SECURITY_GROUP_ID = "security-group-id"
    GLUE_DATABASE = "glue-database"
    SNS_TOPIC_ARN = "sns-topic-arn"


@dataclass(frozen=True)
class ContractParameter:
    """One SSM parameter the infra app writes and the ETL app reads."""

    key: str
    path: str
    kind: Kind
    description: str
    zone: str | None = None


@dataclass(frozen=True)
class EnvironmentNames:
    """Names for one environment of one lake: `/<prefix>/<env>/...`."""

    prefix: str
    env: str
    zones: tuple[str, ...]

    # --- SSM parameters ---------------------------------------------------------------------
    def parameter(self, key: str) -> str:
        return f"/{self.prefix}/{self.env}/{key.strip('/')}"

    def fact(self, key: str) -> str:
        """An environment fact published by `lakeops config publish` (account, region, ...)."""
        return self.parameter(f"facts/{key}")

    @property
    def facts_root(self) -> str:
        return self.parameter("facts")

    @property
    def contract_root(self) -> str:
        return self.parameter("contract")

    def bucket_name(self, zone: str) -> str:
        return self._contract_path(f"buckets/{self._zone(zone)}/name")

    def bucket_arn(self, zone: str) -> str:
        return self._contract_path(f"buckets/{self._zone(zone)}/arn")

    def database(self, zone: str) -> str:
        return self._contract_path(f"catalog/{self._zone(zone)}/database")

    @property
    def data_key_arn(self) -> str:
        return self._contract_path("kms/data-key-arn")

    @property
    def vpc_id(self) -> str:
        return self._contract_path("network/vpc-id")

    @property
    def private_subnet_ids(self) -> str:
        """A comma-separated list (StringList) of the private subnet ids."""
        return self._contract_path("network/private-subnet-ids")

    @property
    def subnet_availability_zones(self) -> str:
        """A StringList, same order as `private_subnet_ids`: Glue connections need the subnet's AZ."""
        return self._contract_path("network/private-subnet-azs")

    @property
    def glue_security_group_id(self) -> str:
        return self._contract_path("network/glue-security-group-id")

    @property
    def alarm_topic_arn(self) -> str:
        return self._contract_path("notifications/alarm-topic-arn")

    @property
    def alarm_topic_key_arn(self) -> str:
        """The KMS key encrypting the alarm topic: publishers other than AWS services need to use it."""
        return self._contract_path("notifications/alarm-topic-key-arn")

    def contract(self) -> list[ContractParameter]:
        """Every parameter of the infra → ETL contract, in a stable order."""
        params: list[ContractParameter] = []
        for zone in self.zones:
            params += [
                ContractParameter(
                    f"buckets/{zone}/name", self.bucket_name(zone), Kind.BUCKET_NAME, f"{zone} zone bucket name", zone
                ),
                ContractParameter(
                    f"buckets/{zone}/arn", self.bucket_arn(zone), Kind.BUCKET_ARN, f"{zone} zone bucket ARN", zone
                ),
                ContractParameter(
                    f"catalog/{zone}/database",
                    self.database(zone),
                    Kind.GLUE_DATABASE,
                    f"{zone} zone Glue database",
                    zone,
                ),
            ]
        params += [
            ContractParameter("kms/data-key-arn", self.data_key_arn, Kind.KMS_KEY_ARN, "KMS key encrypting lake data"),
            ContractParameter("network/vpc-id", self.vpc_id, Kind.VPC_ID, "data lake VPC id"),
            ContractParameter(
                "network/private-subnet-ids",
                self.private_subnet_ids,
                Kind.SUBNET_IDS,
                "private subnet ids (comma-separated)",
            ),
            ContractParameter(
                "network/private-subnet-azs",
                self.subnet_availability_zones,
                Kind.AVAILABILITY_ZONES,
                "availability zones of the private subnets, same order",
            ),
            ContractParameter(
                "network/glue-security-group-id",
                self.glue_security_group_id,
                Kind.SECURITY_GROUP_ID,
                "Glue connection security group",
            ),
            ContractParameter(
                "notifications/alarm-topic-arn", self.alarm_topic_arn, Kind.SNS_TOPIC_ARN, "SNS topic for alarms"
            ),
            ContractParameter(
                "notifications/alarm-topic-key-arn",
                self.alarm_topic_key_arn,
                Kind.KMS_KEY_ARN,
                "KMS key encrypting the alarm topic",
            ),
        ]
        return params

    # --- physical names that must be predictable ----------------------------------------------
    def glue_database_name(self, zone: str) -> str:
        """Glue/Athena database names allow only lowercase letters, digits and underscores."""
        return f"{self.prefix}_{self.env}_{self._zone(zone)}".replace("-", "_")

    def stack_name(self, repository: str, component: str) -> str:
        """A stage stack in the target account, e.g. `acme-lake-dev-infra-storage`."""
        _check_repository(repository)
        return f"{self.prefix}-{self.env}-{repository}-{component}"

    def pipeline_stack_name(self, repository: str) -> str:
        """The pipeline stack in the deployment account for this environment's branch."""
        _check_repository(repository)
        return f"{self.prefix}-{repository}-{self.env}-pipeline"

    def pipeline_name(self, repository: str) -> str:
        return self.pipeline_stack_name(repository)

    def verify_role_name(self, repository: str) -> str:
        """The role in the target account that the pipeline's post-deploy check assumes (named: cross-account)."""
        _check_repository(repository)
        return f"{self.prefix}-{self.env}-{repository}-verify"

    def verify_step_role_name(self, repository: str) -> str:
        """The role of the pipeline's Verify step, in the deployment account: the one principal the verify role
        trusts. At most 20 + 1 + 10 + 1 + 5 + 12 = 49 characters, within IAM's 64 for a role name."""
        _check_repository(repository)
        return f"{self.prefix}-{self.env}-{repository}-verify-step"

    @property
    def config_publisher_role_name(self) -> str:
        """The role in the target account that `lakeops config publish` assumes to write this environment's facts.

        Named, because the deployment account assumes it across accounts; `lakeops bootstrap` creates it with
        the target account's own credentials. At most 20 + 1 + 10 + 17 = 48 characters (the prefix and
        environment name limits), within IAM's 64 for a role name.
        """
        return f"{self.prefix}-{self.env}-config-publisher"

    # --- the ETL app's own names ---------------------------------------------------------------
    def glue_job_name(self, group: str, job: str) -> str:
        """A Glue job's physical name: the state machine, alarms and the integration check find jobs by it."""
        return f"{self.prefix}-{self.env}-{group}-{job}".replace("_", "-")

    def glue_job_name_prefix(self) -> str:
        """What every Glue job name of this environment starts with (`<prefix>-<env>-`)."""
        return f"{self.prefix}-{self.env}-"

    def glue_job_arn_pattern(self) -> str:
        """The resource part of every Glue job ARN of this environment (`job/<prefix>-<env>-*`)."""
        return f"job/{self.glue_job_name_prefix()}*"

    def state_machine_name(self, group: str, part: int = 1) -> str:
        """A job group's state machine; a group split over several stacks chains `-2`, `-3`, ... by name."""
        suffix = "" if part == 1 else f"-{part}"
        return f"{self.prefix}-{self.env}-{group}{suffix}".replace("_", "-")

    @property
    def glue_security_configuration_name(self) -> str:
        """Glue jobs reference their security configuration by name."""
        return f"{self.prefix}-{self.env}-etl"

    def glue_connection_name(self, subnet_number: int) -> str:
        """A Glue NETWORK connection in one private subnet (1-based, contract order); jobs reference it by name."""
        if subnet_number < 1:
            raise ValueError(f"subnet_number counts from 1, got {subnet_number}")
        return f"{self.prefix}-{self.env}-etl-private-{subnet_number}"

    @property
    def etl_key_arn(self) -> str:
        """SSM: the ETL app's own KMS key (logs, bookmarks, audit table), written by its shared stack."""
        return self.parameter("etl/kms-key-arn")

    @property
    def audit_table_name(self) -> str:
        """SSM: the DynamoDB table recording every job run, written by the ETL shared stack."""
        return self.parameter("etl/audit-table-name")

    @property
    def audit_table_arn(self) -> str:
        return self.parameter("etl/audit-table-arn")

    def _contract_path(self, key: str) -> str:
        return self.parameter(f"contract/{key}")

    def _zone(self, zone: str) -> str:
        if zone not in self.zones:
            raise KeyError(f"unknown zone {zone!r}; configured: {', '.join(self.zones)}")
        return zone


@dataclass(frozen=True)
class LakeNames:
    """Names that belong to the whole lake rather than to one environment."""

    prefix: str

    @property
    def global_config_secret(self) -> str:
        """The Secrets Manager secret holding the validated config as JSON.

        Not `.../global-config`: a name ending in a hyphen and six characters reads like the random
        suffix Secrets Manager appends to ARNs, which makes partial-ARN lookups ambiguous.
        """
        return f"{self.prefix}/config/global"

    @property
    def deployment_stack_name(self) -> str:
        return f"{self.prefix}-{DEPLOYMENT_STACK}"

    @property
    def cloudformation_execution_policy(self) -> str:
        """The managed policy each target account's CloudFormation execution role gets at bootstrap."""
        return f"{self.prefix}-cfn-execution"

    @property
    def stage_role_boundary(self) -> str:
        """The permissions boundary every role the stages create carries (bootstrap creates it per target)."""
        return f"{self.prefix}-stage-role-boundary"

    @property
    def pipelines_execution_policy(self) -> str:
        """The managed policy the deployment account's CloudFormation execution role gets at bootstrap: what the
        deployment-account stack and the pipeline stacks need (one policy for every region of the account)."""
        return f"{self.prefix}-pipelines-cfn-execution"

    @property
    def pipeline_role_boundary(self) -> str:
        """The permissions boundary every role of the pipeline stacks carries (bootstrap creates it)."""
        return f"{self.prefix}-pipeline-role-boundary"

    def pipelines_execution_policy_part(self, index: int) -> str:
        """Part `index` (from 1) of the deployment account's execution policy."""
        return _part(self.pipelines_execution_policy, index)

    def cloudformation_execution_policy_part(self, index: int) -> str:
        """Part `index` (from 1) of that policy when it exceeds the size of one managed policy."""
        return _part(self.cloudformation_execution_policy, index)

    @property
    def global_config_key_alias(self) -> str:
        """The KMS key encrypting the global-config secret; the synth role may decrypt through it only."""
        return f"alias/{self.prefix}/global-config"

    @property
    def pipeline_topic(self) -> str:
        """The SNS topic in the deployment account receiving pipeline failed/succeeded/approval events."""
        return f"{self.prefix}-pipeline-events"

    @property
    def pipeline_topic_key_alias(self) -> str:
        return f"alias/{self.prefix}/pipeline-events"

    # --- the team's package index (CodeArtifact, in the deployment account) -----------------------
    @property
    def package_domain(self) -> str:
        """The CodeArtifact domain. Domain names allow 2-50 lowercase letters, digits and hyphens, starting
        with a letter and ending with a letter or digit: the prefix rule guarantees all of it here."""
        return f"{self.prefix}-packages"

    @property
    def package_repository(self) -> str:
        """The repository the team publishes to and every pipeline installs from."""
        return f"{self.prefix}-python"

    @property
    def package_upstream_repository(self) -> str:
        """The upstream of `package_repository`, holding the connection to the public index."""
        return f"{self.prefix}-public-pypi"

    @property
    def package_key_alias(self) -> str:
        """The KMS key encrypting every asset of the package domain."""
        return f"alias/{self.prefix}/packages"

    @property
    def operator_role_name(self) -> str:
        """The deployment-account role that runs `lakeops config publish` when `deployment.operator_principal`
        names none: the only principal the target accounts' config publisher roles trust."""
        return f"{self.prefix}-operator"

    @property
    def deployment_profile(self) -> str:
        """The default AWS CLI profile holding deployment-account credentials (`lakeops bootstrap`)."""
        return f"{self.prefix}-deployment"

    def environment_profile(self, env: str) -> str:
        """The default AWS CLI profile holding credentials for one environment's target account."""
        return f"{self.prefix}-{env}"


def names_for(config: LakeConfig, env: str) -> EnvironmentNames:
    config.env(env)  # raises a KeyError naming the configured environments
    return EnvironmentNames(prefix=config.prefix, env=env, zones=tuple(config.zones))


def lake_names(config: LakeConfig) -> LakeNames:
    return LakeNames(prefix=config.prefix)


def tags(config: LakeConfig, env: str | None = None, repository: str | None = None) -> dict[str, str]:
    """Tags for every resource: the config's own tags plus where the resource came from."""
    result = dict(config.tags)
    result["lake:prefix"] = config.prefix
    if env is not None:
        config.env(env)
        result["lake:environment"] = env
    if repository is not None:
        _check_repository(repository)
        result["lake:repository"] = repository
    return result


def _check_repository(repository: str) -> None:
    if repository not in REPOSITORIES:
        raise KeyError(f"unknown repository {repository!r}; known: {', '.join(REPOSITORIES)}")


def _part(base: str, index: int) -> str:
    if index < 1:
        raise ValueError(f"policy parts are numbered from 1, got {index}")
    return base if index == 1 else f"{base}-{index}"
