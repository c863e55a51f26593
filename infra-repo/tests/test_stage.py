"""The infra stage of every environment of the example config, synthesized once with cdk-nag on."""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Match, Template

from datalake_config import LakeConfig, load, names_for, tags
from datalake_config.naming import TRANSIENT_PREFIXES, Kind
from datalake_config.testing import EXAMPLE_CONFIG_PATH
from datalake_infra.network.lake_vpc import HELPER_LAMBDA_RULE
from datalake_infra.network.s3_prefix_list import context_key, s3_prefix_list_name
from datalake_infra.stage import InfraStage
from lake_pipelines.checks import acknowledgements, cfn_lint, enable_nag, lake_app, synth
from lake_pipelines.policy_coverage import coverage_problems, stage_templates
from lake_pipelines.role_boundary import boundary_problems

ENVIRONMENTS = load(EXAMPLE_CONFIG_PATH).environment_names
COMPONENTS = ("storage", "network", "catalog", "verify")
INTERFACE_SERVICES = {"glue", "kms", "secretsmanager", "ssm", "states", "logs", "sts"}
# Renaming one of these replaces a stateful resource (and, with RETAIN, orphans the old one).
PINNED_LOGICAL_IDS = {
    "storage": {
        "AWS::KMS::Key": {"DataKey2A0DE9E6", "AlarmsKey7F5A268D"},
        "AWS::S3::Bucket": {
            "AccessLogsBucketCD784A59",
            "RawZoneBucketD23CD850",
            "ConformedZoneBucket869BDF3D",
            "CuratedZoneBucketBB71C901",
        },
        "AWS::SNS::Topic": {"AlarmsTopic3A2DFEBA"},
    },
    "catalog": {"AWS::Glue::Database": {"RawDatabase", "ConformedDatabase", "CuratedDatabase"}},
    "network": {"AWS::EC2::VPC": {"NetworkVpc7FB7348F"}, "AWS::Logs::LogGroup": {"NetworkFlowLogGroup4F8CEEEF"}},
}
# What holds data (or evidence, for the flow logs): kept on deletion where the environment retains data.
RETAINED = {
    ("storage", "AWS::KMS::Key"),
    ("storage", "AWS::S3::Bucket"),
    ("catalog", "AWS::Glue::Database"),
    ("network", "AWS::Logs::LogGroup"),
}
# Publishers to the encrypted alarm topic: AWS documents their key statements without a condition.
DOCUMENTED_UNCONDITIONED = ("events.amazonaws.com", "cloudwatch.amazonaws.com")
# Every Lambda function a stage template may hold, by component (issue 14): CDK adds one per custom resource
# provider, and each needs a reason (the acknowledgment HELPER_LAMBDA_RULE). A new helper fails this list.
HELPER_LAMBDAS = {
    "storage": set(),
    "network": {"CustomVpcRestrictDefaultSGCustomResourceProviderHandlerDC833E5E"},
    "catalog": set(),
    "verify": set(),
}
# The custom resources those functions serve; everything else is a CloudFormation resource type.
CUSTOM_RESOURCES = {"network": {"Custom::VpcRestrictDefaultSG"}}
PINNED_ZONE_BUCKETS = {
    "raw": "RawZoneBucketD23CD850",
    "conformed": "ConformedZoneBucket869BDF3D",
    "curated": "CuratedZoneBucketBB71C901",
}


@dataclass
class Synthesized:
    config: LakeConfig
    outdir: Path
    stages: dict[str, InfraStage]
    templates: dict[tuple[str, str], dict[str, Any]]
    artifacts: dict[tuple[str, str], cdk.cx_api.CloudFormationStackArtifact]

    def template(self, env: str, component: str) -> Template:
        return Template.from_json(self.templates[(env, component)])

    def resources(self, env: str, component: str, kind: str) -> dict[str, dict[str, Any]]:
        resources = self.templates[(env, component)]["Resources"]
        return {key: value for key, value in resources.items() if value["Type"] == kind}


