"""CloudFormation support that moto lacks, for the resource types our templates use.

moto's CloudFormation silently skips types it does not model (a `Ref` to one becomes "None"). For the
types the rehearsal relies on, these models create the real resource through moto's own service backends,
so the resource can be read back with the ordinary AWS API (a Glue database, a secret, a bucket policy...).
Types not listed here and not modelled by moto are reported as "not emulated" in the rehearsal summary,
never as created.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from moto.core.common_models import CloudFormationModel

# (account, region, physical name, properties) → (physical resource id, attributes for Fn::GetAtt)
Creator = Callable[[str, str, str, dict[str, Any]], tuple[str, dict[str, str]]]


@dataclass(frozen=True)
class Emulation:
    cfn_type: str
    service: str
    create: Creator


def _s3_bucket_policy(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.s3.models import s3_backends

    bucket = props["Bucket"]
    s3_backends[account]["aws"].put_bucket_policy(bucket, json.dumps(props["PolicyDocument"]).encode())
    return bucket, {}


def _secret(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[account][region]
    secret_name = props.get("Name") or name
    tags = props.get("Tags")
    # Like the real service: a secret without SecretString has no value until someone puts one.
    result = json.loads(
        backend.create_secret(
            name=secret_name,
            secret_string=props.get("SecretString"),
            secret_binary=None,
            description=props.get("Description"),
            tags=tags,
            kms_key_id=props.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=[],
            force_overwrite=False,
        )
    )
    return result["ARN"], {"Id": result["ARN"]}


def _glue_database(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    database_input = dict(props["DatabaseInput"])
    db_name = database_input.get("Name") or name.lower().replace("-", "_")
    database_input["Name"] = db_name
    glue_backends[account][region].create_database(db_name, database_input)
    return db_name, {}


def _glue_table(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    table_input = dict(props["TableInput"])
    table_name = table_input.get("Name") or name.lower().replace("-", "_")
    table_input["Name"] = table_name
    glue_backends[account][region].create_table(props["DatabaseName"], table_name, table_input)
    return table_name, {}


def _glue_job(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    job_name = props.get("Name") or name
    glue_backends[account][region].create_job(
        name=job_name,
        role=props["Role"],
        command=props["Command"],
        description=props.get("Description", ""),
        log_uri=props.get("LogUri", ""),
        execution_property=props.get("ExecutionProperty", {}),
        default_arguments=props.get("DefaultArguments", {}),
        non_overridable_arguments=props.get("NonOverridableArguments", {}),
        connections=props.get("Connections", {}),
        max_retries=int(props.get("MaxRetries", 0)),
        allocated_capacity=int(props.get("AllocatedCapacity", 0)),
        timeout=int(props.get("Timeout", 2880)),
        max_capacity=float(props.get("MaxCapacity", 0.0)),
        security_configuration=props.get("SecurityConfiguration", ""),
        tags=props.get("Tags", {}),
        notification_property=props.get("NotificationProperty", {}),
        glue_version=props.get("GlueVersion", ""),
        number_of_workers=int(props.get("NumberOfWorkers", 0)),
        worker_type=props.get("WorkerType", ""),
        code_gen_configuration_nodes={},
        execution_class=props.get("ExecutionClass", "STANDARD"),
        source_control_details={},
    )
    return job_name, {}


def _glue_security_configuration(
    account: str, region: str, name: str, props: dict[str, Any]
) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    config_name = props.get("Name") or name
    glue_backends[account][region].create_security_configuration(config_name, props["EncryptionConfiguration"])
    return config_name, {}


def _glue_connection(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    connection_input = dict(props["ConnectionInput"])
    connection_input.setdefault("Name", name)
    glue_backends[account][region].create_connection(props.get("CatalogId", account), connection_input, {})
    return connection_input["Name"], {}


def _glue_catalog_encryption(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.glue.models import glue_backends

    glue_backends[account][region].put_data_catalog_encryption_settings(
        props.get("CatalogId", account), props["DataCatalogEncryptionSettings"]
    )
    return f"{account}-catalog-encryption", {}


def _sns_subscription(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.sns.models import sns_backends

    subscription = sns_backends[account][region].subscribe(props["TopicArn"], props["Endpoint"], props["Protocol"])
    return subscription.arn, {"Arn": subscription.arn}


def _sns_topic_policy(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.sns.models import sns_backends

    for topic_arn in props["Topics"]:
        sns_backends[account][region].set_topic_attribute(topic_arn, "policy", json.dumps(props["PolicyDocument"]))
    return name, {}


def _cloudwatch_alarm(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.cloudwatch.models import cloudwatch_backends

    alarm_name = props.get("AlarmName") or name
    alarm = cloudwatch_backends[account][region].put_metric_alarm(
        name=alarm_name,
        namespace=props.get("Namespace", ""),
        metric_name=props.get("MetricName", ""),
        comparison_operator=props["ComparisonOperator"],
        evaluation_periods=int(props["EvaluationPeriods"]),
        period=int(props.get("Period", 60)),
        threshold=float(props.get("Threshold", 0)),
        statistic=props.get("Statistic", ""),
        description=props.get("AlarmDescription", ""),
        dimensions=props.get("Dimensions", []),
        alarm_actions=props.get("AlarmActions", []),
        datapoints_to_alarm=props.get("DatapointsToAlarm"),
        ok_actions=props.get("OKActions", []),
        treat_missing_data=props.get("TreatMissingData"),
    )
    return alarm_name, {"Arn": alarm.alarm_arn}


def _security_group_egress(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.ec2.models import ec2_backends

    rules, _ = ec2_backends[account][region].authorize_security_group_egress(
        group_name_or_id=props["GroupId"],
        ip_protocol=str(props["IpProtocol"]),
        from_port=str(props.get("FromPort", -1)),
        to_port=str(props.get("ToPort", -1)),
        ip_ranges=[{"CidrIp": props["CidrIp"], "Description": props.get("Description")}] if "CidrIp" in props else [],
        source_groups=[{"GroupId": props["DestinationSecurityGroupId"]}]
        if "DestinationSecurityGroupId" in props
        else [],
        prefix_list_ids=[{"PrefixListId": props["DestinationPrefixListId"]}]
        if "DestinationPrefixListId" in props
        else [],
    )
    return rules[0].id if rules else name, {}


def _camel(value: Any, *, keep: tuple[str, ...] = ()) -> Any:
    """CloudFormation's PascalCase property names as the service API's camelCase (values untouched)."""
    if isinstance(value, list):
        return [_camel(item, keep=keep) for item in value]
    if not isinstance(value, dict):
        return value
    return {
        key[:1].lower() + key[1:]: (item if key in keep else _camel(item, keep=keep)) for key, item in value.items()
    }


def _codebuild_project(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.codebuild.models import codebuild_backends

    project = props.get("Name") or name
    api = _camel(props)
    codebuild_backends[account][region].create_project(
        project_name=project,
        description=props.get("Description"),
        project_source=api.get("source", {}),
        artifacts=api.get("artifacts", {}),
        environment=api.get("environment", {}),
        service_role=props["ServiceRole"],
        tags=props.get("Tags"),
        cache=api.get("cache"),
        timeout=props.get("TimeoutInMinutes"),
        queued_timeout=props.get("QueuedTimeoutInMinutes"),
        source_version=props.get("SourceVersion"),
        logs_config=api.get("logsConfig"),
        vpc_config=api.get("vpcConfig"),
    )
    return project, {"Arn": f"arn:aws:codebuild:{region}:{account}:project/{project}"}


def _codepipeline(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.codepipeline.models import codepipeline_backends

    pipeline_name = props.get("Name") or name
    # Action configurations keep their keys (ProjectName, BranchName, ...): the API spells them the same way.
    definition = _camel(
        {k: v for k, v in props.items() if k not in ("Tags", "RestartExecutionOnUpdate")}, keep=("Configuration",)
    )
    definition["name"] = pipeline_name
    codepipeline_backends[account][region].create_pipeline(definition, props.get("Tags", []))
    return pipeline_name, {"Version": "1"}


def _codecommit_repository(account: str, region: str, name: str, props: dict[str, Any]) -> tuple[str, dict[str, str]]:
    from moto.codecommit.models import codecommit_backends

    repository = props["RepositoryName"]
    metadata = codecommit_backends[account][region].create_repository(
        repository, props.get("RepositoryDescription", "")
    )
    return metadata["repositoryId"], {
        "Arn": metadata["Arn"],
        "Name": repository,
        "CloneUrlHttp": metadata["cloneUrlHttp"],
        "CloneUrlSsh": metadata["cloneUrlSsh"],
    }


EMULATIONS = (
    Emulation("AWS::S3::BucketPolicy", "s3", _s3_bucket_policy),
    Emulation("AWS::SecretsManager::Secret", "secretsmanager", _secret),
    Emulation("AWS::Glue::Database", "glue", _glue_database),
    Emulation("AWS::Glue::Table", "glue", _glue_table),
    Emulation("AWS::Glue::Job", "glue", _glue_job),
    Emulation("AWS::Glue::SecurityConfiguration", "glue", _glue_security_configuration),
    Emulation("AWS::Glue::Connection", "glue", _glue_connection),
    Emulation("AWS::Glue::DataCatalogEncryptionSettings", "glue", _glue_catalog_encryption),
    Emulation("AWS::SNS::Subscription", "sns", _sns_subscription),
    Emulation("AWS::SNS::TopicPolicy", "sns", _sns_topic_policy),
    Emulation("AWS::CloudWatch::Alarm", "cloudwatch", _cloudwatch_alarm),
    Emulation("AWS::CodeBuild::Project", "codebuild", _codebuild_project),
    Emulation("AWS::CodePipeline::Pipeline", "codepipeline", _codepipeline),
    Emulation("AWS::CodeCommit::Repository", "codecommit", _codecommit_repository),
    Emulation("AWS::EC2::SecurityGroupEgress", "ec2", _security_group_egress),
)


def model_class(emulation: Emulation) -> type[CloudFormationModel]:
    """A moto CloudFormation model for one type, placed where moto looks for its service's models."""

    class _Model(CloudFormationModel):
        def __init__(self, physical_id: str, attributes: dict[str, str]) -> None:
            self.physical_id = physical_id
            self.attributes = attributes

        @property
        def physical_resource_id(self) -> str:
            return self.physical_id

        @staticmethod
        def cloudformation_type() -> str:
            return emulation.cfn_type

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            return self.attributes.get(attribute_name, self.physical_id)

        @classmethod
        def create_from_cloudformation_json(
            cls,
            resource_name: str,
            cloudformation_json: dict[str, Any],
            account_id: str,
            region_name: str,
            **kwargs: Any,
        ) -> _Model:
            physical_id, attributes = emulation.create(
                account_id, region_name, resource_name, cloudformation_json.get("Properties", {})
            )
            return cls(physical_id, attributes)

        @classmethod
        def delete_from_cloudformation_json(
            cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
        ) -> None:
            return None

    # moto's instance tracker files models by their module name: it must read `moto.<service>.<x>`.
    _Model.__module__ = f"moto.{emulation.service}.lakeops_emulation"
    _Model.__name__ = _Model.__qualname__ = "Emulated" + emulation.cfn_type.replace("::", "")
    return _Model
