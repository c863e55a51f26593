"""A changed config changes the synthesized stages, with no code change: a new CIDR, an added environment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
import pytest

from datalake_config import LakeConfig, from_mapping, names_for
from datalake_infra.network.availability_zones import FALLBACK_WARNING_ID
from datalake_infra.stage import InfraStage
from lake_pipelines.checks import enable_nag, lake_app, synth

DEV_CIDR = "10.40.0.0/16"
STAGING = {
    "account": "555555555555",
    "region": "eu-west-1",
    "branch": "staging",
    "vpc_cidr": "10.50.0.0/20",
    "nat_gateways": 1,
    "max_azs": 3,
    "require_approval": True,
    "retain_data": True,
    "lifecycle": {"raw_expiration_days": 120, "log_retention_days": 60},
}


@dataclass
class Changed:
    config: LakeConfig
    stages: dict[str, InfraStage]

    def template(self, env: str, component: str) -> dict[str, Any]:
        artifact = (
            self.stages[env].synth().get_stack_by_name(names_for(self.config, env).stack_name("infra", component))
        )
        template: dict[str, Any] = artifact.template
        return template

    def resources(self, env: str, component: str, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.template(env, component)["Resources"].values() if r["Type"] == kind]


@pytest.fixture(scope="module")
def changed(
    example_config: LakeConfig,
    cdk_context: dict[str, Any],
    s3_prefix_list_entry: Callable[[str, str], dict[str, Any]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Changed:
    raw = example_config.model_dump(mode="json")
    raw["environments"]["dev"]["vpc_cidr"] = DEV_CIDR
    environments = dict(raw["environments"])
    prod = environments.pop("prod")
    raw["environments"] = {**environments, "staging": STAGING, "prod": prod}
    config = from_mapping(raw, source="changed config")
    # adding an account means recording its S3 prefix list (synth never looks it up); its zones are left out
    # on purpose, to show the fallback below
    context = {**cdk_context, **s3_prefix_list_entry(STAGING["account"], STAGING["region"])}
    app = lake_app(context=context, outdir=str(tmp_path_factory.mktemp("changed")))
    # only the environments that changed: the unchanged ones are covered by test_stage
    stages = {env: InfraStage(app, env.capitalize(), config=config, env_name=env) for env in ("dev", "staging")}
    for stage in stages.values():
        enable_nag(stage)
    synth(app)
    return Changed(config, stages)


def test_staging_sits_between_test_and_prod(changed: Changed) -> None:
    assert changed.config.environment_names == ["dev", "test", "staging", "prod"]
    assert changed.config.previous_environment("prod") == "staging"


def test_a_changed_cidr_moves_the_vpc_and_its_subnets(changed: Changed) -> None:
    (vpc,) = changed.resources("dev", "network", "AWS::EC2::VPC")
    assert vpc["Properties"]["CidrBlock"] == DEV_CIDR
    subnets = sorted(s["Properties"]["CidrBlock"] for s in changed.resources("dev", "network", "AWS::EC2::Subnet"))
    assert subnets == ["10.40.0.0/18", "10.40.64.0/18"]


def test_the_added_environment_gets_its_own_account_names_and_network(changed: Changed) -> None:
    names = names_for(changed.config, "staging")
    for stack in changed.stages["staging"].synth().stacks:
        assert stack.environment.account == STAGING["account"]
        assert stack.stack_name.startswith("acme-lake-staging-infra-")
    (vpc,) = changed.resources("staging", "network", "AWS::EC2::VPC")
    assert vpc["Properties"]["CidrBlock"] == STAGING["vpc_cidr"]
    # a /20 gives /22 private and /24 public subnets, one of each per zone
    subnets = sorted(s["Properties"]["CidrBlock"] for s in changed.resources("staging", "network", "AWS::EC2::Subnet"))
    assert subnets == [
        "10.50.0.0/22",
        "10.50.12.0/24",
        "10.50.13.0/24",
        "10.50.14.0/24",
        "10.50.4.0/22",
        "10.50.8.0/22",
    ]
    parameters = {
        p["Properties"]["Name"]
        for component in ("storage", "network", "catalog")
        for p in changed.resources("staging", component, "AWS::SSM::Parameter")
    }
    assert parameters == {entry.path for entry in names.contract()}
    (role,) = changed.resources("staging", "verify", "AWS::IAM::Role")
    assert role["Properties"]["RoleName"] == "acme-lake-staging-infra-verify"


def test_nat_gateways_from_config_give_private_subnets_egress(changed: Changed) -> None:
    assert len(changed.resources("staging", "network", "AWS::EC2::NatGateway")) == 1
    routes = changed.resources("staging", "network", "AWS::EC2::Route")
    assert sum("NatGatewayId" in r["Properties"] for r in routes) == 3
    assert changed.resources("dev", "network", "AWS::EC2::NatGateway") == []


def test_retention_follows_the_flag_not_the_environment_name(changed: Changed) -> None:
    buckets = changed.resources("staging", "storage", "AWS::S3::Bucket")
    assert {b["DeletionPolicy"] for b in buckets} == {"Retain"}
    stacks = {s.stack_name: s for s in changed.stages["staging"].synth().stacks}
    assert stacks["acme-lake-staging-infra-storage"].termination_protection is True
    assert stacks["acme-lake-staging-infra-catalog"].termination_protection is True


def test_an_account_missing_from_context_falls_back_to_zones_a_b_c_with_a_warning(changed: Changed) -> None:
    network = changed.stages["staging"].synth().get_stack_by_name("acme-lake-staging-infra-network")
    warnings = [m for m in network.messages if m.level == cdk.cx_api.SynthesisMessageLevel.WARNING]
    assert any(FALLBACK_WARNING_ID in str(m.entry.data) and STAGING["account"] in str(m.entry.data) for m in warnings)
    zones = sorted(
        s["Properties"]["AvailabilityZone"] for s in changed.resources("staging", "network", "AWS::EC2::Subnet")
    )
    assert zones == ["eu-west-1a", "eu-west-1a", "eu-west-1b", "eu-west-1b", "eu-west-1c", "eu-west-1c"]
    # dev's account is recorded in cdk.context.json: no warning there
    dev_network = changed.stages["dev"].synth().get_stack_by_name("acme-lake-dev-infra-network")
    assert not any(FALLBACK_WARNING_ID in str(m.entry.data) for m in dev_network.messages)