@pytest.fixture(scope="module")
def synthesized(
    example_config: LakeConfig, cdk_context: dict[str, Any], tmp_path_factory: pytest.TempPathFactory
) -> Synthesized:
    outdir = tmp_path_factory.mktemp("infra-stages")
    app = lake_app(context=cdk_context, outdir=str(outdir))
    stages = {}
    for env in example_config.environment_names:
        stages[env] = InfraStage(app, env.capitalize(), config=example_config, env_name=env)
        enable_nag(stages[env])
    synth(app)  # raises NagFindings on any unacknowledged cdk-nag finding
    templates, artifacts = {}, {}
    for env, stage in stages.items():
        assembly = stage.synth()
        for component in COMPONENTS:
            artifact = assembly.get_stack_by_name(names_for(example_config, env).stack_name("infra", component))
            artifacts[(env, component)] = artifact
            templates[(env, component)] = artifact.template
    return Synthesized(example_config, outdir, stages, templates, artifacts)


# --- the stage as a whole ----------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_shipped_execution_policy_covers_the_stage(synthesized: Synthesized, env: str) -> None:
    assert coverage_problems(stage_templates(synthesized.stages[env]), synthesized.config, env) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_role_carries_the_stage_role_boundary_and_fits_inside_it(synthesized: Synthesized, env: str) -> None:
    stacks = stage_templates(synthesized.stages[env])
    assert [r for s in stacks for r in s.resources("AWS::IAM::Role")]  # the default-SG handler's and the verify role
    assert boundary_problems(stacks, synthesized.config, env) == []


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_stack_targets_the_environment_account_with_its_name_and_tags(synthesized: Synthesized, env: str) -> None:
    target = synthesized.config.env(env)
    for component in COMPONENTS:
        artifact = synthesized.artifacts[(env, component)]
        assert artifact.environment.account == target.account
        assert artifact.environment.region == target.region
        assert artifact.stack_name == f"{synthesized.config.prefix}-{env}-infra-{component}"
        assert artifact.tags == tags(synthesized.config, env, "infra")


def test_no_template_imports_or_exports_values(synthesized: Synthesized) -> None:
    for template in synthesized.templates.values():
        text = json.dumps(template)
        assert "Fn::ImportValue" not in text
        assert all("Export" not in output for output in template.get("Outputs", {}).values())


def test_acknowledged_findings_are_the_known_few_and_each_has_a_reason(synthesized: Synthesized) -> None:
    found = acknowledgements(synthesized.outdir)
    assert found, "the stage has findings that must be acknowledged; none were written"
    assert all(len(ack.reason) >= 20 for ack in found)
    nag_rules = {ack.rule for ack in found if ack.rule.startswith("AwsSolutions-")}
    # the verify role's EC2 Describe calls; the helper Lambdas' IAM4/IAM5 findings left with the helpers
    assert nag_rules == {"AwsSolutions-IAM5[Resource::*]"}


@pytest.mark.parametrize("component", COMPONENTS)
def test_only_the_acknowledged_helper_lambdas_are_in_the_templates(synthesized: Synthesized, component: str) -> None:
    for env in ENVIRONMENTS:
        functions = synthesized.resources(env, component, "AWS::Lambda::Function")
        assert set(functions) == HELPER_LAMBDAS[component], (env, component)
        for function in functions.values():
            reasons = [
                rule["reason"]
                for rule in function["Metadata"]["cdk_nag"]["rules_to_suppress"]
                if rule["id"] == HELPER_LAMBDA_RULE
            ]
            assert len(reasons) == 1 and len(reasons[0]) >= 20, function["Metadata"]
        custom = {r["Type"] for r in synthesized.templates[(env, component)]["Resources"].values()}
        custom = {
            kind for kind in custom if kind.startswith("Custom::") or kind == "AWS::CloudFormation::CustomResource"
        }
        assert custom == CUSTOM_RESOURCES.get(component, set()), (env, component)


