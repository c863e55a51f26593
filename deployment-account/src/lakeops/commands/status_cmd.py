"""`lakeops status [--json]`: every repository × environment at a glance; reads only."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from lakeops.bootstrap import parse_profiles
from lakeops.commands.common import add_config_option, load_config
from lakeops.status import ProfileAccess, collect, find_repositories, render


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "status",
        help="which commit of which repository runs in which environment, and what is waiting (reads only)",
        description=(
            "For every repository × environment: the branch head (local git), the commit the environment's "
            "pipeline last deployed and verified (its last succeeded execution), the state of its last execution, "
            "how many commits the next promotion would move, and whether each environment's published config "
            "digest is the config file's. Exit 0 when everything was read, 1 when something could not be read "
            "(named, with the profile it needs; the rest is shown)."
        ),
    )
    parser.add_argument(
        "--repo",
        action="append",
        default=[],
        metavar="[KIND=]PATH",
        help="a local clone of a repository (repeatable; KIND infra|etl, else told by its origin URL; "
        "default: the repository around the current directory). Branches are read locally: pull first",
    )
    parser.add_argument(
        "--profile",
        action="append",
        default=[],
        metavar="ROLE=PROFILE",
        help="AWS profile per role (deployment or an environment); default <prefix>-deployment, <prefix>-<env>",
    )
    parser.add_argument("--endpoint-url", help="send every AWS call here (an emulator such as moto server)")
    parser.add_argument("--git-only", action="store_true", help="read git alone, no AWS call")
    parser.add_argument("--json", action="store_true", help="print the status as JSON (for scripts)")
    add_config_option(parser)
    parser.set_defaults(handler=_status)


def _status(args: argparse.Namespace) -> int:
    config = load_config(args)
    repositories = find_repositories(config, args.repo, Path.cwd())
    access = None if args.git_only else ProfileAccess(parse_profiles(config, args.profile), args.endpoint_url)
    report = collect(config, args.config, repositories, access)
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(render(report))
    if report.unavailable:
        print(f"status incomplete: {len(report.unavailable)} source(s) not read", file=sys.stderr)
        if args.json:  # the table lists them on standard output; JSON has them under "unavailable" too
            for line in report.unavailable:
                print(f"  {line}", file=sys.stderr)
        return 1
    return 0
