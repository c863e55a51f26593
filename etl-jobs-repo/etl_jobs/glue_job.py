"""One Glue 5.0 PySpark job with its own role, log groups and catalog tables, scoped to the data it touches."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from constructs import Construct

from datalake_config import EnvironmentNames
from datalake_config.naming import STAGING_PREFIX
from etl_jobs.asset_code import ObjectAssetCode
from etl_jobs.catalog_table import CatalogTable
from etl_jobs.contract import DeployTimeContract
from etl_jobs.spec import Group, Job, Location
from etl_jobs.wildcards import acknowledge_role_wildcards
from lake_pipelines.checks import acknowledge
from lake_pipelines.generated_grants import flatten

# Arguments this construct sets; a job's own `arguments` may not redefine them.
MANAGED_ARGUMENTS = (
    "--job-bookmark-option",
    "--quarantine_path",
    "--TempDir",
    "--group_name",
    "--job_short_name",
    "--catalog_tables",
    "--custom-logGroup-prefix",
)
# Glue 5.0 logs every job run to CloudWatch, always (the <=4.0 "continuous logging" arguments,
# --enable-continuous-cloudwatch-log and --continuous-log-logGroup, no longer choose anything). It writes two
# log groups, `<prefix>/output` (the script's stdout/stderr) and `<prefix>/error` (system, Spark and Glue logger
# logs), with the prefix `/aws-glue/jobs` unless the job argument --custom-logGroup-prefix gives one; with a
# security configuration that encrypts CloudWatch logs (ours does) the groups are
# `<prefix>/<security configuration name>-role/<job role name>/output|error`, and the role needs
# logs:AssociateKmsKey on them or Glue turns the logging off. AWS Glue Developer Guide, "Logging for AWS Glue
# jobs" (monitor-continuous-logging.html: "Custom logging" and "Security configuration with Amazon CloudWatch
# logging"). Left to itself Glue would create those groups in the account-wide /aws-glue/jobs/... with no
# retention; here each job gets its own prefix and the stack creates exactly the two groups Glue will write,
# with the environment's retention and the ETL key, before the job exists.
GLUE_LOG_PREFIX = "/aws-glue/jobs/{job_name}"
GLUE_LOG_STREAMS = ("output", "error")

DATASET_OBJECTS = (
    "Objects under the job's declared input/output/quarantine/staging key prefixes only: Spark picks the "
    "file names at run time, so prefix/* is the narrowest resource for a dataset."
)
METRICS = "cloudwatch:PutMetricData has no resource-level permissions; the statement is limited to the Glue namespace."
EC2_DESCRIBE = "EC2 Describe* calls Glue makes to set up the VPC connection support no resource-level permissions."
NETWORK_INTERFACES = (
    "Glue creates, tags and deletes the network interfaces of a VPC job run in the connection's subnet and security "
    "group; their ids exist only at run time."
)
SECURITY_CONFIGURATION = (
    "The job uses the shared stack's security configuration {name} (S3 SSE-KMS with the data key, CloudWatch logs "
    "and job bookmarks encrypted with the ETL key); cdk-nag cannot resolve a configuration referenced by name "
    "from another stack, and the template tests assert the encryption settings."
)


class EtlJob(Construct):
    """A Glue job reading and writing only its declared zone prefixes, logging to its own encrypted log groups."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: EnvironmentNames,
        contract: DeployTimeContract,
        group: Group,
        job: Job,
        library_zip: Path,
        connections: list[glue.IConnection],
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        conflicts = sorted(set(job.arguments) & {*MANAGED_ARGUMENTS, *_location_arguments(job)})
        if conflicts:
            raise ValueError(
                f"group {group.name}, job {job.name}: arguments: {', '.join(conflicts)} are set by the platform"
            )
        if job.needs_vpc and not connections:
            raise ValueError(f"group {group.name}, job {job.name}: needs_vpc is set but no Glue connection exists")
        stack = cdk.Stack.of(self)
        self._wildcard_reasons: list[tuple[str, str, tuple[str, ...]]] = []
        self.job_spec = job
        self.glue_job_name = names.glue_job_name(group.name, job.name)
        write_zone = self.write_zone = job.outputs[0].zone
        quarantine_zone, self.quarantine_prefix = job.quarantine_location(group.name)
        # Glue's own temporary files: under the prefix the zone buckets expire, so they never pile up.
        self.staging_prefix = f"{STAGING_PREFIX}{group.name}/{job.name}/"

        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(
                "glue.amazonaws.com", conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description=f"Glue job {self.glue_job_name}: reads and writes only its declared prefixes",
        )
        etl_key = contract.etl_key(self)
        # The groups Glue 5.0 writes for this job (GLUE_LOG_PREFIX above): the role's generated name is part of
        # the name, resolved at deploy time.
        self.log_group_prefix = GLUE_LOG_PREFIX.format(job_name=self.glue_job_name)
        self.log_groups = {
            stream: logs.LogGroup(
                self,
                f"Logs-{stream}",
                log_group_name=(
                    f"{self.log_group_prefix}/{names.glue_security_configuration_name}-role/"
                    f"{self.role.role_name}/{stream}"
                ),
                encryption_key=etl_key,
                retention=log_retention,
                removal_policy=removal_policy,
            )
            for stream in GLUE_LOG_STREAMS
        }

        self._grant_reads(contract, job.inputs)
        write_prefixes: dict[str, list[str]] = defaultdict(list)
        for output in job.outputs:
            write_prefixes[output.zone].append(output.prefix)
        write_prefixes[write_zone].append(self.staging_prefix)
        if job.quarantine:
            write_prefixes[quarantine_zone].append(self.quarantine_prefix)
        self._grant_writes(contract, write_prefixes)
        self._grant_keys(contract, stack, job)
        self._grant_logs(stack)
        self.tables = [
            CatalogTable(
                self,
                f"Table-{output.name}",
                names=names,
                contract=contract,
                group=group,
                output=output,
            )
            for output in job.outputs
        ]
        partitioned_tables = [t for t, output in zip(self.tables, job.outputs, strict=True) if output.partition_by]
        if partitioned_tables:
            self._grant_partition_registration(stack, contract, partitioned_tables)
        if job.needs_vpc:
            self._grant_network(stack, contract, connections)

        arguments = {
            **{f"--input_{loc.name}": contract.s3_url(loc.zone, loc.prefix) for loc in job.inputs},
            **{f"--output_{loc.name}": contract.s3_url(loc.zone, loc.prefix) for loc in job.outputs},
            "--job-bookmark-option": "job-bookmark-enable" if job.bookmarks else "job-bookmark-disable",
            "--TempDir": contract.s3_url(write_zone, self.staging_prefix),
            "--group_name": group.name,
            "--job_short_name": job.name,
            "--custom-logGroup-prefix": self.log_group_prefix,
            **job.partition_arguments(),
            **job.arguments,
        }
        if job.quarantine:
            arguments["--quarantine_path"] = contract.s3_url(quarantine_zone, self.quarantine_prefix)
        if partitioned_tables:
            # lakejobs registers the partitions a run wrote in these tables (lakejobs.catalog).
            arguments["--catalog_tables"] = json.dumps(
                {t.output_name: {"database": t.database_name, "table": t.table_name} for t in partitioned_tables},
                sort_keys=True,
                separators=(",", ":"),
            )

        self.job = glue.PySparkEtlJob(
            self,
            "Job",
            job_name=self.glue_job_name,
            description=job.description or f"{group.name}/{job.name}",
            role=self.role,
            script=ObjectAssetCode(group.script_path(job)),
            extra_python_files=[ObjectAssetCode(library_zip)],
            glue_version=glue.GlueVersion.V5_0,
            worker_configuration=glue.WorkerConfiguration(
                worker_type=glue.WorkerType[job.worker_type.replace(".", "_")], number_of_workers=job.workers
            ),
            timeout=cdk.Duration.minutes(job.timeout_minutes),
            # The job's max_retries are retries of its state machine task (orchestration.FAILED_RUN), so a retried
            # run stays under the group's lock and its record under the run id the task reads.
            max_retries=0,
            # A rerun while the previous run still writes would race its partition rebuild.
            max_concurrent_runs=1,
            security_configuration=glue.SecurityConfiguration.from_security_configuration_name(
                self, "SecurityConfiguration", names.glue_security_configuration_name
            ),
            connections=connections if job.needs_vpc else None,
            # Not "no logs": Glue 5.0 always logs (GLUE_LOG_PREFIX above). Disabled here, CDK sets none of the
            # <=4.0 continuous-logging arguments, which Glue 5.0 does not read.
            continuous_logging=glue.ContinuousLoggingProps(enabled=False),
            default_arguments=arguments,
            tags={"lake:job-group": group.name},
        )
        # The groups exist, with their retention, before the job can run and log.
        for log_group in self.log_groups.values():
            self.job.node.add_dependency(log_group)

        acknowledge(
            self.job.node.find_child("Resource"),
            "AwsSolutions-GL1",
            SECURITY_CONFIGURATION.format(name=names.glue_security_configuration_name),
        )
        acknowledge(
            self.job.node.find_child("Resource"),
            "AwsSolutions-GL3",
            SECURITY_CONFIGURATION.format(name=names.glue_security_configuration_name),
        )
        acknowledge_role_wildcards(self.role, self._explain)

    def _explained(self, reason: str, resources: list[str], only_for: tuple[str, ...] = ("",)) -> list[str]:
        """Record why these wildcard resources are needed, for actions starting with one of `only_for`."""
        stack = cdk.Stack.of(self)
        self._wildcard_reasons += [(flatten(stack.resolve(r)), reason, only_for) for r in resources]
        return resources

    def _explain(self, actions: list[str], resources: list[str]) -> str | None:
        if any("*" in action for action in actions):
            return None
        reasons: list[str] = []
        for resource in (r for r in resources if "*" in r):
            matching = [
                reason
                for known, reason, prefixes in self._wildcard_reasons
                if known == resource and all(action.startswith(prefixes) for action in actions)
            ]
            if not matching:
                return None
            reasons += matching
        return " ".join(dict.fromkeys(reasons))

    def _dataset_objects(self, bucket_arn: str, prefixes: list[str]) -> list[str]:
        """A dataset's objects, plus the two keys EMRFS touches beside them (`_emrfs_keys`)."""
        objects = self._explained(DATASET_OBJECTS, [f"{bucket_arn}/{prefix}*" for prefix in prefixes])
        return objects + [f"{bucket_arn}/{key}" for prefix in prefixes for key in _emrfs_keys(prefix)]

    def _grant_reads(self, contract: DeployTimeContract, inputs: list[Location]) -> None:
        prefixes: dict[str, list[str]] = defaultdict(list)
        for location in inputs:
            prefixes[location.zone].append(location.prefix)
        for zone, zone_prefixes in sorted(prefixes.items()):
            bucket_arn = contract.bucket_arn(zone)
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=self._dataset_objects(bucket_arn, zone_prefixes),
                )
            )
            self.role.add_to_policy(_list_statement(bucket_arn, zone_prefixes))

    def _grant_writes(self, contract: DeployTimeContract, prefixes: dict[str, list[str]]) -> None:
        for zone, zone_prefixes in sorted(prefixes.items()):
            bucket_arn = contract.bucket_arn(zone)
            # Get: a CDC merge reads the current state it rebuilds; Delete: the rebuild removes only the files
            # that existed before the run, after the new output is written.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
                    resources=self._dataset_objects(bucket_arn, zone_prefixes),
                )
            )
            self.role.add_to_policy(_list_statement(bucket_arn, zone_prefixes))

    def _grant_keys(self, contract: DeployTimeContract, stack: cdk.Stack, job: Job) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[contract.data_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
            )
        )
        if job.bookmarks:
            # Job bookmarks are encrypted client-side with the ETL key by the security configuration.
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"], resources=[contract.etl_key_arn]
                )
            )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=self._explained(METRICS, ["*"], only_for=("cloudwatch:PutMetricData",)),
                conditions={"StringEquals": {"cloudwatch:namespace": "Glue"}},
            )
        )

    def _grant_logs(self, stack: cdk.Stack) -> None:
        """Exactly the job's two log groups (GLUE_LOG_PREFIX), by the resource types of the IAM action reference."""
        groups = [
            stack.format_arn(
                service="logs",
                resource="log-group",
                resource_name=log_group.log_group_name,
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            for log_group in self.log_groups.values()
        ]
        # Resource type log-group (`...:log-group:<name>`): Glue associates the ETL key with the groups it writes
        # (without AssociateKmsKey it turns logging off, "Logging for AWS Glue jobs"), and may ask to create them;
        # both groups exist already (the job depends on them), so CreateLogGroup on their exact names can create
        # nothing else.
        self.role.add_to_policy(
            iam.PolicyStatement(actions=["logs:CreateLogGroup", "logs:AssociateKmsKey"], resources=groups)
        )
        # Resource type log-stream (`...:log-group:<name>:log-stream:<stream>`): the streams Glue names after the
        # run id, in these groups only. A group's `Arn` attribute is `...:log-group:<name>:*`, which matches them.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[log_group.log_group_arn for log_group in self.log_groups.values()],
            )
        )

    def _grant_partition_registration(
        self, stack: cdk.Stack, contract: DeployTimeContract, tables: list[CatalogTable]
    ) -> None:
        databases = sorted({t.database_name for t in tables})
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetTable", "glue:BatchCreatePartition"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    *(stack.format_arn(service="glue", resource="database", resource_name=d) for d in databases),
                    *(
                        stack.format_arn(
                            service="glue", resource="table", resource_name=f"{t.database_name}/{t.table_name}"
                        )
                        for t in tables
                    ),
                ],
            )
        )
        # The catalog is encrypted with the data key (infra's catalog stack): reading the table and writing
        # partitions go through Glue, and only through Glue.
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[contract.data_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"glue.{stack.region}.amazonaws.com"}},
            )
        )

    def _grant_network(
        self, stack: cdk.Stack, contract: DeployTimeContract, connections: list[glue.IConnection]
    ) -> None:
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=[
                    "ec2:DescribeVpcEndpoints",
                    "ec2:DescribeRouteTables",
                    "ec2:DescribeNetworkInterfaces",
                    "ec2:DescribeSecurityGroups",
                    "ec2:DescribeSubnets",
                    "ec2:DescribeVpcAttribute",
                ],
                resources=self._explained(EC2_DESCRIBE, ["*"], only_for=("ec2:Describe",)),
            )
        )
        network_interfaces = self._explained(
            NETWORK_INTERFACES, [stack.format_arn(service="ec2", resource="network-interface", resource_name="*")]
        )[0]
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:CreateNetworkInterface"],
                resources=[
                    network_interfaces,
                    stack.format_arn(
                        service="ec2", resource="security-group", resource_name=contract.glue_security_group_id
                    ),
                    *(
                        stack.format_arn(
                            service="ec2",
                            resource="subnet",
                            resource_name=cdk.Fn.select(i, contract.private_subnet_ids),
                        )
                        for i in range(len(connections))
                    ),
                ],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:DeleteNetworkInterface", "ec2:CreateTags", "ec2:DeleteTags"],
                resources=[network_interfaces],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["glue:GetConnection"],
                resources=[
                    stack.format_arn(service="glue", resource="catalog"),
                    *(
                        stack.format_arn(service="glue", resource="connection", resource_name=c.connection_name)
                        for c in connections
                    ),
                ],
            )
        )


def _emrfs_keys(prefix: str) -> tuple[str, str]:
    """The keys Glue's S3 file system (EMRFS) reads or writes for a dataset "directory" `a/b/`, outside `a/b/*`.

    It asks whether `a/b` is a file (a HEAD of the key `a/b`) and marks a directory it creates with an empty
    `a/b_$folder$` object (AWS Knowledge Center, "EMR _$folder$ files in S3"). Without GetObject on `a/b` the
    HEAD answers 403 instead of 404 and the run fails; without the marker keys, creating the output fails.
    """
    directory = prefix.rstrip("/")
    return directory, f"{directory}_$folder$"


def _list_statement(bucket_arn: str, prefixes: list[str]) -> iam.PolicyStatement:
    listed = {p for prefix in prefixes for p in (prefix, f"{prefix}*", *_emrfs_keys(prefix))}
    return iam.PolicyStatement(
        actions=["s3:ListBucket"],
        resources=[bucket_arn],
        conditions={"StringLike": {"s3:prefix": sorted(listed)}},
    )


def _location_arguments(job: Job) -> set[str]:
    return (
        {f"--input_{loc.name}" for loc in job.inputs}
        | {f"--output_{loc.name}" for loc in job.outputs}
        | set(job.partition_arguments())
    )
