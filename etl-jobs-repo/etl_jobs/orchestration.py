"""The state machine running one stack part's jobs in order, auditing each run and notifying on failure."""

from __future__ import annotations

import re

import aws_cdk as cdk
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from datalake_config import EnvironmentNames
from etl_jobs.layout import StackPart
from etl_jobs.wildcards import acknowledge_role_wildcards

# Transient Glue API errors worth retrying; a job that ran and failed is not retried here (the job's own
# max_retries decides that), it is audited and reported.
GLUE_TRANSIENT_ERRORS = [
    "Glue.ConcurrentRunsExceededException",
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
]
DYNAMODB_TRANSIENT_ERRORS = [
    "DynamoDB.ProvisionedThroughputExceededException",
    "DynamoDB.ThrottlingException",
    "DynamoDB.InternalServerErrorException",
    "DynamoDB.RequestLimitExceeded",
]

# What Step Functions itself needs on `*`: vended log delivery (no resource-level permissions) and X-Ray.
UNSCOPED_ACTIONS = {
    "logs:CreateLogDelivery": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:GetLogDelivery": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:UpdateLogDelivery": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:DeleteLogDelivery": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:ListLogDeliveries": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:PutResourcePolicy": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:DescribeResourcePolicies": "Step Functions log delivery APIs accept only Resource '*'.",
    "logs:DescribeLogGroups": "Step Functions log delivery APIs accept only Resource '*'.",
    "xray:PutTraceSegments": "X-Ray tracing APIs accept only Resource '*'.",
    "xray:PutTelemetryRecords": "X-Ray tracing APIs accept only Resource '*'.",
    "xray:GetSamplingRules": "X-Ray tracing APIs accept only Resource '*'.",
    "xray:GetSamplingTargets": "X-Ray tracing APIs accept only Resource '*'.",
}
NEXT_PART_EXECUTIONS = (
    "The .sync start of the group's next part describes and stops the executions it starts; execution ids exist "
    "only at run time, the state machine is named exactly."
)


def _explain_generated(actions: list[str], resources: list[str]) -> str | None:
    if resources == ["*"] and actions and all(a in UNSCOPED_ACTIONS for a in actions):
        return " ".join(dict.fromkeys(UNSCOPED_ACTIONS[a] for a in actions))
    if set(actions) <= {"states:DescribeExecution", "states:StopExecution"} and all(
        re.search(r":execution:[\w-]+(\*|:\*)$", r) for r in resources
    ):
        return NEXT_PART_EXECUTIONS
    return None


