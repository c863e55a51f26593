"""Is a resource CloudFormation reports as created really there? Asked of the service's own API, by physical id.

One check per resource type whose physical id the service's API takes as it is. Types left out on purpose:
`AWS::IAM::Policy` (an inline policy is read through its role, which the physical id does not name),
`AWS::Glue::Table` (the id is the table's name, without its database), `AWS::EC2::SubnetRouteTableAssociation`
(moto gives it the route table's id, so a lookup would find the table, not the association),
`AWS::SNS::TopicPolicy` and `AWS::Glue::DataCatalogEncryptionSettings` (ids that name nothing an API reads).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError


@dataclass(frozen=True)
class Check:
    service: str
    api: str  # the call, as the summary names it
    # (client, physical id) → whether the answer holds the resource; raises ClientError when the service refuses
    probe: Callable[[Any, str], bool]
    not_found: frozenset[str]  # error codes that mean "no such resource" (any other error is a failure)


@dataclass(frozen=True)
class Probe:
    found: bool
    api: str


def _call(method: str, **arguments: Callable[[str], Any]) -> Callable[[Any, str], bool]:
    """A probe that succeeds when the call does: `arguments` map the physical id to each parameter."""

    def probe(client: Any, physical_id: str) -> bool:
        getattr(client, method)(**{name: make(physical_id) for name, make in arguments.items()})
        return True

    return probe


def _listed(method: str, key: str, field: str, **arguments: Callable[[str], Any]) -> Callable[[Any, str], bool]:
    """A probe for list-style APIs, which answer an unknown id with an empty list rather than an error."""

    def probe(client: Any, physical_id: str) -> bool:
        answer = getattr(client, method)(**{name: make(physical_id) for name, make in arguments.items()})
        return any(item.get(field) == physical_id for item in answer.get(key, []))

    return probe


def _same(physical_id: str) -> str:
    return physical_id


def _one(physical_id: str) -> list[str]:
    return [physical_id]


def _codes(*codes: str) -> frozenset[str]:
    return frozenset(codes)


CHECKS: dict[str, Check] = {
    "AWS::S3::Bucket": Check("s3", "s3 head_bucket", _call("head_bucket", Bucket=_same), _codes("404", "NoSuchBucket")),
    "AWS::S3::BucketPolicy": Check(
        "s3",
        "s3 get_bucket_policy",
        _call("get_bucket_policy", Bucket=_same),
        _codes("NoSuchBucket", "NoSuchBucketPolicy"),
    ),
    "AWS::KMS::Key": Check("kms", "kms describe_key", _call("describe_key", KeyId=_same), _codes("NotFoundException")),
    "AWS::KMS::Alias": Check(
        "kms", "kms describe_key (alias)", _call("describe_key", KeyId=_same), _codes("NotFoundException")
    ),
    "AWS::SSM::Parameter": Check(
        "ssm", "ssm get_parameter", _call("get_parameter", Name=_same), _codes("ParameterNotFound")
    ),
    "AWS::IAM::Role": Check("iam", "iam get_role", _call("get_role", RoleName=_same), _codes("NoSuchEntity")),
    "AWS::Lambda::Function": Check(
        "lambda",
        "lambda get_function_configuration",
        _call("get_function_configuration", FunctionName=_same),
        _codes("ResourceNotFoundException"),
    ),
    "AWS::Logs::LogGroup": Check(
        "logs",
        "logs describe_log_groups",
        _listed("describe_log_groups", "logGroups", "logGroupName", logGroupNamePrefix=_same),
        _codes("ResourceNotFoundException"),
    ),
    "AWS::SNS::Topic": Check(
        "sns", "sns get_topic_attributes", _call("get_topic_attributes", TopicArn=_same), _codes("NotFound")
    ),
    "AWS::SNS::Subscription": Check(
        "sns",
        "sns get_subscription_attributes",
        _call("get_subscription_attributes", SubscriptionArn=_same),
        _codes("NotFound"),
    ),
    "AWS::EC2::VPC": Check(
        "ec2", "ec2 describe_vpcs", _call("describe_vpcs", VpcIds=_one), _codes("InvalidVpcID.NotFound")
    ),
    "AWS::EC2::Subnet": Check(
        "ec2", "ec2 describe_subnets", _call("describe_subnets", SubnetIds=_one), _codes("InvalidSubnetID.NotFound")
    ),
    "AWS::EC2::SecurityGroup": Check(
        "ec2",
        "ec2 describe_security_groups",
        _call("describe_security_groups", GroupIds=_one),
        _codes("InvalidGroup.NotFound"),
    ),
    "AWS::EC2::RouteTable": Check(
        "ec2",
        "ec2 describe_route_tables",
        _call("describe_route_tables", RouteTableIds=_one),
        _codes("InvalidRouteTableID.NotFound"),
    ),
    "AWS::EC2::VPCEndpoint": Check(
        "ec2",
        "ec2 describe_vpc_endpoints",
        _call("describe_vpc_endpoints", VpcEndpointIds=_one),
        _codes("InvalidVpcEndpointId.NotFound"),
    ),
    "AWS::EC2::FlowLog": Check(
        "ec2",
        "ec2 describe_flow_logs",
        _listed("describe_flow_logs", "FlowLogs", "FlowLogId", FlowLogIds=_one),
        _codes("InvalidFlowLogId.NotFound"),
    ),
    "AWS::EC2::SecurityGroupIngress": Check(
        "ec2",
        "ec2 describe_security_group_rules",
        _call("describe_security_group_rules", SecurityGroupRuleIds=_one),
        _codes("InvalidSecurityGroupRuleId.NotFound"),
    ),
    "AWS::EC2::SecurityGroupEgress": Check(
        "ec2",
        "ec2 describe_security_group_rules",
        _call("describe_security_group_rules", SecurityGroupRuleIds=_one),
        _codes("InvalidSecurityGroupRuleId.NotFound"),
    ),
    "AWS::Glue::Database": Check(
        "glue", "glue get_database", _call("get_database", Name=_same), _codes("EntityNotFoundException")
    ),
    "AWS::Glue::Job": Check("glue", "glue get_job", _call("get_job", JobName=_same), _codes("EntityNotFoundException")),
    "AWS::Glue::SecurityConfiguration": Check(
        "glue",
        "glue get_security_configuration",
        _call("get_security_configuration", Name=_same),
        _codes("EntityNotFoundException"),
    ),
    "AWS::SecretsManager::Secret": Check(
        "secretsmanager",
        "secretsmanager describe_secret",
        _call("describe_secret", SecretId=_same),
        _codes("ResourceNotFoundException"),
    ),
    "AWS::CloudWatch::Alarm": Check(
        "cloudwatch",
        "cloudwatch describe_alarms",
        _listed("describe_alarms", "MetricAlarms", "AlarmName", AlarmNames=_one),
        _codes("ResourceNotFound"),
    ),
    "AWS::Events::Rule": Check(
        "events", "events describe_rule", _call("describe_rule", Name=_same), _codes("ResourceNotFoundException")
    ),
    "AWS::DynamoDB::Table": Check(
        "dynamodb",
        "dynamodb describe_table",
        _call("describe_table", TableName=_same),
        _codes("ResourceNotFoundException"),
    ),
    "AWS::StepFunctions::StateMachine": Check(
        "stepfunctions",
        "stepfunctions describe_state_machine",
        _call("describe_state_machine", stateMachineArn=_same),
        _codes("StateMachineDoesNotExist"),
    ),
    "AWS::CodeBuild::Project": Check(
        "codebuild",
        "codebuild batch_get_projects",
        _listed("batch_get_projects", "projects", "name", names=_one),
        _codes("ResourceNotFoundException"),
    ),
    "AWS::CodePipeline::Pipeline": Check(
        "codepipeline",
        "codepipeline get_pipeline",
        _call("get_pipeline", name=_same),
        _codes("PipelineNotFoundException"),
    ),
}


class Prober:
    """Answers `probe(type, physical id)` with one API call, through clients made once per service."""

    def __init__(self, client: Callable[[str], Any], checks: dict[str, Check] = CHECKS) -> None:
        self._make_client = client
        self._clients: dict[str, Any] = {}
        self._checks = checks

    def probe(self, resource_type: str, physical_id: str) -> Probe | None:
        """None when the type has no check; otherwise whether the service found the resource."""
        check = self._checks.get(resource_type)
        if check is None:
            return None
        if check.service not in self._clients:
            self._clients[check.service] = self._make_client(check.service)
        try:
            found = check.probe(self._clients[check.service], physical_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in check.not_found:
                raise
            found = False
        return Probe(found, check.api)
