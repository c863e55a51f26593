"""`lake-config`: what an app repository's pipeline needs from the shared config, and the options every
command line of the team (this one, `lakeops`, `etl-jobs`) declares for AWS access. Exit codes: 0 ok,
1 invalid input or AWS refusal, 2 usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config.aws import Sessions
from datalake_config.loader import PULLED_CONFIG_PATH, ConfigError, load
from datalake_config.model import LakeConfig
from datalake_config.publish import PublishError, pull

# The default of --assume-role-name, for the operator commands that act in a target account with the
# operator's own administrative access there (`etl-jobs reprocess`): AWS Organizations creates this role
# in the accounts it creates, trusting the management account. Publish and bootstrap never use it: publish
# assumes each environment's dedicated publisher role, bootstrap uses each account's own profile.
DEFAULT_TARGET_ROLE = "OrganizationAccountAccessRole"


def add_aws_options(parser: argparse.ArgumentParser, *, assume_role: bool = True) -> None:
    """--profile, --region, --endpoint-url and (unless the command names its roles itself) --assume-role-name."""
    aws = parser.add_argument_group("AWS access")
    aws.add_argument("--profile", help="AWS profile with deployment-account credentials")
    aws.add_argument("--region", help="AWS region for the deployment account (default: from the config)")
    aws.add_argument("--endpoint-url", help="send every AWS call here (an emulator such as moto server)")
    if assume_role:
        aws.add_argument(
            "--assume-role-name",
            default=DEFAULT_TARGET_ROLE,
            help=f"role assumed in each target account (default: {DEFAULT_TARGET_ROLE})",
        )


def sessions_from(args: argparse.Namespace, config: LakeConfig | None = None) -> Sessions:
    region = args.region or (config.deployment.region if config else None)
    return Sessions(
        profile=args.profile,
        region=region,
        endpoint_url=args.endpoint_url,
        assume_role_name=getattr(args, "assume_role_name", None),
    )


def aws_failure(step: str, exc: ClientError | BotoCoreError) -> str:
    """One line naming the step and, for a refusal, the call and AWS's own code and message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{step}: AWS refused {exc.operation_name}: {error.get('Code')}: {error.get('Message')}"
    return f"{step}: {exc}"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lake-config", description="Read and check the data lake's shared config in an app repository."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    pull_cmd = commands.add_parser("pull", help="read the published config from Secrets Manager into a file")
    pull_cmd.add_argument("--secret", required=True, help="the global-config secret name or ARN")
    pull_cmd.add_argument(
        "--out", type=Path, default=PULLED_CONFIG_PATH, help=f"file to write (JSON; default: {PULLED_CONFIG_PATH})"
    )
    add_aws_options(pull_cmd)
    pull_cmd.set_defaults(handler=_pull)
    validate = commands.add_parser("validate", help="validate a config file; every problem is listed")
    validate.add_argument("path", nargs="?", type=Path, default=PULLED_CONFIG_PATH)
    validate.set_defaults(handler=_validate)
    return parser


def _pull(args: argparse.Namespace) -> int:
    config = pull(args.secret, sessions_from(args), args.out, region=args.region)
    print(f"config pull: wrote {args.out} (prefix {config.prefix}, {len(config.environments)} environments)")
    return 0


def _validate(args: argparse.Namespace) -> int:
    config = load(args.path)
    print(f"{args.path}: valid; prefix {config.prefix}; environments {' → '.join(config.environment_names)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ConfigError, PublishError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as exc:
        print(f"error: {aws_failure(args.command, exc)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
