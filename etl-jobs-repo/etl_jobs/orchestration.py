"""The state machine running one stack part's jobs in order, auditing each run and notifying on failure.

Single flight. Every object created under a group's raw prefix starts an execution, and each Glue job allows one
run at a time (`max_concurrent_runs=1`), so a burst of uploads would start as many executions as files, each
racing the others' runs (a job of one execution rebuilding what a later job of another is reading) or failing on
Glue's ConcurrentRunsExceededException after its retries, with a failure record, a message and an alarm each.
Instead the group's first part takes a lock, one item of the audit table (`lock#<state machine>`, written with
conditional PutItems only, the pattern of the AWS Compute Blog's "Controlling concurrency in distributed systems
using AWS Step Functions"):

- an execution that finds the lock held asks for a rerun (the item `rerun` of the same key), tries the lock once
  more (the holder may have just let it go) and otherwise ends in the state `Skipped`: it succeeded, so no
  failure record, message or alarm, and its audit item says SKIPPED;
- the holder, however it ends (jobs done, a job failed, a later part failed), lets the lock go and then takes the
  rerun request, if there is one: it starts one follow-up execution, which reads what arrived while it ran (a
  bookmarked job reads the files its bookmark has not seen, a full read reads them all). A file that arrives
  while the group runs is therefore processed by a run that starts after it arrived, with no schedule and with
  one follow-up for a whole burst. (Not "the run in progress picks it up": a job reads its input when it starts.)
- an execution that stops without letting the lock go (aborted, timed out, failed outside its catches) is
  released by its own Step Functions status-change event (etl_jobs.triggers), which starts this state machine
  with `{"release_lock_of": <execution ARN>}`; only the lock that execution holds is freed.

Glue's ConcurrentRunsExceededException is still retried at each run: with the lock it comes only from a run
started outside the state machine (`etl-jobs reprocess`, the post-deploy check, the console).

Not guarded: a redrive. `RedriveExecution` continues an execution from the step that did not succeed (Step
Functions API Reference, RedriveExecution), past the step that takes the lock, which the execution let go of (or
its status-change event released) when it ended; the redriven jobs run without it. The group's README tells
operators to start a new execution instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

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

# Transient Glue API errors, retried at every run.
GLUE_TRANSIENT_ERRORS = [
    "Glue.ConcurrentRunsExceededException",
    "Glue.ThrottlingException",
    "Glue.InternalServiceException",
    "Glue.OperationTimeoutException",
]
# A job's `max_retries` are retries of its task here, not Glue's own (the job's MaxRetries stays 0, glue_job.py).
# AWS documents neither whether a `.sync` task waits for the new run Glue starts after a failed one nor which run it
# then reports; if it does not wait, the retry would run after the task failed, outside the group's lock, and its
# record would be under a run id the task never sees. A retry of the task is a new StartJobRun that the task itself
# follows: under the lock, and the id it returns is the run whose counts are read. "States.TaskFailed" in a retrier
# matches every error but States.Timeout (Step Functions Developer Guide, "Error names"), so the errors no retry
# mends (the run never started) come first with no attempts: the first retrier whose names match applies.
GLUE_PERMANENT_ERRORS = [
    "Glue.AccessDeniedException",
    "Glue.EntityNotFoundException",
    "Glue.InvalidInputException",
    "States.Permissions",
]
FAILED_RUN = ["States.TaskFailed"]
# The error a task of the Step Functions DynamoDB integration raises when a ConditionExpression is false: the
# service's exception name, prefixed with "DynamoDB." (Step Functions Developer Guide, "Handling errors in Step
# Functions workflows"; the Glue errors above follow the same rule).
CONDITION_FAILED = ["DynamoDB.ConditionalCheckFailedException"]
# The lock and the rerun request are items of the audit table under one key of their own: `lock#` cannot begin a
# Glue job name, so no job's audit items share it. `holder` is the execution holding the lock, or FREE.
LOCK_ITEM = "lock"
RERUN_ITEM = "rerun"
FREE = "none"
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
RUN_RECORDS = (
    "Each job run leaves its counts in a record named after its Glue run id (lakejobs.io.run_record_path), which "
    "exists only at run time; the grant is GetObject on the run-record folders of the group's jobs "
    "(staging/<group>/<job>/_runs/, the job folder as a wildcard) only."
)


def lock_key(state_machine_name: str) -> str:
    """The audit table key (`job_name`) of a group's lock and rerun request."""
    return f"lock#{state_machine_name}"