def test_cfn_lint_finds_no_errors(synthesized: Synthesized) -> None:
    assert cfn_lint(synthesized.outdir) == []


@pytest.mark.parametrize("component", sorted(PINNED_LOGICAL_IDS))
def test_stateful_logical_ids_are_pinned(synthesized: Synthesized, component: str) -> None:
    for env in ENVIRONMENTS:
        for kind, logical_ids in PINNED_LOGICAL_IDS[component].items():
            assert logical_ids <= set(synthesized.resources(env, component, kind)), (env, kind)


# --- the contract ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_stage_writes_exactly_the_contract(synthesized: Synthesized, env: str) -> None:
    contract = {entry.path: entry for entry in names_for(synthesized.config, env).contract()}
    written: dict[str, tuple[str, str]] = {}
    for component in COMPONENTS:
        for parameter in synthesized.resources(env, component, "AWS::SSM::Parameter").values():
            name = parameter["Properties"]["Name"]
            assert name not in written, f"{name} written twice"
            written[name] = (component, parameter["Properties"]["Type"])
    assert set(written) == set(contract)
    owners = {
        Kind.BUCKET_NAME: "storage",
        Kind.BUCKET_ARN: "storage",
        Kind.KMS_KEY_ARN: "storage",
        Kind.SNS_TOPIC_ARN: "storage",
        Kind.GLUE_DATABASE: "catalog",
        Kind.VPC_ID: "network",
        Kind.SUBNET_IDS: "network",
        Kind.AVAILABILITY_ZONES: "network",
        Kind.SECURITY_GROUP_ID: "network",
    }
    for path, (component, parameter_type) in written.items():
        kind = contract[path].kind
        assert component == owners[kind], path
        assert parameter_type == ("StringList" if kind in (Kind.SUBNET_IDS, Kind.AVAILABILITY_ZONES) else "String")


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_subnet_zones_in_the_contract_come_from_committed_context(
    synthesized: Synthesized, env: str, cdk_context: dict[str, Any]
) -> None:
    target = synthesized.config.env(env)
    recorded = cdk_context[f"availability-zones:account={target.account}:region={target.region}"]
    names = names_for(synthesized.config, env)
    synthesized.template(env, "network").has_resource_properties(
        "AWS::SSM::Parameter",
        {"Name": names.subnet_availability_zones, "Value": ",".join(recorded[: target.max_azs])},
    )


