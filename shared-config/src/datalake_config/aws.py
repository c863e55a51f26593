"""boto3 sessions for the deployment account and, through an assumed role, for each target account."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import boto3
import botocore.session


def partition_of(region: str) -> str:
    """The ARN partition of a region (`aws`, `aws-cn`, `aws-us-gov`)."""
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class AccountMismatch(RuntimeError):
    """The credentials in use belong to another account than the step needs."""


@dataclass
class Sessions:
    """Hands out clients per account: the caller's own credentials, or a role assumed into a target.

    The role is named per call (`config publish` assumes each environment's own publisher role); a
    command may name one role for every target with `assume_role_name`. There is no built-in default:
    a call that names no role fails instead of silently reaching for a broad administrative role.
    """

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    assume_role_name: str | None = None
    _base: Any = field(default=None, init=False, repr=False)
    _assumed: dict[tuple[str, str], Any] = field(default_factory=dict, init=False, repr=False)
    _caller: str | None = field(default=None, init=False, repr=False)

    @property
    def base(self) -> Any:
        if self._base is None:
            self._base = boto3.Session(profile_name=self.profile, region_name=self.region)
        return self._base

    def caller_account(self) -> str:
        if self._caller is None:
            self._caller = str(self.client("sts").get_caller_identity()["Account"])
        return self._caller

    def client(self, service: str, *, region: str | None = None, session: Any = None) -> Any:
        return (session or self.base).client(
            service, region_name=region or self.region or self.base.region_name, endpoint_url=self.endpoint_url
        )

    def require_account(self, expected: str, what: str) -> None:
        """Refuse to act with credentials of the wrong account, before anything changes."""
        actual = self.caller_account()
        if actual != expected:
            raise AccountMismatch(
                f"{what} needs credentials for account {expected}, but the current credentials "
                f"belong to {actual} (choose them with --profile)"
            )

    def for_account(self, account: str, region: str, role_name: str | None = None) -> Any:
        """A session acting in `account`: the caller's own, or one assuming `role_name` (by default
        `assume_role_name`) there."""
        if account == self.caller_account():
            return self.base
        role = role_name or self.assume_role_name
        if not role:
            raise ValueError(f"no role named to assume in account {account}")
        if (account, role) not in self._assumed:
            role_arn = f"arn:{partition_of(region)}:iam::{account}:role/{role}"
            creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="lakeops")["Credentials"]
            # Share the base session's service-model loader: parsing the models again for every
            # account costs about half a second per service.
            shared = botocore.session.Session()
            shared.register_component("data_loader", self.base._session.get_component("data_loader"))
            self._assumed[account, role] = boto3.Session(
                aws_access_key_id=creds["AccessKeyId"],
                aws_secret_access_key=creds["SecretAccessKey"],
                aws_session_token=creds["SessionToken"],
                region_name=region,
                botocore_session=shared,
            )
        return self._assumed[account, role]

    def account_client(self, service: str, account: str, region: str, role_name: str | None = None) -> Any:
        return self.client(service, region=region, session=self.for_account(account, region, role_name))
