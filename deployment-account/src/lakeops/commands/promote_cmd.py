"""`lakeops promote SOURCE TARGET`: fast-forward the next environment's branch, in one or more repositories."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from datalake_config.naming import REPOSITORIES
from lakeops.commands.common import add_config_option, confirm, load_config
from lakeops.promote import apply_promotion, check_order, plan_promotion


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "promote",
        help="fast-forward the next environment's branch (dev → test → prod), refusing anything else",
        description="Checks every repository first; changes nothing unless all of them can be promoted.",
    )
    parser.add_argument("source", help="environment to promote from, e.g. dev")
    parser.add_argument("target", help="the next environment in the configured order, e.g. test")
    parser.add_argument(
        "--repo",
        action="append",
        type=Path,
        metavar="PATH",
        help="a git repository to promote in (repeatable; default: the one containing the current directory)",
    )
    parser.add_argument(
        "--kind",
        choices=REPOSITORIES,
        help="which configured repository's branches to use (default: inferred from the origin URL)",
    )
    parser.add_argument("--push", action="store_true", help="push the target branch after fast-forwarding it")
    parser.add_argument("--remote", default="origin", help="remote to push to (default: origin)")
    parser.add_argument("--yes", action="store_true", help="promote without asking")
    add_config_option(parser)
    parser.set_defaults(handler=_promote)


def _promote(args: argparse.Namespace) -> int:
    config = load_config(args)
    check_order(config, args.source, args.target)  # refuse a wrong order before touching any repository
    plans = [plan_promotion(config, repo, args.source, args.target, args.kind) for repo in args.repo or [Path.cwd()]]
    for plan in plans:
        print(plan.describe())
    pending = [p for p in plans if not p.empty or args.push]
    if not pending:
        return 0
    if not confirm(f"promote {args.source} → {args.target} in {len(pending)} repository(ies)?", assume_yes=args.yes):
        print("nothing promoted")
        return 1
    for plan in pending:
        for line in apply_promotion(plan, push=args.push, remote=args.remote):
            print(line)
    return 0