# --- storage -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_is_encrypted_versioned_private_and_owner_enforced(synthesized: Synthesized, env: str) -> None:
    buckets = synthesized.resources(env, "storage", "AWS::S3::Bucket")
    assert len(buckets) == len(synthesized.config.zones) + 1
    for logical_id, bucket in buckets.items():
        properties = bucket["Properties"]
        encryption = properties["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
        algorithm = encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        if logical_id.startswith("AccessLogs"):
            assert algorithm == "AES256"  # S3 server access logging cannot write to SSE-KMS buckets
        else:
            assert algorithm == "aws:kms"
            assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {
                "Fn::GetAtt": ["DataKey2A0DE9E6", "Arn"]
            }
        assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
        assert properties["PublicAccessBlockConfiguration"] == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert properties["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
        assert "BucketName" not in properties


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_zone_buckets_log_access_under_their_zone(synthesized: Synthesized, env: str) -> None:
    for zone in synthesized.config.zones:
        synthesized.template(env, "storage").has_resource_properties(
            "AWS::S3::Bucket",
            {
                "LoggingConfiguration": {
                    "DestinationBucketName": {"Ref": "AccessLogsBucketCD784A59"},
                    "LogFilePrefix": f"{zone}/",
                }
            },
        )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_only_the_raw_zone_sends_object_events_to_eventbridge(synthesized: Synthesized, env: str) -> None:
    buckets = synthesized.resources(env, "storage", "AWS::S3::Bucket")
    configured = {key: b["Properties"].get("NotificationConfiguration") for key, b in buckets.items()}
    raw = PINNED_ZONE_BUCKETS[synthesized.config.raw_zone]
    # the bucket's own property, not CDK's notifications custom resource and its Lambda
    assert configured.pop(raw) == {"EventBridgeConfiguration": {"EventBridgeEnabled": True}}
    assert set(configured.values()) == {None}
    assert synthesized.resources(env, "storage", "Custom::S3BucketNotifications") == {}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_bucket_policy_denies_requests_without_tls(synthesized: Synthesized, env: str) -> None:
    buckets = synthesized.resources(env, "storage", "AWS::S3::Bucket")
    policies = synthesized.resources(env, "storage", "AWS::S3::BucketPolicy").values()
    protected = set()
    for policy in policies:
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        if any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
            if "Condition" in s
        ):
            protected.add(policy["Properties"]["Bucket"]["Ref"])
    assert protected == set(buckets)


def _expected_zone_rules(config: LakeConfig, env: str, zone: str) -> dict[str, dict[str, Any]]:
    lifecycle = config.env(env).lifecycle
    rules: dict[str, dict[str, Any]] = {
        "expire-noncurrent-versions": {
            "NoncurrentVersionExpiration": {"NoncurrentDays": lifecycle.noncurrent_version_days},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": lifecycle.incomplete_upload_days},
            "ExpiredObjectDeleteMarker": True,
        }
    }
    for index, prefix in enumerate(TRANSIENT_PREFIXES, start=1):
        rules[f"expire-transient-{index}"] = {"Prefix": prefix, "ExpirationInDays": lifecycle.staging_expiration_days}
    expiration = lifecycle.raw_expiration_days if zone == config.raw_zone else None
    if expiration is None or expiration > lifecycle.infrequent_access_days:
        rules["transition-to-infrequent-access"] = {
            "Transitions": [{"StorageClass": "STANDARD_IA", "TransitionInDays": lifecycle.infrequent_access_days}]
        }
    if expiration is not None:
        rules["expire-objects"] = {"ExpirationInDays": expiration}
    return rules


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_lifecycle_rules_follow_the_environment_config(synthesized: Synthesized, env: str) -> None:
    buckets = synthesized.resources(env, "storage", "AWS::S3::Bucket")
    for zone in synthesized.config.zones:
        bucket = buckets[PINNED_ZONE_BUCKETS[zone]]
        rules = {
            rule.pop("Id"): rule
            for rule in json.loads(json.dumps(bucket["Properties"]["LifecycleConfiguration"]["Rules"]))
        }
        assert all(rule.pop("Status") == "Enabled" for rule in rules.values())
        assert rules == _expected_zone_rules(synthesized.config, env, zone), zone
    access_log_rules = buckets["AccessLogsBucketCD784A59"]["Properties"]["LifecycleConfiguration"]["Rules"]
    retention = synthesized.config.env(env).lifecycle.log_retention_days
    assert {"ExpirationInDays": retention, "Id": "expire-objects", "Status": "Enabled"} in access_log_rules


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_retention_and_termination_protection_only_where_data_is_retained(synthesized: Synthesized, env: str) -> None:
    retain = synthesized.config.env(env).retain_data
    expected_policy = "Retain" if retain else "Delete"
    for component, kinds in PINNED_LOGICAL_IDS.items():
        for kind, logical_ids in kinds.items():
            for logical_id in logical_ids if (component, kind) in RETAINED else ():
                resource = synthesized.resources(env, component, kind)[logical_id]
                assert resource["DeletionPolicy"] == expected_policy, (component, logical_id)
                assert resource["UpdateReplacePolicy"] == expected_policy, (component, logical_id)
    assert synthesized.artifacts[(env, "storage")].termination_protection is retain
    assert synthesized.artifacts[(env, "catalog")].termination_protection is retain
    # no environment's buckets are emptied by a helper Lambda: deleting a bucket that holds data fails instead
    assert synthesized.resources(env, "storage", "Custom::S3AutoDeleteObjects") == {}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_keys_rotate_and_their_policies_grant_no_wildcard_actions(synthesized: Synthesized, env: str) -> None:
    keys = synthesized.resources(env, "storage", "AWS::KMS::Key")
    account = synthesized.config.env(env).account
    for key in keys.values():
        properties = key["Properties"]
        assert properties["EnableKeyRotation"] is True
        for statement in properties["KeyPolicy"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert not any(action.endswith(":*") or action == "*" for action in actions)
            principal = statement["Principal"]
            assert principal == {"AWS": f"arn:aws:iam::{account}:root"} or "Service" in principal
            # services act only for this account's resources, except the alarm topic's publishers, whose
            # documented key statements carry no condition (pinned in the alarm-topic test below)
            if "Service" in principal and principal["Service"] not in DOCUMENTED_UNCONDITIONED:
                assert "Condition" in statement, statement


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_alarm_topic_is_encrypted_tls_only_and_mails_the_configured_people(synthesized: Synthesized, env: str) -> None:
    template = synthesized.template(env, "storage")
    template.has_resource_properties(
        "AWS::SNS::Topic", {"KmsMasterKeyId": {"Fn::GetAtt": ["AlarmsKey7F5A268D", "Arn"]}}
    )
    template.has_resource_properties(
        "AWS::SNS::TopicPolicy",
        {
            "PolicyDocument": {
                "Statement": Match.array_with(
                    [Match.object_like({"Effect": "Deny", "Condition": {"Bool": {"aws:SecureTransport": "false"}}})]
                )
            }
        },
    )
    # The publishers' key statements are AWS's documented ones, with no condition the KMS call may not carry
    # (a mismatch drops notifications silently); the topic policy keeps the same-account condition.
    key = synthesized.resources(env, "storage", "AWS::KMS::Key")["AlarmsKey7F5A268D"]
    by_service = {
        s["Principal"]["Service"]: s for s in key["Properties"]["KeyPolicy"]["Statement"] if "Service" in s["Principal"]
    }
    assert {k: (sorted(v["Action"]), v.get("Condition")) for k, v in by_service.items()} == {
        "events.amazonaws.com": (["kms:Decrypt", "kms:GenerateDataKey"], None),
        "cloudwatch.amazonaws.com": (["kms:Decrypt", "kms:GenerateDataKey*"], None),
    }
    (topic_policy,) = synthesized.resources(env, "storage", "AWS::SNS::TopicPolicy").values()
    (publish,) = [s for s in topic_policy["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    assert publish["Condition"] == {"StringEquals": {"aws:SourceAccount": synthesized.config.env(env).account}}
    # the ETL state machines publish with their own roles, so the contract names the topic's key too
    parameters = synthesized.resources(env, "storage", "AWS::SSM::Parameter").values()
    written = {p["Properties"]["Name"]: p["Properties"]["Value"] for p in parameters}
    names = names_for(synthesized.config, env)
    assert written[names.alarm_topic_key_arn] == {"Fn::GetAtt": ["AlarmsKey7F5A268D", "Arn"]}
    subscriptions = synthesized.resources(env, "storage", "AWS::SNS::Subscription").values()
    assert sorted(s["Properties"]["Endpoint"] for s in subscriptions) == sorted(
        synthesized.config.notification_emails(env)
    )
    assert all(s["Properties"]["Protocol"] == "email" for s in subscriptions)


# --- network ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_vpc_cidr_subnets_and_nat_follow_the_config(synthesized: Synthesized, env: str) -> None:
    target = synthesized.config.env(env)
    template = synthesized.template(env, "network")
    template.has_resource_properties("AWS::EC2::VPC", {"CidrBlock": target.vpc_cidr})
    template.resource_count_is("AWS::EC2::NatGateway", target.nat_gateways)
    subnets = synthesized.resources(env, "network", "AWS::EC2::Subnet").values()
    vpc = ipaddress.ip_network(target.vpc_cidr)
    private = [s for s in subnets if _tag(s, "aws-cdk:subnet-name") == "private"]
    assert len(private) == target.max_azs
    assert all(ipaddress.ip_network(s["Properties"]["CidrBlock"]).subnet_of(vpc) for s in subnets)
    expected_type = "Isolated" if target.nat_gateways == 0 else "Private"
    assert {_tag(s, "aws-cdk:subnet-type") for s in private} == {expected_type}
    assert len(subnets) == target.max_azs * (1 if target.nat_gateways == 0 else 2)


def _tag(resource: dict[str, Any], key: str) -> str | None:
    return next((tag["Value"] for tag in resource["Properties"].get("Tags", []) if tag["Key"] == key), None)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_endpoints_cover_every_service_the_jobs_call(synthesized: Synthesized, env: str) -> None:
    region = synthesized.config.env(env).region
    endpoints = synthesized.resources(env, "network", "AWS::EC2::VPCEndpoint").values()
    interface = {
        e["Properties"]["ServiceName"].removeprefix(f"com.amazonaws.{region}.")
        for e in endpoints
        if e["Properties"].get("VpcEndpointType", "Interface") == "Interface"
    }
    gateway = {
        e["Properties"]["ServiceName"]["Fn::Join"][1][-1]
        for e in endpoints
        if e["Properties"]["VpcEndpointType"] == "Gateway"
    }
    assert interface == INTERFACE_SERVICES
    assert gateway == {".s3", ".dynamodb"}
    assert all(e["Properties"]["PrivateDnsEnabled"] for e in endpoints if "PrivateDnsEnabled" in e["Properties"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_flow_logs_go_to_an_encrypted_log_group_kept_as_configured(synthesized: Synthesized, env: str) -> None:
    names = names_for(synthesized.config, env)
    template = synthesized.template(env, "network")
    template.has_resource_properties(
        "AWS::EC2::FlowLog",
        {"ResourceType": "VPC", "TrafficType": "ALL", "LogGroupName": {"Ref": "NetworkFlowLogGroup4F8CEEEF"}},
    )
    log_group = synthesized.resources(env, "network", "AWS::Logs::LogGroup")["NetworkFlowLogGroup4F8CEEEF"]
    assert log_group["Properties"]["RetentionInDays"] == synthesized.config.env(env).lifecycle.log_retention_days
    # the data key, read from the contract at deploy time: no export couples the stacks
    key_parameter = log_group["Properties"]["KmsKeyId"]["Ref"]
    assert template.to_json()["Parameters"][key_parameter]["Default"] == names.data_key_arn


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_glue_security_group_references_itself_and_leaves_only_over_https(
    synthesized: Synthesized, env: str, cdk_context: dict[str, Any]
) -> None:
    groups = synthesized.resources(env, "network", "AWS::EC2::SecurityGroup")
    glue_id = next(key for key in groups if key.startswith("GlueConnections"))
    egress = groups[glue_id]["Properties"]["SecurityGroupEgress"]
    assert {(rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) for rule in egress} == {("tcp", 443, 443)}
    assert {next(k for k in rule if k.startswith("Destination")) for rule in egress} == {
        "DestinationPrefixListId",
        "DestinationSecurityGroupId",
    }
    # the region's S3 prefix list, from committed context at synth (no lookup Lambda at deploy time)
    region = synthesized.config.env(env).region
    stack = synthesized.stages[env].network
    (recorded,) = cdk_context[context_key(stack, prefix_list_name=s3_prefix_list_name(region))]
    assert {rule.get("DestinationPrefixListId") for rule in egress} == {recorded["PrefixListId"], None}
    self_reference = {"Fn::GetAtt": [glue_id, "GroupId"]}
    template = synthesized.template(env, "network")
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupIngress", {"GroupId": self_reference, "SourceSecurityGroupId": self_reference}
    )
    template.has_resource_properties(
        "AWS::EC2::SecurityGroupEgress", {"GroupId": self_reference, "DestinationSecurityGroupId": self_reference}
    )


# --- catalog -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_a_database_per_zone_located_in_its_bucket_and_an_encrypted_catalog(synthesized: Synthesized, env: str) -> None:
    names = names_for(synthesized.config, env)
    catalog = synthesized.templates[(env, "catalog")]
    parameters = catalog["Parameters"]
    for zone in synthesized.config.zones:
        database = catalog["Resources"][f"{zone.capitalize()}Database"]["Properties"]
        assert database["DatabaseInput"]["Name"] == names.glue_database_name(zone)
        location = database["DatabaseInput"]["LocationUri"]["Fn::Join"][1]
        assert location[0] == "s3://"
        assert parameters[location[1]["Ref"]]["Default"] == names.bucket_name(zone)
    settings = synthesized.resources(env, "catalog", "AWS::Glue::DataCatalogEncryptionSettings")
    (encryption,) = settings.values()
    at_rest = encryption["Properties"]["DataCatalogEncryptionSettings"]["EncryptionAtRest"]
    assert at_rest["CatalogEncryptionMode"] == "SSE-KMS"
    assert parameters[at_rest["SseAwsKmsKeyId"]["Ref"]]["Default"] == names.data_key_arn


# --- verify role -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_verify_role_trusts_only_the_verify_step_and_only_reads(synthesized: Synthesized, env: str) -> None:
    names = names_for(synthesized.config, env)
    (role,) = synthesized.resources(env, "verify", "AWS::IAM::Role").values()
    assert role["Properties"]["RoleName"] == names.verify_role_name("infra")
    deployment = synthesized.config.deployment.account
    # the deployment account, and in it only the infra pipeline's Verify step of this environment
    step_role = f"arn:aws:iam::{deployment}:role/{names.verify_step_role_name('infra')}"
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Condition": {"ArnEquals": {"aws:PrincipalArn": step_role}},
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{deployment}:root"},
        }
    ]
    (policy,) = synthesized.resources(env, "verify", "AWS::IAM::Policy").values()
    statements = {s["Sid"]: s for s in policy["Properties"]["PolicyDocument"]["Statement"]}
    region = synthesized.config.env(env).region
    read_only_prefixes = ("ssm:Get", "s3:List", "kms:Describe", "sns:Get", "glue:Get", "ec2:Describe", "kms:Decrypt")
    for sid, statement in statements.items():
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all(action.startswith(read_only_prefixes) for action in actions), sid
        if statement["Resource"] == "*":
            assert sid == "SeeNetwork"
        if "kms:Decrypt" in actions:  # only what Glue decrypts for the caller: the encrypted catalog
            assert statement["Condition"] == {"StringEquals": {"kms:ViaService": f"glue.{region}.amazonaws.com"}}
    key_parameter = statements["SeeAlarmTopicKey"]["Resource"]["Ref"]
    assert synthesized.templates[(env, "verify")]["Parameters"][key_parameter]["Default"] == names.alarm_topic_key_arn
    account = synthesized.config.env(env).account
    assert sorted(statements["ReadContract"]["Resource"]) == sorted(
        f"arn:aws:ssm:{region}:{account}:parameter{entry.path}" for entry in names.contract()
    )


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_policy_document_of_the_stage_lints_clean(synthesized: Synthesized, env: str) -> None:
    """parliament over every identity policy the stage creates (ours and CDK's): issue 10."""
    from lake_pipelines.policy_lint import lint_problems

    assert lint_problems(stage_templates(synthesized.stages[env]), synthesized.config, env) == []
