"""The verify step's session renews the verify role's credentials: a chained role session lasts one hour."""

from __future__ import annotations

import datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lake_pipelines.verify import verify_session

REGION = "eu-west-1"


def test_the_role_session_renews_itself_before_it_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(variable, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with mock_aws():
        trust = '{"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}'
        role = boto3.client("iam").create_role(RoleName="verify", AssumeRolePolicyDocument=trust)["Role"]["Arn"]
        session = verify_session(region=REGION, role_arn=role, endpoint_url=None, session_name="check")
        credentials: Any = session.get_credentials()
        first = credentials.get_frozen_credentials().access_key
        assert session.client("sts").get_caller_identity()["Arn"].endswith(":assumed-role/verify/check")
        # an hour later the session would be dead: the next call assumes the role again
        credentials._expiry_time = datetime.datetime.now(datetime.UTC)
        assert credentials.get_frozen_credentials().access_key != first
        assert session.region_name == REGION


def test_without_a_role_the_callers_own_session_is_used() -> None:
    session = verify_session(region=REGION, role_arn=None, endpoint_url=None, session_name="check")
    assert session.region_name == REGION
