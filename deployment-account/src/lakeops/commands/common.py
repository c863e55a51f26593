"""Options several command groups share, declared once (the AWS ones in `datalake_config.cli`)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError

from datalake_config import LakeConfig, load
from datalake_config.cli import aws_failure
from lakeops.errors import LakeopsError

# lakeops runs in the DevOps workspace, where the shared-config repository is checked out beside the others;
# LAKE_CONFIG names the file for another layout.
CONFIG_VARIABLE = "LAKE_CONFIG"
WORKSPACE_CONFIG_PATH = Path("shared-config/config.yaml")


def default_config_path() -> Path:
    return Path(os.environ.get(CONFIG_VARIABLE) or WORKSPACE_CONFIG_PATH)


def add_config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        type=Path,
        default=default_config_path(),
        help=f"shared config file (YAML or JSON; default: ${CONFIG_VARIABLE} or {WORKSPACE_CONFIG_PATH})",
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


@contextmanager
def aws_step(step: str, *refusals: type[Exception]) -> Iterator[None]:
    """AWS failures, and the given refusals of our own, as one-line errors naming the step (exit 1)."""
    try:
        yield
    except refusals as exc:
        raise LakeopsError(str(exc)) from None
    except (ClientError, BotoCoreError) as exc:
        raise LakeopsError(aws_failure(step, exc)) from None
