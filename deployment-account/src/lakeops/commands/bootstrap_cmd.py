"""`lakeops bootstrap plan|apply`: the one-time, ordered setup of every account."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from lakeops.bootstrap import (
    APPS,
    PROJECT_ROOT,
    BootstrapOptions,
    Bootstrapper,
    SubprocessRunner,
    build_plan,
    parse_profiles,
    render_plan,
)
from lakeops.commands.common import add_config_option, confirm, load_config


def register(groups: Any) -> None:
    parser = groups.add_parser("bootstrap", help="one-time setup: bootstrap accounts, deploy the pipelines")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)
    plan = commands.add_parser("plan", help="print every step in order, with its account, region and profile")
    apply = commands.add_parser("apply", help="run the steps: checks identities, skips what is done, stops on failure")
    for sub in (plan, apply):
        add_config_option(sub)
        sub.add_argument(
            "--profile",
            action="append",
            default=[],
            metavar="ROLE=PROFILE",
            help="AWS profile per role (deployment or an environment); default <prefix>-deployment, <prefix>-<env>",
        )
        sub.add_argument(
            "--admin",
            action="store_true",
            help="give CloudFormation AdministratorAccess in the targets instead of the shipped least-privilege policy",
        )
        sub.add_argument("--endpoint-url", help="send every AWS call here (an emulator such as moto server)")
        sub.add_argument("--project-root", type=Path, default=PROJECT_ROOT, help="where package.json and the apps are")
        for app, folder in APPS.items():
            sub.add_argument(f"--{app}-app", type=Path, help=f"the {app} CDK app directory (default: <root>/{folder})")
    plan.set_defaults(handler=_plan)
    apply.add_argument("--yes", action="store_true", help="run without asking")
    apply.set_defaults(handler=_apply)


def _options(args: argparse.Namespace) -> tuple[Any, BootstrapOptions]:
    config = load_config(args)
    app_dirs = {app: getattr(args, f"{app}_app") for app in APPS if getattr(args, f"{app}_app")}
    options = BootstrapOptions(
        config_path=args.config,
        profiles=parse_profiles(config, args.profile),
        admin=args.admin,
        endpoint_url=args.endpoint_url,
        project_root=args.project_root.resolve(),
        app_dirs=app_dirs,
    )
    return config, options


def _plan(args: argparse.Namespace) -> int:
    config, options = _options(args)
    print(render_plan(config, build_plan(config, options), options.project_root))
    return 0


def _apply(args: argparse.Namespace) -> int:
    config, options = _options(args)
    steps = build_plan(config, options)
    print(render_plan(config, steps, options.project_root))
    if not confirm(f"run these {len(steps)} steps (completed ones are skipped)?", assume_yes=args.yes):
        print("nothing run")
        return 1
    Bootstrapper(config, options, SubprocessRunner(options.project_root)).apply(steps)
    print("lakeops bootstrap: every step is done; the pipelines now deploy on every push")
    return 0
