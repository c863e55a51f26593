"""One job group (or one numbered part of a large group): its jobs, orchestration, triggers and alarms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_glue as glue
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_config.naming import STAGING_PREFIX
from etl_jobs.contract import DeployTimeContract
from etl_jobs.glue_job import EtlJob
from etl_jobs.job_failures import JobFailureNotifications
from etl_jobs.layout import StackPart
from etl_jobs.orchestration import GroupStateMachine, RunRecords
from etl_jobs.retention import log_retention as log_retention_for
from etl_jobs.triggers import GroupTriggers
from lakejobs.io import RUN_RECORDS_FOLDER


class EtlGroupStack(cdk.Stack):
    """Stateless and replaceable: every value it needs from elsewhere is read from SSM at deploy time."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        env_name: str,
        part: StackPart,
        library_zip: Path,
        **kwargs: Any,
    ) -> None:
        names = names_for(config, env_name)
        group = part.group
        description = group.description or f"job group {group.name}"
        if part.count > 1:
            description += f" (part {part.number} of {part.count})"
        super().__init__(scope, construct_id, description=f"{config.prefix} {env_name} etl: {description}", **kwargs)
        environment = config.env(env_name)
        self.part = part
        contract = DeployTimeContract(self, names)
        log_retention = log_retention_for(environment.lifecycle.log_retention_days)
        removal_policy = cdk.RemovalPolicy.RETAIN if environment.retain_data else cdk.RemovalPolicy.DESTROY
        alarm_topic = contract.alarm_topic(self)
        etl_key = contract.etl_key(self)

        connections: list[glue.IConnection] = []
        if any(job.needs_vpc for job in part.jobs):
            connections = [
                glue.Connection.from_connection_name(self, f"Connection{n}", names.glue_connection_name(n))
                for n in range(1, environment.max_azs + 1)
            ]

        self.jobs = [
            EtlJob(
                self,
                f"Job-{job.name}",
                names=names,
                contract=contract,
                group=group,
                job=job,
                library_zip=library_zip,
                connections=connections,
                log_retention=log_retention,
                removal_policy=removal_policy,
            )
            for job in part.jobs
        ]
        self.job_failures = JobFailureNotifications(
            self,
            "JobFailures",
            job_names=[job.glue_job_name for job in self.jobs],
            alarm_topic=alarm_topic,
            label=f"{names.prefix} {env_name} {group.name}",
        )
        audit_table = dynamodb.Table.from_table_attributes(
            self, "AuditTable", table_arn=contract.audit_table_arn, encryption_key=etl_key
        )
        self.orchestration = GroupStateMachine(
            self,
            "Orchestration",
            names=names,
            part=part,
            audit_table=audit_table,
            etl_key=etl_key,
            alarm_topic=alarm_topic,
            alarm_topic_key_arn=contract.alarm_topic_key_arn,
            # Each run records its counts under its --TempDir, the job's staging prefix (lakejobs.io).
            run_records={
                job.job_spec.name: RunRecords(
                    bucket_name=contract.bucket_name(job.write_zone),
                    prefix=f"{job.staging_prefix}{RUN_RECORDS_FOLDER}/",
                    grant=f"{contract.bucket_arn(job.write_zone)}/{STAGING_PREFIX}{group.name}/*/{RUN_RECORDS_FOLDER}/*",
                )
                for job in self.jobs
            },
            data_key_arn=contract.data_key_arn,
            log_retention=log_retention,
            removal_policy=removal_policy,
        )
        self.triggers: GroupTriggers | None = None
        if part.is_entry:
            self.triggers = GroupTriggers(
                self,
                "Triggers",
                group=group,
                raw_bucket_name=contract.bucket_name(config.raw_zone),
                state_machine=self.orchestration.state_machine,
            )
