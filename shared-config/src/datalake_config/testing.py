"""For tests of every repository: the example config (package data) and moto acting in a chosen account.

moto's `MOTO_ACCOUNT_ID` would pin every request to one account, assumed roles included, so a target
account could never be told apart; instead the process's credentials are those of a role assumed in
`account`, and code that assumes roles in other accounts really acts in those.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from importlib import resources
from pathlib import Path

import pytest

from datalake_config.loader import load
from datalake_config.model import LakeConfig

# The shared-config repository's own config.yaml, shipped in the package so that the app repositories'
# tests build their stages from the same example without reaching into another repository.
EXAMPLE_CONFIG_PATH = Path(str(resources.files("datalake_config").joinpath("example-config.yaml")))


@cache
def example_config() -> LakeConfig:
    return load(EXAMPLE_CONFIG_PATH)


@contextmanager
def moto_acting_in(account: str, region: str, monkeypatch: pytest.MonkeyPatch, scratch: Path) -> Iterator[None]:
    import boto3
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    # No profile from the machine may leak in: only the credentials set here exist.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(scratch / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(scratch / "no-credentials"))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    with mock_aws():
        role = f"arn:aws:iam::{account}:role/operator"
        creds = boto3.Session().client("sts").assume_role(RoleArn=role, RoleSessionName="tests")["Credentials"]
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds["AccessKeyId"])
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds["SecretAccessKey"])
        monkeypatch.setenv("AWS_SESSION_TOKEN", creds["SessionToken"])
        if boto3.Session().client("sts").get_caller_identity()["Account"] != account:
            raise RuntimeError(f"moto did not act in account {account}")
        yield
