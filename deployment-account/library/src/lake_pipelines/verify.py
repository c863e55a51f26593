"""What every repository's post-deploy check shares: its command line, its session, its report.

The pipeline's Verify step runs `python -m <module> --config .lake/config.json --env E --role-arn R
--region G` (`lake_pipelines.buildspec.verify_commands`); each repository's check builds its parser here, so the
step's command line and every check agree by construction.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.credentials import RefreshableCredentials
from botocore.session import get_session


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check, printed as one line."""

    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'} {self.name}: {self.detail}"


def verify_parser(prog: str, description: str) -> argparse.ArgumentParser:
    """The options every post-deploy check takes; a check adds its own after these."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, type=Path, help="the lake config (YAML, or the pulled JSON)")
    parser.add_argument("--env", required=True, dest="env_name", help="the environment to check")
    parser.add_argument("--role-arn", help="assume this role first (the stage's verify role)")
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator)")
    parser.add_argument("--region", help="default: the environment's region from the config")
    return parser


def verify_session(*, region: str, role_arn: str | None, endpoint_url: str | None, session_name: str) -> Any:
    """The current credentials, or those of `role_arn` (the stage's verify role) when given.

    The role's credentials renew themselves before they expire: the pipeline reaches the role from its CodeBuild
    role (role chaining), and AWS caps a chained session at one hour, shorter than a check that runs every job.
    The first assumption happens here, so a role that cannot be assumed fails at once.
    """
    base = boto3.Session(region_name=region)
    if role_arn is None:
        return base
    sts = base.client("sts", endpoint_url=endpoint_url)

    def assume() -> dict[str, str]:
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        return {
            "access_key": credentials["AccessKeyId"],
            "secret_key": credentials["SecretAccessKey"],
            "token": credentials["SessionToken"],
            "expiry_time": credentials["Expiration"].isoformat(),
        }

    refreshable = RefreshableCredentials.create_from_metadata(
        metadata=assume(), refresh_using=assume, method="sts-assume-role"
    )
    core = get_session()
    # botocore has no public setter for credentials that renew themselves; this attribute is what its own
    # credential resolver fills, and a pinned botocore keeps it stable (tests/test_verify_session.py)
    core._credentials = refreshable
    core.set_config_variable("region", region)
    return boto3.Session(botocore_session=core)


def report(results: Sequence[CheckResult], what: str) -> int:
    """Print one line per check and a closing count; 0 when every check passed (and there was one)."""
    for result in results:
        print(result.line(), flush=True)
    failed = sum(not result.passed for result in results)
    print(f"{len(results) - failed} passed, {failed} failed: {what}")
    return 0 if results and not failed else 1
