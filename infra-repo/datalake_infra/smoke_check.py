"""Post-deploy smoke check: every contract parameter exists and points at a real resource of the target account.

Run by the branch pipeline after the stage deploys (assuming the stage's verify role), and by the rehearsal
against the emulator. Prints one line per check; exits 0 when all pass, 1 when any fails, 2 on bad usage.

    python -m datalake_infra.smoke_check --config PATH --env NAME [--role-arn ARN] [--endpoint-url URL] [--region R]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config import ConfigError, LakeConfig, load, names_for
from datalake_config.naming import ContractParameter, EnvironmentNames, Kind
from lake_pipelines.verify import CheckResult, report, verify_parser, verify_session

SESSION_NAME = "infra-smoke-check"


class CheckFailed(Exception):
    """A resource is missing or differs from what the contract promises; the message says how."""


@dataclass
class SmokeCheck:
    """Checks one environment's contract with a boto3 session acting in its target account."""

    config: LakeConfig
    env_name: str
    session: Any
    endpoint_url: str | None = None
    values: dict[str, str] = field(default_factory=dict, init=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    @property
    def names(self) -> EnvironmentNames:
        return names_for(self.config, self.env_name)

    def run(self) -> list[CheckResult]:
        results = [self._check("account", self._account)]
        contract = self.names.contract()
        for entry in contract:
            results.append(self._check(f"parameter {entry.path}", partial(self._read, entry)))
        for entry in contract:
            if entry.path in self.values:
                results.append(self._check(f"{entry.kind.value} {entry.path}", partial(self._verify, entry)))
        return results

    # --- plumbing ---------------------------------------------------------------------------------
    def _client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url)
        return self._clients[service]

    def _check(self, name: str, check: Callable[[], str]) -> CheckResult:
        try:
            return CheckResult(name, True, check())
        except CheckFailed as exc:
            return CheckResult(name, False, str(exc))
        except ClientError as exc:
            error = exc.response.get("Error", {})
            return CheckResult(name, False, f"{error.get('Code', 'error')}: {error.get('Message', exc)}")
        except BotoCoreError as exc:
            return CheckResult(name, False, str(exc))

    def _value(self, path: str) -> str:
        if path not in self.values:
            raise CheckFailed(f"cannot check: parameter {path} is missing")
        return self.values[path]

    @property
    def _target_account(self) -> str:
        return self.config.env(self.env_name).account

    # --- checks -----------------------------------------------------------------------------------
    def _account(self) -> str:
        actual = str(self._client("sts").get_caller_identity()["Account"])
        if actual != self._target_account:
            raise CheckFailed(f"credentials act in account {actual}, not {self.env_name}'s {self._target_account}")
        return f"credentials act in {self.env_name}'s account {actual}"

    def _read(self, entry: ContractParameter) -> str:
        try:
            parameter = self._client("ssm").get_parameter(Name=entry.path)["Parameter"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
                raise CheckFailed(f"missing ({entry.description})") from None
            raise
        value = str(parameter["Value"]).strip()
        if not value:
            raise CheckFailed("is empty")
        self.values[entry.path] = value
        return value

    def _verify(self, entry: ContractParameter) -> str:
        value = self.values[entry.path]
        verifiers: dict[Kind, Callable[[ContractParameter, str], str]] = {
            Kind.BUCKET_NAME: self._bucket_name,
            Kind.BUCKET_ARN: self._bucket_arn,
            Kind.GLUE_DATABASE: self._database,
            Kind.KMS_KEY_ARN: self._key,
            Kind.VPC_ID: self._vpc,
            Kind.SUBNET_IDS: self._subnets,
            Kind.AVAILABILITY_ZONES: self._availability_zones,
            Kind.SECURITY_GROUP_ID: self._security_group,
            Kind.SNS_TOPIC_ARN: self._topic,
        }
        return verifiers[entry.kind](entry, value)

    def _bucket_name(self, entry: ContractParameter, name: str) -> str:
        try:
            self._client("s3").head_bucket(Bucket=name, ExpectedBucketOwner=self._target_account)
        except ClientError as exc:
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise CheckFailed(f"bucket {name} does not exist") from None
            if status == 403:
                raise CheckFailed(f"bucket {name} is not this account's, or the check may not see it") from None
            raise
        return f"bucket {name} exists"

    def _bucket_arn(self, entry: ContractParameter, arn: str) -> str:
        name = self._value(self.names.bucket_name(_zone_of(entry)))
        expected = f"arn:{self._partition()}:s3:::{name}"
        if arn != expected:
            raise CheckFailed(f"is {arn}, but the {entry.zone} bucket is {expected}")
        return f"matches bucket {name}"

    def _database(self, entry: ContractParameter, name: str) -> str:
        expected = self.names.glue_database_name(_zone_of(entry))
        if name != expected:
            raise CheckFailed(f"is {name}, expected {expected}")
        try:
            self._client("glue").get_database(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "EntityNotFoundException":
                raise CheckFailed(f"Glue database {name} does not exist") from None
            raise
        return f"Glue database {name} exists"

    def _key(self, entry: ContractParameter, arn: str) -> str:
        self._in_target_account(arn)
        try:
            metadata = self._client("kms").describe_key(KeyId=arn)["KeyMetadata"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException":
                raise CheckFailed(f"KMS key {arn} does not exist") from None
            raise
        if metadata.get("KeyState") != "Enabled":
            raise CheckFailed(f"KMS key {arn} is {metadata.get('KeyState')}, not Enabled")
        if metadata.get("KeyManager") != "CUSTOMER":
            raise CheckFailed(f"KMS key {arn} is not customer-managed")
        return f"KMS key {metadata['KeyId']} is enabled"

    def _vpc(self, entry: ContractParameter, vpc_id: str) -> str:
        vpcs = self._described("describe_vpcs", "Vpcs", VpcIds=[vpc_id])
        if not vpcs:
            raise CheckFailed(f"VPC {vpc_id} does not exist")
        return f"VPC {vpc_id} exists ({vpcs[0].get('CidrBlock')})"

    def _subnets(self, entry: ContractParameter, value: str) -> str:
        subnets = self._subnets_in_order(value)
        vpc_id = self._value(self.names.vpc_id)
        strays = [s["SubnetId"] for s in subnets if s.get("VpcId") != vpc_id]
        if strays:
            raise CheckFailed(f"subnets {', '.join(strays)} are not in VPC {vpc_id}")
        return f"{len(subnets)} subnets exist in VPC {vpc_id}"

    def _availability_zones(self, entry: ContractParameter, value: str) -> str:
        zones = _split(value)
        subnets = self._subnets_in_order(self._value(self.names.private_subnet_ids))
        actual = [s.get("AvailabilityZone") for s in subnets]
        if zones != actual:
            raise CheckFailed(f"lists {', '.join(zones)}, but the subnets are in {', '.join(map(str, actual))}")
        return f"match the subnets ({', '.join(zones)})"

    def _security_group(self, entry: ContractParameter, group_id: str) -> str:
        groups = self._described("describe_security_groups", "SecurityGroups", GroupIds=[group_id])
        if not groups:
            raise CheckFailed(f"security group {group_id} does not exist")
        vpc_id = self._value(self.names.vpc_id)
        if groups[0].get("VpcId") != vpc_id:
            raise CheckFailed(f"security group {group_id} is in {groups[0].get('VpcId')}, not in VPC {vpc_id}")
        return f"security group {group_id} exists in VPC {vpc_id}"

    def _topic(self, entry: ContractParameter, arn: str) -> str:
        self._in_target_account(arn)
        try:
            self._client("sns").get_topic_attributes(TopicArn=arn)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFound":
                raise CheckFailed(f"SNS topic {arn} does not exist") from None
            raise
        return f"SNS topic {arn} exists"

    # --- helpers ----------------------------------------------------------------------------------
    def _subnets_in_order(self, value: str) -> list[dict[str, Any]]:
        ids = _split(value)
        if not ids:
            raise CheckFailed("lists no subnets")
        found = {s["SubnetId"]: s for s in self._described("describe_subnets", "Subnets", SubnetIds=ids)}
        missing = [subnet_id for subnet_id in ids if subnet_id not in found]
        if missing:
            raise CheckFailed(f"subnets {', '.join(missing)} do not exist")
        return [found[subnet_id] for subnet_id in ids]

    def _described(self, operation: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        """EC2 answers a lookup of unknown ids with an error, not an empty list: treat both as 'not found'."""
        try:
            result: list[dict[str, Any]] = getattr(self._client("ec2"), operation)(**kwargs)[key]
        except ClientError as exc:
            if str(exc.response.get("Error", {}).get("Code", "")).endswith((".NotFound", ".Malformed")):
                return []
            raise
        return result

    def _in_target_account(self, arn: str) -> None:
        parts = arn.split(":")
        if len(parts) < 6 or parts[0] != "arn":
            raise CheckFailed(f"{arn} is not an ARN")
        if parts[4] != self._target_account:
            raise CheckFailed(f"{arn} belongs to account {parts[4]}, not {self._target_account}")

    def _partition(self) -> str:
        partition: str = self.session.get_partition_for_region(self.session.region_name)
        return partition


def _zone_of(entry: ContractParameter) -> str:
    if entry.zone is None:
        raise CheckFailed(f"the naming module lists {entry.path} without its zone")
    return entry.zone


def _split(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = verify_parser(
        "python -m datalake_infra.smoke_check",
        "Verify that the infra contract parameters exist and point at real resources.",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = load(args.config)
        target = config.env(args.env_name)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyError as exc:
        print(f"error: --env: {exc.args[0]}", file=sys.stderr)
        return 2
    region = args.region or target.region
    try:
        session = verify_session(
            region=region, role_arn=args.role_arn, endpoint_url=args.endpoint_url, session_name=SESSION_NAME
        )
    except (ClientError, BotoCoreError) as exc:
        print(CheckResult(f"assume role {args.role_arn}", False, str(exc)).line())
        return 1
    results = SmokeCheck(config, args.env_name, session, args.endpoint_url).run()
    return report(results, f"infra contract of {args.env_name} ({target.account})")


if __name__ == "__main__":
    sys.exit(main())
