"""The role the deployment account's pipeline assumes to run the post-deploy integration check."""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from datalake_config import LakeConfig, names_for
from datalake_config.naming import STAGING_PREFIX
from etl_jobs.contract import DeployTimeContract
from etl_jobs.spec import Group
from etl_jobs.wildcards import acknowledge_role_wildcards
from lake_pipelines.trust import verify_step_principal
from lakejobs.io import MANIFEST_FILE, RUN_RECORDS_FOLDER

ALL_JOBS = (
    "The check runs every Glue job of this environment (where data is retained it only reads their last runs); "
    "all are named <prefix>-<env>-<group>-<job>, and listing "
    "hundreds of job ARNs would exceed the IAM policy size limit."
)
MANIFESTS = (
    "Read only the _manifest.json row-count files the jobs write beside each output prefix, and (where the check "
    "runs jobs) the run records under the jobs' staging prefixes (staging/<group>/<job>/_runs/<run id>.json)."
)


class VerifyRole(Construct):
    """Trusts only the etl pipeline's Verify step; runs this environment's jobs and reads their output manifests."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: LakeConfig,
        env_name: str,
        groups: list[Group],
        contract: DeployTimeContract,
    ) -> None:
        super().__init__(scope, construct_id)
        names = names_for(config, env_name)
        stack = cdk.Stack.of(self)
        output_zones = sorted({o.zone for g in groups for j in g.jobs for o in j.outputs})
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.verify_role_name("etl"),
            assumed_by=verify_step_principal(self, config, env_name, "etl"),
            description=f"{config.prefix} {env_name}: the etl pipeline's post-deploy integration check",
            max_session_duration=cdk.Duration.hours(2),
        )
        # Where data is retained the check only reads (etl_jobs.integration_check): the role cannot start a job.
        retained = config.env(env_name).retain_data
        self.role.add_to_policy(
            iam.PolicyStatement(
                # GetJob: the job's --TempDir, where a run leaves its record (IAM action reference, AWS Glue:
                # GetJob, StartJobRun, GetJobRun and GetJobRuns all take the `job` resource type)
                actions=["glue:GetJobRuns"] if retained else ["glue:StartJobRun", "glue:GetJobRun", "glue:GetJob"],
                resources=[stack.format_arn(service="glue", resource=names.glue_job_arn_pattern())],
            )
        )
        self.role.add_to_policy(
            iam.PolicyStatement(
                actions=["ssm:GetParameter"],
                resources=[
                    stack.format_arn(
                        service="ssm", resource="parameter", resource_name=names.bucket_name(zone).lstrip("/")
                    )
                    for zone in config.zones
                ],
            )
        )
        if output_zones:
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:ListBucket"], resources=[contract.bucket_arn(zone) for zone in output_zones]
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[f"{contract.bucket_arn(zone)}/*/{MANIFEST_FILE}" for zone in output_zones]
                    + [
                        f"{contract.bucket_arn(zone)}/{STAGING_PREFIX}*/{RUN_RECORDS_FOLDER}/*"
                        for zone in ([] if retained else output_zones)
                    ],
                )
            )
            self.role.add_to_policy(
                iam.PolicyStatement(
                    actions=["kms:Decrypt"],
                    resources=[contract.data_key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{stack.region}.amazonaws.com"}},
                )
            )
        unexplained = acknowledge_role_wildcards(self.role, _explain)
        if unexplained:
            raise RuntimeError(f"verify role: unexpected wildcard grants {unexplained}")


def _explain(actions: list[str], resources: list[str]) -> str | None:
    if set(actions) <= {"glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns", "glue:GetJob"}:
        return ALL_JOBS
    if actions == ["s3:GetObject"] and all(
        r.endswith((f"/*/{MANIFEST_FILE}", f"/{RUN_RECORDS_FOLDER}/*")) for r in resources
    ):
        return MANIFESTS
    return None
