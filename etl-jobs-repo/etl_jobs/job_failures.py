"""Glue job runs that end FAILED, TIMEOUT or ERROR, however they were started, reported to the alarm topic."""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sns as sns
from constructs import Construct

FAILED_STATES = ["FAILED", "TIMEOUT", "ERROR"]
# EventBridge rejects patterns over 4096 characters; job name lists are split well below that.
MAX_PATTERN_CHARS = 3000


class JobFailureNotifications(Construct):
    """One EventBridge rule per batch of job names, matching the jobs of this stack exactly."""

    def __init__(
        self, scope: Construct, construct_id: str, *, job_names: list[str], alarm_topic: sns.ITopic, label: str
    ) -> None:
        super().__init__(scope, construct_id)
        self.rules: list[events.Rule] = []
        for number, batch in enumerate(_batches(job_names), start=1):
            rule = events.Rule(
                self,
                f"Rule{number}",
                description=f"{label}: Glue job run failed, timed out or errored (batch {number})",
                event_pattern=events.EventPattern(
                    source=["aws.glue"],
                    detail_type=["Glue Job State Change"],
                    detail={"state": FAILED_STATES, "jobName": batch},
                ),
            )
            rule.add_target(
                targets.SnsTopic(
                    alarm_topic,
                    message=events.RuleTargetInput.from_object(
                        {
                            "alarm": f"{label}: Glue job run ended {events.EventField.from_path('$.detail.state')}",
                            "job": events.EventField.from_path("$.detail.jobName"),
                            "run": events.EventField.from_path("$.detail.jobRunId"),
                            "message": events.EventField.from_path("$.detail.message"),
                        }
                    ),
                )
            )
            # The topic comes from the SSM contract of this same account and region; its ARN is a deploy-time
            # token, which CDK cannot compare with the rule's environment.
            cdk.Annotations.of(rule).acknowledge_warning(
                "@aws-cdk/aws-events:ruleUnresolvedEnvironment",
                "the alarm topic is in this account and region (SSM contract), resolved at deploy time",
            )
            self.rules.append(rule)


def _batches(job_names: list[str]) -> list[list[str]]:
    batches: list[list[str]] = [[]]
    for name in job_names:
        if batches[-1] and len(json.dumps(batches[-1] + [name])) > MAX_PATTERN_CHARS:
            batches.append([])
        batches[-1].append(name)
    return batches
