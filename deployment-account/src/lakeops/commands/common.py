"""Options several command groups share, declared once."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from datalake_config import DEFAULT_CONFIG_PATH, LakeConfig, load
from datalake_config.aws import DEFAULT_TARGET_ROLE, Sessions


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=DEFAULT_CONFIG_PATH,
        help="shared config file (YAML or JSON; default: shared-config/config.yaml)",
    )


def add_aws_options(parser: argparse.ArgumentParser) -> None:
    aws = parser.add_argument_group("AWS access")
    aws.add_argument("--profile", help="AWS profile with deployment-account credentials")
    aws.add_argument("--region", help="AWS region for the deployment account (default: from the config)")
    aws.add_argument("--endpoint-url", help="send every AWS call here (an emulator such as moto server)")
    aws.add_argument(
        "--assume-role-name",
        default=DEFAULT_TARGET_ROLE,
        help=f"role assumed in each target account (default: {DEFAULT_TARGET_ROLE})",
    )


def sessions_from(args: argparse.Namespace, config: LakeConfig | None = None) -> Sessions:
    region = args.region or (config.deployment.region if config else None)
    return Sessions(
        profile=args.profile, region=region, endpoint_url=args.endpoint_url, assume_role_name=args.assume_role_name
    )


def load_config(args: argparse.Namespace) -> LakeConfig:
    return load(args.config)


def confirm(question: str, *, assume_yes: bool) -> bool:
    """Ask on a terminal; without one, only --yes may proceed."""
    if assume_yes:
        return True
    if not sys.stdin.isatty():
        print(f"{question} [refused: no terminal to ask on; pass --yes to proceed]", file=sys.stderr)
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
