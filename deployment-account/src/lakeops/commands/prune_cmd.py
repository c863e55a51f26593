"""`lakeops prune --env E`: delete the environment's stacks of the lake that no app synthesizes any more."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import boto3

from datalake_config import lake_names
from lakeops.bootstrap import APPS, PROJECT_ROOT
from lakeops.commands.common import add_config_option, aws_step, confirm, load_config
from lakeops.prune import apply_prune, plan_prune, synthesized_stacks


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "prune",
        help="delete an environment's stacks of the lake that the apps no longer synthesize",
        description=(
            "CDK Pipelines never deletes a stack that left the app. This lists the environment's stacks named "
            "after the lake that no synthesized assembly holds, and deletes them with --yes; a termination-"
            "protected stack, or any stack of an environment that retains data, also needs --include-retained."
        ),
    )
    parser.add_argument("--env", required=True, dest="env_name", help="the environment to prune")
    parser.add_argument(
        "--assembly",
        action="append",
        type=Path,
        metavar="CDK_OUT",
        help="an app's synthesized cloud assembly (repeatable; default: each app's cdk.out in the workspace)",
    )
    parser.add_argument("--profile", help="AWS profile of the environment's account (default: the lake's)")
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator such as moto server)")
    parser.add_argument("--yes", action="store_true", help="delete without asking")
    parser.add_argument(
        "--include-retained",
        action="store_true",
        help="also delete termination-protected stacks and stacks of an environment that retains data",
    )
    add_config_option(parser)
    parser.set_defaults(handler=_prune)


def _prune(args: argparse.Namespace) -> int:
    config = load_config(args)
    target = config.env(args.env_name)  # KeyError naming the configured environments
    apps = [folder for kind, folder in APPS.items() if kind != "deployment"]  # the apps deploying to targets
    assemblies = args.assembly or [PROJECT_ROOT / folder / "cdk.out" for folder in apps]
    expected = synthesized_stacks(assemblies, args.env_name)
    profile = args.profile or lake_names(config).environment_profile(args.env_name)
    with aws_step(f"prune {args.env_name}"):
        session = boto3.Session(profile_name=profile, region_name=target.region)
        cloudformation = session.client("cloudformation", endpoint_url=args.endpoint_url)
        plan = plan_prune(config, args.env_name, cloudformation, expected)
    for line in plan.describe():
        print(line)
    if not plan.orphans:
        return 0
    if not confirm(f"delete these stacks from {args.env_name} ({target.account})?", assume_yes=args.yes):
        print("nothing deleted")
        return 1
    with aws_step(f"prune {args.env_name} (deleting)"):
        for line in apply_prune(plan, cloudformation, include_retained=args.include_retained):
            print(f"  {line}")
    return 0
