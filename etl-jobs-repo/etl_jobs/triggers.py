"""What starts a job group: objects created under its raw-zone prefix, its schedule, or both; and what frees the
group's lock when one of its executions stops without freeing it (etl_jobs.orchestration, "Single flight")."""

from __future__ import annotations

from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from etl_jobs.spec import Group

# The ends of an execution that may leave the group's lock held: a catch cannot run when an execution is stopped
# (ABORTED) or times out, and FAILED covers a failure outside the catches. Standard workflows send these status
# changes to EventBridge as "Step Functions Execution Status Change" events, detail.executionArn naming the
# execution (Step Functions Developer Guide, "Automating Step Functions event delivery with EventBridge").
STOPPED_STATUSES = ["FAILED", "TIMED_OUT", "ABORTED"]


class GroupTriggers(Construct):
    """EventBridge rules starting the group's state machine (S3 `Object Created` needs EventBridge on the bucket)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        group: Group,
        raw_bucket_name: str,
        state_machine: sfn.IStateMachine,
    ) -> None:
        super().__init__(scope, construct_id)
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("events.amazonaws.com"),
            description=f"EventBridge: start the {group.name} job group",
        )
        target = targets.SfnStateMachine(state_machine, role=self.role, retry_attempts=3)
        # The state machine itself frees the lock of the execution named in its input, if that one holds it.
        self.stopped_executions = events.Rule(
            self,
            "StoppedExecutions",
            description=f"{group.name}: free the group's lock when an execution stops without freeing it",
            event_pattern=events.EventPattern(
                source=["aws.states"],
                detail_type=["Step Functions Execution Status Change"],
                detail={"stateMachineArn": [state_machine.state_machine_arn], "status": STOPPED_STATUSES},
            ),
            targets=[
                targets.SfnStateMachine(
                    state_machine,
                    role=self.role,
                    retry_attempts=3,
                    input=events.RuleTargetInput.from_object(
                        {"release_lock_of": events.EventField.from_path("$.detail.executionArn")}
                    ),
                )
            ],
        )
        self.object_created: events.Rule | None = None
        self.schedule: events.Rule | None = None
        if group.raw_prefix is not None:
            self.object_created = events.Rule(
                self,
                "ObjectCreated",
                description=f"{group.name}: objects created under raw/{group.raw_prefix}",
                event_pattern=events.EventPattern(
                    source=["aws.s3"],
                    detail_type=["Object Created"],
                    detail={"bucket": {"name": [raw_bucket_name]}, "object": {"key": [{"prefix": group.raw_prefix}]}},
                ),
                targets=[target],
            )
        if group.schedule is not None:
            self.schedule = events.Rule(
                self,
                "Schedule",
                description=f"{group.name}: {group.schedule}",
                schedule=events.Schedule.expression(group.schedule),
                targets=[target],
            )
