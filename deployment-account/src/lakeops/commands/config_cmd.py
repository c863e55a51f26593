"""`lakeops config ...`: validate, show, schema, diff and publish the shared config (`lake-config pull` reads it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from datalake_config import LakeConfig, dumps_json, lake_names, load
from datalake_config.aws import AccountMismatch
from datalake_config.cli import add_aws_options, sessions_from
from datalake_config.diff import diff
from datalake_config.naming import names_for
from datalake_config.publish import PublishError, pipelines_to_start, plan_publish
from datalake_config.schema import json_schema_text
from lakeops.commands.common import (
    add_config_option,
    aws_step,
    confirm,
    default_config_path,
    load_config,
)
from lakeops.errors import LakeopsError


def register(groups: Any) -> None:
    parser = groups.add_parser("config", help="validate, inspect and publish the shared config")
    commands = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

    validate = commands.add_parser("validate", help="check a config file; exit 1 listing every problem")
    validate.add_argument(
        "path", nargs="?", type=Path, help="config file (default: $LAKE_CONFIG or shared-config/config.yaml)"
    )
    validate.set_defaults(handler=_validate)

    show = commands.add_parser("show", help="print the validated config with defaults and derived names")
    add_config_option(show)
    show.add_argument("--names", action="store_true", help="also list every shared name per environment")
    show.set_defaults(handler=_show)

    schema = commands.add_parser("schema", help="print (or write) the JSON Schema of the config file")
    schema.add_argument("--out", type=Path, help="write to this file instead of standard output")
    schema.set_defaults(handler=_schema)

    compare = commands.add_parser("diff", help="what changes between two config files, per environment and name")
    compare.add_argument("old", type=Path)
    compare.add_argument("new", type=Path)
    compare.set_defaults(handler=_diff)

    publish = commands.add_parser(
        "publish", help="write the config to the global-config secret and environment facts to SSM"
    )
    add_config_option(publish)
    # No --assume-role-name: in each target account publish assumes that environment's config publisher
    # role (created by `lakeops bootstrap`), never a role the operator names.
    add_aws_options(publish, assume_role=False)
    publish.add_argument("--dry-run", action="store_true", help="show what would change, write nothing")
    publish.add_argument("--yes", action="store_true", help="apply without asking")
    publish.add_argument(
        "--no-start",
        action="store_true",
        help="do not start the pipelines whose inputs changed (by default they run again with the new config)",
    )
    publish.set_defaults(handler=_publish)


def _validate(args: argparse.Namespace) -> int:
    path = args.path or default_config_path()
    config = load(path)
    envs = " → ".join(f"{n} ({config.env(n).account})" for n in config.environment_names)
    print(f"{path}: valid; prefix {config.prefix}; deployment account {config.deployment.account}; {envs}")
    return 0


def _show(args: argparse.Namespace) -> int:
    config = load_config(args)
    print(dumps_json(config), end="")
    if args.names:
        lake = lake_names(config)
        print(f"\nglobal-config secret: {lake.global_config_secret}")
        print(f"deployment stack:     {lake.deployment_stack_name}")
        for env in config.environment_names:
            names = names_for(config, env)
            print(f"\n[{env}]")
            for repo in ("infra", "etl"):
                print(f"  pipeline {names.pipeline_stack_name(repo)} ← branch {config.branch_for(repo, env)}")
            for param in names.contract():
                print(f"  {param.path}  ({param.description})")
    return 0


def _schema(args: argparse.Namespace) -> int:
    text = json_schema_text()
    if args.out:
        try:
            args.out.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise LakeopsError(f"config schema: cannot write {args.out}: {exc.strerror}") from None
        print(f"wrote {args.out}")
    else:
        print(text, end="")
    return 0


def _diff(args: argparse.Namespace) -> int:
    print(diff(load(args.old), load(args.new)).render())
    return 0


def _publish(args: argparse.Namespace) -> int:
    config = load_config(args)  # an invalid config stops here, before any AWS call
    sessions = sessions_from(args, config)
    with aws_step("config publish", PublishError, AccountMismatch):
        sessions.require_account(config.deployment.account, "config publish")
        plan = plan_publish(config, sessions)
    for note in plan.notes:
        print(f"note: {note}", file=sys.stderr)
    if plan.empty:
        print("config publish: no changes; the published config is up to date")
        return 0
    print(f"config publish: {len(plan.changes)} change(s):")
    for change in plan.changes:
        print(f"  {change}")
    if not args.no_start:
        print(f"then starts the pipelines that read it: {', '.join(pipelines_to_start(config, plan))}")
    if args.dry_run:
        print("dry run: nothing written")
        return 0
    if not confirm("apply these changes?", assume_yes=args.yes):
        print("nothing written")
        return 1
    with aws_step("config publish (applying)", PublishError, AccountMismatch):
        plan.apply()
    print(f"config publish: applied {len(plan.changes)} change(s)")
    if args.no_start:
        return 0
    with aws_step("config publish (starting pipelines)", PublishError, AccountMismatch):
        _start_pipelines(config, sessions, pipelines_to_start(config, plan))
    return 0


def _start_pipelines(config: LakeConfig, sessions: Any, pipelines: list[str]) -> None:
    """Run the pipelines that read what changed; one not created yet (during bootstrap) is skipped, said so."""
    deployment = config.deployment
    client = sessions.account_client("codepipeline", deployment.account, deployment.region)
    for name in pipelines:
        try:
            execution = client.start_pipeline_execution(name=name)["pipelineExecutionId"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "PipelineNotFoundException":
                raise
            print(f"  {name}: not created yet (bootstrap creates it, and it starts on its own)")
            continue
        print(f"  started {name} (execution {execution})")