@dataclass(frozen=True)
class RunRecords:
    """Where a job's runs leave their records (`<TempDir>/_runs/<run id>.json`): its bucket by name, the key prefix
    of the records (ending in `/`), and the object ARN pattern granted for them. One pattern serves every job of
    the group in that bucket (`.../staging/<group>/*/_runs/*`): a state machine of fifty jobs would otherwise
    outgrow the role's inline policy with one resource per job."""

    bucket_name: str
    prefix: str
    grant: str


def _explain_generated(actions: list[str], resources: list[str]) -> str | None:
    if resources == ["*"] and actions and all(a in UNSCOPED_ACTIONS for a in actions):
        return " ".join(dict.fromkeys(UNSCOPED_ACTIONS[a] for a in actions))
    if set(actions) <= {"states:DescribeExecution", "states:StopExecution"} and all(
        re.search(r":execution:[\w-]+(\*|:\*)$", r) for r in resources
    ):
        return NEXT_PART_EXECUTIONS
    if actions == ["s3:GetObject"] and all(r.endswith("/_runs/*") for r in resources):
        return RUN_RECORDS
    return None


class GroupStateMachine(Construct):
    """Runs the jobs of a part in order (then the group's next part), writing start/end/status to the audit table;
    the group's first part runs single-flight (module docstring)."""

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
        run_records: Mapping[str, RunRecords],
        data_key_arn: str,
        log_retention: logs.RetentionDays,
        removal_policy: cdk.RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        group = part.group.name
        self.state_machine_name = names.state_machine_name(group, part.number)
        self.audit_table = audit_table
        self.group = group
        self.lock_key = lock_key(self.state_machine_name)
        self.single_flight = part.is_entry
        if not part.jobs:
            raise ValueError(f"group {group}: part {part.number} has no jobs")
        self._first_job = part.jobs[0].name
        missing = sorted({job.name for job in part.jobs} - set(run_records))
        if missing:
            raise ValueError(f"group {group}: no run records location for job(s) {', '.join(missing)}")
        # By name: the follow-up execution this state machine starts is an execution of its own.
        self._itself = (
            sfn.StateMachine.from_state_machine_name(self, "Itself", self.state_machine_name)
            if self.single_flight
            else None
        )

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
        notify.next(fail)
        record_failure = self._audit(
            "Record failure",
            status="FAILED",
            extra={
                "ended_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                "error": dynamodb_string(sfn.JsonPath.string_at("$.error.Error")),
                "cause": dynamodb_string(sfn.JsonPath.string_at("$.error.Cause")),
            },
        )
        # A failed run lets the lock go before it reports: the failure must not hold up the next delivery.
        after_failure = self._let_go("after a failure", then=notify, on_error=notify) if self.single_flight else notify
        record_failure.next(after_failure)
        record_failure.add_catch(after_failure, result_path="$.audit_error")
        failure_path = record_failure

        chain: sfn.IChainable | None = None
        first_step: sfn.State | None = None
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
            first_step = first_step or start
            record_start = self._audit(f"Record start {job.name}", status="RUNNING", extra={})
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
            if job.max_retries:
                run.add_retry(errors=GLUE_PERMANENT_ERRORS, max_attempts=0)
                run.add_retry(
                    errors=FAILED_RUN,
                    interval=cdk.Duration.seconds(60),
                    backoff_rate=2,
                    max_attempts=job.max_retries,
                    jitter_strategy=sfn.JitterType.FULL,
                )
            read_counts, counts_unavailable = self._read_counts(job.name, run_records[job.name])
            record_success = self._audit(
                f"Record success {job.name}",
                status="SUCCEEDED",
                extra={
                    "ended_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                    "job_run_id": dynamodb_string(sfn.JsonPath.string_at("$.run.job_run_id")),
                    # JSON text {"read": {dataset: rows}, "written": {...}, "quarantined": {...}}, or "" with
                    # counts_error saying why the run's record could not be read
                    "counts": dynamodb_string(sfn.JsonPath.string_at("$.record.counts")),
                    "counts_error": dynamodb_string(sfn.JsonPath.string_at("$.record.error")),
                },
            )
            counts_unavailable.next(record_success)
            for step in (record_start, run, record_success):
                step.add_catch(failure_path, result_path="$.error")
            steps = start.next(record_start).next(run).next(read_counts).next(record_success)
            chain = steps if chain is None else sfn.Chain.start(chain).next(steps)
        assert chain is not None and first_step is not None

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
            # The next part records and reports its own job failures; here only the chain fails (and the first
            # part lets the lock go).
            after_later_part = (
                self._let_go("after a later part failed", then=fail, on_error=fail) if self.single_flight else fail
            )
            continue_next.add_catch(after_later_part, result_path="$.error")
            chain = sfn.Chain.start(chain).next(continue_next)
        done = sfn.Succeed(self, "Done")
        if self.single_flight:
            chain = sfn.Chain.start(chain).next(self._let_go("after success", then=done, on_error=failure_path))
        else:
            chain = sfn.Chain.start(chain).next(done)
        definition: sfn.IChainable = (
            self._single_flight_entry(first_step, failure_path, alarm_topic, names) if self.single_flight else chain
        )

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
        # The run records are objects of the zone buckets, encrypted with the data key: S3 decrypts them for the
        # reader, so GetObject needs kms:Decrypt on that key, through S3 only.
        self.state_machine.add_to_role_policy(
            iam.PolicyStatement(
                actions=["kms:Decrypt"],
                resources=[data_key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"s3.{cdk.Stack.of(self).region}.amazonaws.com"}},
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

        # Only failures: a skipped execution succeeds, so a burst of uploads raises no alarm.
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

    # --- single flight -------------------------------------------------------------------------------------

    def _single_flight_entry(
        self,
        first_step: sfn.State,
        failure_path: sfn.State,
        alarm_topic: sns.ITopic,
        names: EnvironmentNames,
    ) -> sfn.IChainable:
        """Where every execution of the first part starts: a release request, or the lock before the jobs."""
        start_group = sfn.Pass(
            self,
            "Start the group",
            parameters={
                "job": names.glue_job_name(self.group, self._first_job),
                "started_at": sfn.JsonPath.string_at("$$.State.EnteredTime"),
            },
            result_path="$.current",
        )
        take_lock = self._take_lock("Take the lock")
        request_rerun = self._put(
            "Request a rerun",
            {
                "run_id": tasks.DynamoAttributeValue.from_string(RERUN_ITEM),
                "requested": tasks.DynamoAttributeValue.from_boolean(True),
                "requested_by": dynamodb_string(sfn.JsonPath.execution_id),
                "requested_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
        )
        take_lock_again = self._take_lock("Take the lock again")
        record_skipped = self._audit(
            "Record skipped",
            status="SKIPPED",
            extra={
                "ended_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
                "reason": tasks.DynamoAttributeValue.from_string(
                    "another execution of the group holds its lock; it starts a follow-up run when it ends"
                ),
            },
        )
        skipped = sfn.Succeed(
            self, "Skipped", comment="another execution runs the group; a follow-up run reads what this one was for"
        )
        start_group.next(take_lock)
        take_lock.next(first_step)
        take_lock.add_catch(request_rerun, errors=CONDITION_FAILED, result_path="$.lock_error")
        request_rerun.next(take_lock_again)
        take_lock_again.next(first_step)
        take_lock_again.add_catch(record_skipped, errors=CONDITION_FAILED, result_path="$.lock_error")
        record_skipped.next(skipped)
        for step in (take_lock, request_rerun, take_lock_again, record_skipped):
            step.add_catch(failure_path, result_path="$.error")

        # Started by the status-change rule of an execution that ended (etl_jobs.triggers): free its lock, if
        # it still holds it. This path never fails, so its own end cannot start another release.
        release_failed = sfn.Succeed(self, "Lock release failed")
        notify_release_failed = tasks.SnsPublish(
            self,
            "Notify lock release failure",
            topic=alarm_topic,
            subject=f"{names.prefix} {names.env}: job group {self.group} lock not released",
            message=sfn.TaskInput.from_object(
                {
                    "group": self.group,
                    "lock": self.lock_key,
                    "stopped_execution": sfn.JsonPath.string_at("$.release_lock_of"),
                    "error": sfn.JsonPath.string_at("$.error.Error"),
                    "cause": sfn.JsonPath.string_at("$.error.Cause"),
                }
            ),
            result_path=sfn.JsonPath.DISCARD,
        )
        notify_release_failed.next(release_failed)
        notify_release_failed.add_catch(release_failed, result_path="$.notify_error")
        release_stopped = self._let_go(
            "of a stopped execution",
            then=sfn.Succeed(self, "Lock released"),
            on_error=notify_release_failed,
            holder=sfn.JsonPath.string_at("$.release_lock_of"),
            not_held=sfn.Succeed(self, "Lock not held"),
        )
        return (
            sfn.Choice(self, "Release requested?")
            .when(sfn.Condition.is_present("$.release_lock_of"), release_stopped)
            .otherwise(start_group)
        )

    def _take_lock(self, label: str) -> tasks.DynamoPutItem:
        """Take the lock if nobody holds it: a conditional PutItem, DynamoDB's atomic compare-and-set."""
        return self._put(
            label,
            {
                "run_id": tasks.DynamoAttributeValue.from_string(LOCK_ITEM),
                "holder": dynamodb_string(sfn.JsonPath.execution_id),
                "since": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            condition="attribute_not_exists(#holder) OR #holder = :free",
            values={":free": tasks.DynamoAttributeValue.from_string(FREE)},
        )

    def _let_go(
        self,
        situation: str,
        *,
        then: sfn.IChainable,
        on_error: sfn.IChainable,
        holder: str | None = None,
        not_held: sfn.IChainable | None = None,
    ) -> sfn.State:
        """Free the lock `holder` (this execution) holds, then take a rerun request: start a follow-up for it.

        A lock this execution does not hold (it never took it, or it was released for it) goes to `not_held`,
        by default on to `then`; any other error goes to `on_error`.
        """
        release = self._put(
            f"Release the lock {situation}",
            {
                "run_id": tasks.DynamoAttributeValue.from_string(LOCK_ITEM),
                "holder": tasks.DynamoAttributeValue.from_string(FREE),
                "released_for": dynamodb_string(holder or sfn.JsonPath.execution_id),
                "released_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            condition="#holder = :holder",
            values={":holder": dynamodb_string(holder or sfn.JsonPath.execution_id)},
        )
        # Clears the request only if there is one (else ConditionalCheckFailed: nothing to follow up).
        take_request = self._put(
            f"Take the rerun request {situation}",
            {
                "run_id": tasks.DynamoAttributeValue.from_string(RERUN_ITEM),
                "requested": tasks.DynamoAttributeValue.from_boolean(False),
                "taken_by": dynamodb_string(sfn.JsonPath.execution_id),
                "taken_at": dynamodb_string(sfn.JsonPath.string_at("$$.State.EnteredTime")),
            },
            condition="#requested = :requested",
            values={":requested": tasks.DynamoAttributeValue.from_boolean(True)},
        )
        follow_up = tasks.StepFunctionsStartExecution(
            self,
            f"Start a follow-up {situation}",
            state_machine=self._require_itself(),
            integration_pattern=sfn.IntegrationPattern.REQUEST_RESPONSE,
            input=sfn.TaskInput.from_object({"follow_up_of": sfn.JsonPath.execution_id}),
            result_path=sfn.JsonPath.DISCARD,
        )
        follow_up.add_retry(
            errors=["StepFunctions.SdkClientException", "States.TaskFailed"],
            interval=cdk.Duration.seconds(2),
            backoff_rate=2,
            max_attempts=5,
            jitter_strategy=sfn.JitterType.FULL,
        )
        release.next(take_request)
        take_request.next(follow_up)
        follow_up.next(then)
        release.add_catch(not_held or then, errors=CONDITION_FAILED, result_path="$.lock_error")
        take_request.add_catch(then, errors=CONDITION_FAILED, result_path="$.lock_error")
        for step in (release, take_request, follow_up):
            step.add_catch(on_error, result_path="$.error")
        return release

    def _require_itself(self) -> sfn.IStateMachine:
        if self._itself is None:
            raise ValueError(f"{self.state_machine_name}: only the group's first part holds the lock")
        return self._itself

    # --- counts and audit ----------------------------------------------------------------------------------

    def _read_counts(self, job: str, records: RunRecords) -> tuple[tasks.CallAwsService, sfn.Pass]:
        """The run's record (lakejobs.io.write_run_record: the counts as JSON text), read by the run id into
        `$.record.counts`; the SDK integration returns a text object's Body as a string, kept as it is (no parse
        that could fail). When it cannot be read the run still succeeded: `$.record.error` says why."""
        read = tasks.CallAwsService(
            self,
            f"Read counts {job}",
            service="s3",
            action="getObject",
            iam_action="s3:GetObject",
            iam_resources=[records.grant],
            parameters={
                "Bucket": records.bucket_name,
                "Key": sfn.JsonPath.format(f"{records.prefix}{{}}.json", sfn.JsonPath.string_at("$.run.job_run_id")),
            },
            result_selector={"counts": sfn.JsonPath.string_at("$.Body"), "error": ""},
            result_path="$.record",
        )
        unavailable = sfn.Pass(
            self,
            f"Counts unavailable {job}",
            parameters={
                "counts": "",
                "error": sfn.JsonPath.format(
                    "{}: {}",
                    sfn.JsonPath.string_at("$.record_error.Error"),
                    sfn.JsonPath.string_at("$.record_error.Cause"),
                ),
            },
            result_path="$.record",
        )
        read.add_catch(unavailable, result_path="$.record_error")
        return read, unavailable

    def _put(
        self,
        label: str,
        item: dict[str, tasks.DynamoAttributeValue],
        *,
        condition: str | None = None,
        values: dict[str, tasks.DynamoAttributeValue] | None = None,
    ) -> tasks.DynamoPutItem:
        """A PutItem of the group's lock key (`run_id` in `item` names the lock or the rerun request); a condition
        names attributes through placeholders (`#holder`), never as DynamoDB reserved words could clash."""
        put = tasks.DynamoPutItem(
            self,
            label,
            table=self.audit_table,
            item={
                "job_name": tasks.DynamoAttributeValue.from_string(self.lock_key),
                "group_name": tasks.DynamoAttributeValue.from_string(self.group),
                **item,
            },
            condition_expression=condition,
            expression_attribute_names=(
                {f"#{name}": name for name in ("holder", "requested") if f"#{name}" in condition} if condition else None
            ),
            expression_attribute_values=values,
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_dynamodb(put)
        return put

    def _audit(self, label: str, *, status: str, extra: dict[str, tasks.DynamoAttributeValue]) -> tasks.DynamoPutItem:
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
                "group_name": tasks.DynamoAttributeValue.from_string(self.group),
                "execution_arn": dynamodb_string(sfn.JsonPath.execution_id),
                "status": tasks.DynamoAttributeValue.from_string(status),
                "started_at": dynamodb_string(sfn.JsonPath.string_at("$.current.started_at")),
                **extra,
            },
            result_path=sfn.JsonPath.DISCARD,
        )
        self._retry_dynamodb(put)
        return put

    @staticmethod
    def _retry_dynamodb(put: tasks.DynamoPutItem) -> None:
        put.add_retry(
            errors=DYNAMODB_TRANSIENT_ERRORS,
            interval=cdk.Duration.seconds(2),
            backoff_rate=2,
            max_attempts=5,
            jitter_strategy=sfn.JitterType.FULL,
        )


def dynamodb_string(value: str) -> tasks.DynamoAttributeValue:
    return tasks.DynamoAttributeValue.from_string(value)
