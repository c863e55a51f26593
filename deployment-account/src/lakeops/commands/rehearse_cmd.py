"""`lakeops rehearse`: play bootstrap, publish, deploy, jobs and promotion on an embedded AWS emulator."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lakeops.commands.common import add_config_option


def register(groups: Any) -> None:
    parser = groups.add_parser(
        "rehearse",
        help="play the whole lifecycle offline on an embedded AWS emulator",
        description=(
            "Validate and synthesize, start an emulator with every account of the config, bootstrap, publish "
            "the config, then per environment in promotion order: promote, run each repository's pipeline "
            "commands, deploy its stage, run the jobs on local Spark, and run the post-deploy checks."
        ),
    )
    add_config_option(parser)
    parser.add_argument(
        "--env",
        dest="environments",
        action="append",
        metavar="ENV",
        help="rehearse only these environments (a leading part of the order, e.g. --env dev); repeatable",
    )
    parser.add_argument("--workdir", type=Path, help="keep the workspace here (default: a new temporary folder)")
    parser.add_argument("--yes", action="store_true", help="confirm manual approvals without asking")
    parser.add_argument(
        "--skip-checks", action="store_true", help="skip each repository's lint and unit tests (make test runs them)"
    )
    parser.add_argument("--no-jobs", action="store_true", help="do not run the ETL job groups on local Spark")
    parser.set_defaults(handler=_rehearse)


def _rehearse(args: argparse.Namespace) -> int:
    from lakeops.rehearsal.flow import Options, rehearse

    options = Options(
        config_path=args.config,
        environments=args.environments,
        workdir=args.workdir,
        assume_yes=args.yes,
        skip_checks=args.skip_checks,
        run_jobs=not args.no_jobs,
    )
    return rehearse(options)