class GroupStateMachine(Construct):
    """Runs the jobs of a part in order (then the group's next part), writing start/end/status to the audit table."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: EnvironmentNames,
        part: StackPart,
        audit_table: dynamodb.ITable,
        etl_key: kms.IKey,
        alarm_topic: sns.ITopic,
        alarm_topic_key_arn: str,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        group = part.group.name
        self.state_machine_name = names.state_machine_name(group, part.number)
        self.audit_table = audit_table

        notify = tasks.SnsPublish(
            self,
            "Notify failure",
            topic=alarm_topic,
            subject=f"{names.prefix} {names.env}: job group {group} failed",
            message=sfn.TaskInput.from_object(
                {
                    "group": group,
                    "execution": sfn.JsonPath.execution_id,
                    "job": sfn.JsonPath.string_at("$.current.job"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        fail = sfn.Fail(self, "Failed", error="JobGroupFailed", cause=f"a job of group {group} failed")
        record_failure = self._audit(
            "Record failure",
            group,
            status="FAILED",
            extra={
                "ended_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                "error": dynamodb_string(sfn.JsonPath.string_at("$.error.Error")),
                "cause": dynamodb_string(sfn.JsonPath.string_at("$.error.Cause")),
            },
        )
        record_failure.add_catch(notify, result_path="$.audit_error")
        failure_path = record_failure.next(notify).next(fail)

        chain: sfn.IChainable | None = None
        for job in part.jobs:
            job_name = names.glue_job_name(group, job.name)
            start = sfn.Pass(
                self,
                f"Start {job.name}",
                parameters={
                    "job": job_name,
                    "started_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
                },
                result_path="$.current",
            )
            record_start = self._audit(f"Record start {job.name}", group, status="RUNNING", extra={})
            run = tasks.GlueStartJobRun(
                self,
                f"Run {job.name}",
                glue_job_name=job_name,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                result_selector={
                    "job_run_id": sfn.JsonPath.string_at("$.Id"),
                    "state": sfn.JsonPath.string_at("$.JobRunState"),
                    "execution_seconds": sfn.JsonPath.number_at("$.ExecutionTime"),
                },
                result_path="$.run",
            )
            run.add_retry(
                errors=GLUE_TRANSIENT_ERRORS,
                interval=cdk.Duration.seconds(60),
                backoff_rate=2,
                max_attempts=4,
                jitter_strategy=sfn.JitterType.FULL,
            )
            record_success = self._audit(
                f"Record success {job.name}",
                group,
                status="SUCCEEDED",
                extra={
                    "ended_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                    "job_run_id": dynamodb_string(sfn.JsonPath.string_at("$.run.job_run_id")),
                },
            )
            for step in (record_start, run, record_success):
                step.add_catch(failure_path, result_path="$.error")
            steps = start.next(record_start).next(run).next(record_success)
            chain = steps if chain is None else sfn.Chain.start(chain).next(steps)

        if not part.is_last:
            next_machine = sfn.StateMachine.from_state_machine_name(
                self, "NextPart", names.state_machine_name(group, part.number + 1)
            )
            continue_next = tasks.StepFunctionsStartExecution(
                self,
                f"Continue with part {part.number + 1}",
                state_machine=next_machine,
                integration_pattern=sfn.IntegrationPattern.RUN_JOB,
                associate_with_parent=True,
                result_path=sfn.JsonPath.DISCARD,
            )
            # The next part records and reports its own job failures; here only the chain fails.
            continue_next.add_catch(fail, result_path="$.error")
            chain = sfn.Chain.start(chain).next(continue_next) if chain is not None else continue_next
        if chain is None:
            raise ValueError(f"group {group}: part {part.number} has no jobs")
        definition = sfn.Chain.start(chain).next(sfn.Succeed(self, "Done"))

        self.log_group = logs.LogGroup(
            self, "Logs", encryption_key=etl_key, retention=log_retention, removal_policy=removal_policy
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=self.state_machine_name,
            definition_body=sfn.DefinitionBody.from_chainable(definition),
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL, include_execution_data=True),
            tracing_enabled=True,
            comment=f"{group}: jobs {', '.join(j.name for j in part.jobs)} (part {part.number} of {part.count})",
        )
        # Audit items are encrypted with the ETL key; DynamoDB uses it on the caller's behalf.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[etl_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"dynamodb.{cdk.Stack.of(self).region}.amazonaws.com"}},
            )
        )
        # The alarm topic is encrypted with its own key: SNS uses it on the publisher's behalf, so without
        # this "Notify failure" is denied.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt", "kms:GenerateDataKey"],
                resources=[alarm_topic_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"sns.{cdk.Stack.of(self).region}.amazonaws.com"}},
            )
        )
        unexplained = acknowledge_role_wildcards(self.state_machine.role, _explain_generated)  # type: ignore[arg-type]
        if unexplained:
            raise RuntimeError(f"{self.state_machine_name}: unexpected wildcard grants {unexplained}")

        self.failed_alarm = cloudwatch.Alarm(
            self,
            "ExecutionsFailed",
            alarm_description=f"{self.state_machine_name}: an execution failed",
            metric=self.state_machine.metric_failed(period=cdk.Duration.minutes(5), statistic="Sum"),
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )
        self.failed_alarm.add_alarm_action(cw_actions.SnsAction(alarm_topic))

    def _audit(
        self, label: str, group: str, *, status: str, extra: dict[str, tasks.DynamoAttributeValue]
    ) -> tasks.DynamoPutItem:
        """One audit item per job run: key (job, run), overwritten as the run moves from RUNNING to its end."""
        put = tasks.DynamoPutItem(
            self,
            label,
            table=self.audit_table,
            item={
                "job_name": dynamodb_string(sfn.JsonPath.string_at("$.current.job")),
                "run_id": dynamodb_string(
                    sfn.JsonPath.format(
                        "{}#{}", sfn.JsonPath.string_at("$.current.started_at"), sfn.JsonPath.execution_name
                    )
                ),
                "group_name": tasks.DynamoAttributeValue.from_string(group),
                "execution_arn": dynamodb_string(sfn.JsonPath.execution_id),
                "status": tasks.DynamoAttributeValue.from_string(status),
                "started_at": dynamodb_string(sfn.JsonPath.string_at("$.current.started_at")),
                **extra,
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        put.add_retry(
            errors=DYNAMODB_TRANSIENT_ERRORS,
            interval=cdk.Duration.seconds(2),
            backoff_rate=2,
            max_attempts=5,
            jitter_strategy=sfn.JitterType.FULL,
        )
        return put


def dynamodb_string(value: str) -> tasks.DynamoAttributeValue:
    return tasks.DynamoAttributeValue.from_string(value)
