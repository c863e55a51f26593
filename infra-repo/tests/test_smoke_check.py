"""The post-deploy smoke check against moto: a lake built by the test passes; each kind of breakage fails."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from datalake_config import LakeConfig, dumps_json, names_for
from datalake_config.naming import EnvironmentNames
from datalake_infra import smoke_check

ENV = "dev"
REGION = "eu-west-1"


@dataclass
class Lake:
    """A target account in moto holding everything the contract promises, and the config that describes it."""

    config: LakeConfig
    config_path: Path
    names: EnvironmentNames
    session: Any
    role_arn: str
    clients: dict[str, Any] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = self.session.client(service)
        return self.clients[service]

    def put(self, path: str, value: str) -> None:
        self.client("ssm").put_parameter(Name=path, Value=value, Type="String", Overwrite=True)


@pytest.fixture
def lake(example_config: LakeConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lake]:
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    # the check never looks at images; loading moto's catalogue of them costs a second per test
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
    config_path = tmp_path / "config.json"
    config_path.write_text(dumps_json(example_config))
    target = example_config.env(ENV)
    names = names_for(example_config, ENV)
    role_arn = f"arn:aws:iam::{target.account}:role/{names.verify_role_name('infra')}"
    with mock_aws():
        credentials = boto3.client("sts", region_name=REGION).assume_role(
            RoleArn=role_arn, RoleSessionName="test-setup"
        )["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=REGION,
        )
        built = Lake(example_config, config_path, names, session, role_arn)
        _build(built)
        yield built


def _build(lake: Lake) -> None:
    """What the infra stage deploys, reduced to what the contract points at."""
    s3, ec2 = lake.client("s3"), lake.client("ec2")
    for zone in lake.config.zones:
        bucket = f"lake-{zone}-bucket-0123"
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
        lake.put(lake.names.bucket_name(zone), bucket)
        lake.put(lake.names.bucket_arn(zone), f"arn:aws:s3:::{bucket}")
        database = lake.names.glue_database_name(zone)
        lake.client("glue").create_database(DatabaseInput={"Name": database})
        lake.put(lake.names.database(zone), database)
    key = lake.client("kms").create_key(Description="data key")["KeyMetadata"]
    lake.put(lake.names.data_key_arn, key["Arn"])
    vpc_id = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc_id, CidrBlock=cidr, AvailabilityZone=zone)["Subnet"]
        for cidr, zone in (("10.10.0.0/18", "eu-west-1a"), ("10.10.64.0/18", "eu-west-1b"))
    ]
    group_id = ec2.create_security_group(GroupName="glue", Description="glue", VpcId=vpc_id)["GroupId"]
    lake.put(lake.names.vpc_id, vpc_id)
    lake.client("ssm").put_parameter(
        Name=lake.names.private_subnet_ids, Value=",".join(s["SubnetId"] for s in subnets), Type="StringList"
    )
    lake.client("ssm").put_parameter(
        Name=lake.names.subnet_availability_zones,
        Value=",".join(s["AvailabilityZone"] for s in subnets),
        Type="StringList",
    )
    lake.put(lake.names.glue_security_group_id, group_id)
    alarm_key = lake.client("kms").create_key(Description="alarm topic key")["KeyMetadata"]
    lake.put(lake.names.alarm_topic_arn, lake.client("sns").create_topic(Name="alarms")["TopicArn"])
    lake.put(lake.names.alarm_topic_key_arn, alarm_key["Arn"])


def _run(lake: Lake, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, list[str]]:
    code = smoke_check.main(["--config", str(lake.config_path), "--env", ENV, "--role-arn", lake.role_arn, *extra])
    return code, capsys.readouterr().out.splitlines()


def _failures(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("FAIL")]


def test_a_complete_lake_passes_every_check(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = _run(lake, capsys)
    contract = lake.names.contract()
    assert code == 0, "\n".join(lines)
    checks = [line for line in lines if line.startswith(("PASS", "FAIL"))]
    # the account, then every parameter read, then every parameter's resource
    assert len(checks) == 1 + 2 * len(contract)
    assert all(line.startswith("PASS") for line in checks)
    assert any(f"parameter {lake.names.vpc_id}" in line for line in checks)
    assert lines[-1].startswith(f"{len(checks)} passed, 0 failed")


def test_a_missing_parameter_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.client("ssm").delete_parameter(Name=lake.names.data_key_arn)
    code, lines = _run(lake, capsys)
    assert code == 1
    assert _failures(lines) == [f"FAIL parameter {lake.names.data_key_arn}: missing (KMS key encrypting lake data)"]


def test_a_parameter_pointing_at_a_missing_bucket_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.put(lake.names.bucket_name("curated"), "deleted-bucket-0123")
    code, lines = _run(lake, capsys)
    assert code == 1
    failures = _failures(lines)
    assert (
        f"FAIL bucket-name {lake.names.bucket_name('curated')}: bucket deleted-bucket-0123 does not exist" in failures
    )
    # the ARN parameter still names the old bucket, so it no longer matches either
    assert any(line.startswith(f"FAIL bucket-arn {lake.names.bucket_arn('curated')}") for line in failures)


def test_a_disabled_key_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    key_arn = lake.client("ssm").get_parameter(Name=lake.names.data_key_arn)["Parameter"]["Value"]
    lake.client("kms").disable_key(KeyId=key_arn.rsplit("/", 1)[1])
    code, lines = _run(lake, capsys)
    assert code == 1
    assert _failures(lines) == [
        f"FAIL kms-key-arn {lake.names.data_key_arn}: KMS key {key_arn} is Disabled, not Enabled"
    ]


def test_a_scheduled_for_deletion_alarm_topic_key_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    key_arn = lake.client("ssm").get_parameter(Name=lake.names.alarm_topic_key_arn)["Parameter"]["Value"]
    lake.client("kms").schedule_key_deletion(KeyId=key_arn.rsplit("/", 1)[1], PendingWindowInDays=7)
    code, lines = _run(lake, capsys)
    assert code == 1
    assert _failures(lines) == [
        f"FAIL kms-key-arn {lake.names.alarm_topic_key_arn}: KMS key {key_arn} is PendingDeletion, not Enabled"
    ]


def test_a_database_that_was_never_created_fails(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.client("glue").delete_database(Name=lake.names.glue_database_name("conformed"))
    code, lines = _run(lake, capsys)
    assert code == 1
    assert len(_failures(lines)) == 1
    assert "does not exist" in _failures(lines)[0]


def test_subnets_outside_the_vpc_and_wrong_zones_fail(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    ec2 = lake.client("ec2")
    other_vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    stray = ec2.create_subnet(VpcId=other_vpc, CidrBlock="10.99.0.0/24", AvailabilityZone="eu-west-1c")["Subnet"]
    lake.client("ssm").put_parameter(
        Name=lake.names.private_subnet_ids, Value=stray["SubnetId"], Type="StringList", Overwrite=True
    )
    code, lines = _run(lake, capsys)
    assert code == 1
    failures = _failures(lines)
    assert (
        f"FAIL subnet-ids {lake.names.private_subnet_ids}: subnets {stray['SubnetId']} are not in VPC"
        in (failures[0][: failures[0].index(" are not in VPC") + len(" are not in VPC")])
    )
    assert any(line.startswith(f"FAIL availability-zones {lake.names.subnet_availability_zones}") for line in failures)


def test_a_missing_topic_and_security_group_fail(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    lake.put(lake.names.alarm_topic_arn, "arn:aws:sns:eu-west-1:222222222222:gone")
    lake.put(lake.names.glue_security_group_id, "sg-0123456789abcdef0")
    code, lines = _run(lake, capsys)
    assert code == 1
    failures = _failures(lines)
    assert len(failures) == 2
    assert "SNS topic arn:aws:sns:eu-west-1:222222222222:gone does not exist" in failures[1]
    assert "security group sg-0123456789abcdef0 does not exist" in failures[0]


def test_credentials_of_another_account_fail_the_account_check(lake: Lake, capsys: pytest.CaptureFixture[str]) -> None:
    # without --role-arn the check uses the caller's own credentials: moto's default account, not dev's
    code = smoke_check.main(["--config", str(lake.config_path), "--env", ENV])
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[0] == "FAIL account: credentials act in account 123456789012, not dev's 222222222222"


def test_bad_usage_exits_2_naming_the_problem(lake: Lake, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert smoke_check.main(["--config", str(lake.config_path), "--env", "staging"]) == 2
    assert "--env: unknown environment 'staging'" in capsys.readouterr().err
    assert smoke_check.main(["--config", str(tmp_path / "absent.yaml"), "--env", ENV]) == 2
    assert "cannot read the file" in capsys.readouterr().err
